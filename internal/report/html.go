package report

import (
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/npmir/npmir/internal/state"
)

// The HTML after-action report: one self-contained page (no scripts, no external assets) that a
// tabletop exercise or a post-incident review can keep. html/template escapes everything that
// came from a registry or a package.
var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"join":    strings.Join,
	"opText":  opText,
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"verdicts": func(vs []state.Verdict) string {
		var parts []string
		for _, v := range vs {
			p := v.Version + " " + v.Verdict
			if len(v.Rules) > 0 {
				p += " (" + strings.Join(v.Rules, ", ") + ")"
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "; ")
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>npmir incident {{.D.Incident}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222}
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.done{color:#176a2c}.failed{color:#a40000}.manual{color:#8a5a00}.pending,.started{color:#555}
.skipped{color:#777}code{font-size:90%}
</style></head><body>
<h1>Incident <code>{{.D.Incident}}</code></h1>
<p>Status <strong>{{.D.Status}}</strong> (exit {{.D.ExitCode}}) · runbook {{.D.Runbook.Name}} <code>{{.D.Runbook.Digest}}</code> · registry {{.D.Registry}} · report generated {{rfc3339 .Now}}</p>
{{with .D.Scope}}<p>Blast radius: <code>{{.Maintainer}}</code> can publish {{.Packages}} package(s) ({{.Source}} listing); {{.Affected}} had versions since T.</p>{{end}}
{{if .D.Error}}<p class="failed">{{.D.Error}}</p>{{end}}
{{if .D.Next}}<p>Next: <code>{{.D.Next}}</code></p>{{end}}
<p>{{.D.Counts.Ops}} op(s): {{.D.Counts.Done}} done ({{.D.Counts.Changed}} changed), {{.D.Counts.Pending}} pending, {{.D.Counts.Failed}} failed, {{.D.Counts.Manual}} need a person; {{.D.Counts.Skipped}} step(s) skipped.</p>
{{if .D.Targets}}<h2>Targets</h2><table><tr><th>package</th><th>bad versions</th><th>known-good</th><th>verify</th></tr>
{{range .D.Targets}}<tr><td><code>{{.Package}}</code></td><td>{{join .Bad ", "}}</td><td>{{.KnownGood}} {{.KnownGoodFrom}}</td><td>{{verdicts .Verdicts}}</td></tr>
{{end}}</table>{{end}}
{{range .D.Stages}}<h2>{{.Name}}</h2>{{if .Description}}<p>{{.Description}}</p>{{end}}
<table><tr><th>step</th><th>status</th><th>what</th></tr>
{{range .Steps}}{{$step := .}}{{if .Ops}}{{range .Ops}}<tr><td>{{$step.ID}} <code>{{$step.Uses}}</code></td><td class="{{.Status}}">{{.Status}}</td><td>{{opText .}}</td></tr>
{{end}}{{else}}<tr><td>{{.ID}} <code>{{.Uses}}</code></td><td class="skipped">{{.Status}}</td><td>{{.Reason}}{{range .Notes}} {{.}}{{end}}</td></tr>
{{end}}{{range .Notes}}{{if $step.Ops}}<tr><td></td><td></td><td>note: {{.}}</td></tr>{{end}}{{end}}{{end}}</table>
{{end}}
{{if .D.StateFile}}<p>State <code>{{.D.StateFile}}</code> · audit <code>{{.D.AuditLog}}</code></p>{{end}}
</body></html>
`))

// WriteHTML prints the document as a self-contained HTML page.
func WriteHTML(w io.Writer, d *Document, now time.Time) error {
	return htmlTmpl.Execute(w, struct {
		D   *Document
		Now time.Time
	}{d, now})
}
