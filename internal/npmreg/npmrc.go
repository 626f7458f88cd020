package npmreg

import (
	"bufio"
	"net/url"
	"os"
	"strings"
)

// TokenFromNpmrc finds the `_authToken` an .npmrc file holds for registry, the way npm matches
// it: the registry URL without its scheme ("nerf-darted", `//host:port/path/`), trying ever
// shorter path prefixes. `${VAR}` references are expanded from the environment, as npm does.
// It returns "" when the file is missing or has no matching line.
func TokenFromNpmrc(path, registry string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	tokens := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"'`)
		if key, ok := strings.CutSuffix(k, ":_authToken"); ok {
			tokens[key] = os.Expand(v, os.Getenv)
		}
	}
	u, err := url.Parse(registry)
	if err != nil {
		return ""
	}
	p := u.Path
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	for {
		if t, ok := tokens["//"+u.Host+p]; ok {
			return t
		}
		if p == "/" {
			return ""
		}
		p = p[:strings.LastIndex(strings.TrimSuffix(p, "/"), "/")+1]
	}
}
