# npmir: the two commands a fresh machine needs are `make demo` and `make test`.
GO ?= go
BIN := bin/npmir
VERDACCIO := testdata/verdaccio/node_modules/.bin/verdaccio

.PHONY: build test lint bench demo deps fuzz clean

build:
	$(GO) build -o $(BIN) ./cmd/npmir

# deps installs the pinned Verdaccio 6.8.0 from the committed lockfile (npm ci); the tests
# start it on 127.0.0.1 themselves.
deps: $(VERDACCIO)
$(VERDACCIO): testdata/verdaccio/package-lock.json
	cd testdata/verdaccio && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# FUZZTIME is how long each fuzz target runs in the smoke (the seed corpora always run as
# ordinary tests); raise it for a real fuzzing session: make fuzz FUZZTIME=10m
FUZZTIME ?= 4s
FUZZ_TARGETS := internal/forensics:FuzzReadTarball internal/forensics:FuzzPackageJSONDiff \
	internal/inventory:FuzzNpmLock internal/inventory:FuzzYarnLock internal/inventory:FuzzPnpmLock \
	internal/inventory:FuzzBunLock internal/inventory:FuzzSBOM

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz

fuzz:
	@n=0; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) >"$${TMPDIR:-/tmp}/npmir-fuzz-$$fn.log" 2>&1 || { cat "$${TMPDIR:-/tmp}/npmir-fuzz-$$fn.log"; echo "fuzz: $$n passed, 1 failed"; exit 1; }; \
		n=$$((n+1)); \
	done; echo "fuzz: $$n passed, 0 failed"

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

demo: deps build
	$(GO) run ./internal/testenv/cmd/demo

clean:
	rm -rf bin
