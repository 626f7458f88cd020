// Package corpus builds the inventory benchmark corpus: many project folders
// made from a few real lockfiles, each copy slightly different, with bad
// versions injected into some of them in each lockfile's own syntax, so that
// any scanner that reads the format sees them.
package corpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/npmir/npmir/internal/inventory"
)

// Stats describes a built corpus.
type Stats struct {
	Bytes int64
	// Injected maps each target to the folders it was injected into.
	Injected map[string][]string
}

// Build writes folders project folders under out, cycling through the
// lockfiles found under src. Target j goes into every (7+2j)th folder
// (when that folder's lockfile holds the package at all), so each target
// has its own set of files.
func Build(src, out string, folders int, ts []inventory.Target) (Stats, error) {
	st := Stats{Injected: map[string][]string{}}
	var bases []string
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && inventory.FormatForName(p) != inventory.FormatUnknown {
			bases = append(bases, p)
		}
		return nil
	})
	sort.Strings(bases)
	if len(bases) == 0 {
		return st, fmt.Errorf("no lockfiles under %s", src)
	}
	for i := 0; i < folders; i++ {
		base := bases[i%len(bases)]
		data, err := os.ReadFile(base)
		if err != nil {
			return st, err
		}
		data = mark(base, data, i)
		for j, t := range ts {
			if i%(7+2*j) != 0 {
				continue
			}
			var ok bool
			data, ok = inject(base, data, t)
			if ok {
				st.Injected[t.String()] = append(st.Injected[t.String()], fmt.Sprintf("p%03d", i))
			}
		}
		dir := filepath.Join(out, fmt.Sprintf("p%03d-%s", i, filepath.Base(filepath.Dir(base))))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return st, err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(base)), data, 0o644); err != nil {
			return st, err
		}
		st.Bytes += int64(len(data))
	}
	return st, nil
}

// mark makes copy i differ from the other copies of the same lockfile.
func mark(path string, data []byte, i int) []byte {
	tag := fmt.Sprintf("-copy-%03d", i)
	switch inventory.FormatForName(path) {
	case inventory.FormatNpmLock, inventory.FormatBunLock:
		// The root project's name: the first "name" in both formats.
		k := bytes.Index(data, []byte(`"name": "`))
		if k >= 0 {
			end := k + len(`"name": "`) + bytes.IndexByte(data[k+len(`"name": "`):], '"')
			return append(append(append([]byte{}, data[:end]...), tag...), data[end:]...)
		}
		return data
	default:
		return append([]byte("# corpus"+tag+"\n"), data...)
	}
}

// inject replaces the version of one entry of t.Name with t.Version.
func inject(path string, data []byte, t inventory.Target) ([]byte, bool) {
	f := inventory.FormatForName(path)
	pkgs, err := inventory.ExtractFormat(f, data)
	if err != nil {
		return data, false
	}
	var old *inventory.Package
	for i := range pkgs {
		if pkgs[i].Name == t.Name && pkgs[i].Alias == "" && pkgs[i].Version != "" && pkgs[i].Line > 0 {
			old = &pkgs[i]
			break
		}
	}
	if old == nil {
		return data, false
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	from := old.Line - 1
	swap := func(i int, oldTok, newTok string) bool {
		if i >= len(lines) || !bytes.Contains(lines[i], []byte(oldTok)) {
			return false
		}
		lines[i] = bytes.Replace(lines[i], []byte(oldTok), []byte(newTok), 1)
		return true
	}
	ok := false
	switch f {
	case inventory.FormatNpmLock:
		// "node_modules/x": {  then  "version": "1.2.3",
		ok = swap(from+1, `"version": "`+old.Version+`"`, `"version": "`+t.Version+`"`)
	case inventory.FormatBunLock:
		ok = swap(from, `"`+t.Name+"@"+old.Version+`"`, `"`+t.Name+"@"+t.Version+`"`)
	case inventory.FormatYarnLock:
		if swap(from+1, `version "`+old.Version+`"`, `version "`+t.Version+`"`) {
			ok = true
		} else if swap(from+1, "version: "+old.Version, "version: "+t.Version) {
			swap(from+2, t.Name+"@npm:"+old.Version, t.Name+"@npm:"+t.Version)
			ok = true
		}
	case inventory.FormatPnpmLock:
		// The key of the packages: entry and of its snapshots.
		for i, l := range lines {
			for _, suffix := range []string{":", "("} {
				if bytes.HasPrefix(l, []byte("  "+t.Name+"@"+old.Version+suffix)) || bytes.HasPrefix(l, []byte("  '"+t.Name+"@"+old.Version+suffix)) {
					lines[i] = bytes.Replace(l, []byte(t.Name+"@"+old.Version), []byte(t.Name+"@"+t.Version), 1)
					ok = true
				}
			}
		}
	}
	return bytes.Join(lines, nil), ok
}
