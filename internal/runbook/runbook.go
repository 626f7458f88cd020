// Package runbook loads and validates runbooks: ordered stages of steps, each step naming a step
// kind and its parameters. Validation reports every problem with its file and line, so a team
// editing a copy of the default sees all its mistakes at once.
package runbook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/npmir/npmir/runbooks"
)

// APIVersion and Kind are the only header values this version of npmir reads.
const (
	APIVersion = "npmir/v1"
	KindName   = "Runbook"
)

// DefaultStages is the stage order of the default runbook (from the seed article).
var DefaultStages = []string{"verify", "freeze", "revoke", "inventory", "rebuild", "notify"}

// Runbook is a parsed runbook.
type Runbook struct {
	APIVersion  string  `yaml:"apiVersion" json:"api_version"`
	Kind        string  `yaml:"kind" json:"kind"`
	Name        string  `yaml:"name" json:"name"`
	Description string  `yaml:"description" json:"description,omitempty"`
	Stages      []Stage `yaml:"stages" json:"stages"`

	// Source is where it came from ("embedded:NAME" or a file path); Digest is the SHA-256 of
	// its bytes, recorded in the state file so a resume can tell the runbook changed.
	Source string `yaml:"-" json:"source"`
	Digest string `yaml:"-" json:"digest"`
}

// Stage is one containment stage.
type Stage struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description,omitempty"`
	Steps       []Step `yaml:"steps" json:"steps"`
	Line        int    `yaml:"-" json:"-"`
}

// Step is one step of a stage.
type Step struct {
	ID              string         `yaml:"id" json:"id"`
	Uses            string         `yaml:"uses" json:"uses"`
	With            map[string]any `yaml:"with" json:"with,omitempty"`
	Approval        string         `yaml:"approval" json:"approval,omitempty"`
	ContinueOnError bool           `yaml:"continue_on_error" json:"continue_on_error,omitempty"`
	Line            int            `yaml:"-" json:"-"`
}

// NeedsApproval reports whether the step stops for a yes before its ops run.
func (s Step) NeedsApproval() bool { return s.Approval == "required" }

// Problem is one validation finding.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Msg  string `json:"message"`
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

// Problems is a list of validation findings; as an error it prints one per line.
type Problems []Problem

func (ps Problems) Error() string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Param describes one parameter a step kind accepts.
type Param struct {
	Name     string
	Type     string // "string", "bool", "int", "strings"
	Required bool
	Doc      string
	// Enum, when set, lists the values a string parameter may take.
	Enum []string
}

// KindInfo is what validation needs to know of a step kind.
type KindInfo struct {
	Params []Param
	// Preserves: the kind saves evidence; Removes: it deletes or hides artifacts. A runbook
	// must preserve before it removes ("preserve the malicious release for analysis").
	Preserves, Removes bool
}

// Lookup finds a step kind by its `uses` name.
type Lookup func(uses string) (KindInfo, bool)

// Names lists the embedded runbooks.
func Names() []string {
	ents, _ := fs.ReadDir(runbooks.FS, ".")
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, n)
		}
	}
	return out
}

// Embedded returns the bytes of an embedded runbook.
func Embedded(name string) ([]byte, error) {
	b, err := runbooks.FS.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no embedded runbook %q (have: %s)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}

// Load resolves ref as an embedded runbook name, else as a file path, and parses and validates it.
func Load(ref string, lookup Lookup) (*Runbook, error) {
	if ref == "" {
		ref = runbooks.Default
	}
	data, err := Embedded(ref)
	source := "embedded:" + ref
	if err != nil {
		fileData, ferr := os.ReadFile(ref)
		if ferr != nil {
			if errors.Is(ferr, fs.ErrNotExist) {
				return nil, fmt.Errorf("runbook %q: neither an embedded runbook (%s) nor a file", ref, strings.Join(Names(), ", "))
			}
			return nil, fmt.Errorf("runbook %q: %w", ref, ferr)
		}
		data, source = fileData, ref
	}
	rb, problems := Parse(data, source, lookup)
	if len(problems) > 0 {
		return nil, problems
	}
	return rb, nil
}

// Parse decodes and validates a runbook. It returns every problem it finds, with lines.
func Parse(data []byte, source string, lookup Lookup) (*Runbook, Problems) {
	file := strings.TrimPrefix(source, "embedded:")
	if strings.HasPrefix(source, "embedded:") {
		file = path.Join("runbooks", file+".yaml")
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, Problems{{File: file, Line: yamlErrLine(err), Msg: "not valid YAML: " + err.Error()}}
	}
	var rb Runbook
	var ps Problems
	add := func(line int, format string, a ...any) {
		ps = append(ps, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, a...)})
	}
	if err := root.Decode(&rb); err != nil {
		add(yamlErrLine(err), "%v", err)
		return nil, ps
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		add(doc.Line, "a runbook is a mapping with apiVersion, kind, name and stages")
		return nil, ps
	}
	checkKeys(doc, []string{"apiVersion", "kind", "name", "description", "stages"}, "runbook", add)
	if rb.APIVersion != APIVersion {
		add(lineOf(doc, "apiVersion"), "apiVersion is %q; this npmir reads %q", rb.APIVersion, APIVersion)
	}
	if rb.Kind != KindName {
		add(lineOf(doc, "kind"), "kind is %q; want %q", rb.Kind, KindName)
	}
	if rb.Name == "" {
		add(doc.Line, "name is missing")
	}
	stagesNode := valueOf(doc, "stages")
	if stagesNode == nil || len(rb.Stages) == 0 {
		add(doc.Line, "stages is missing or empty")
	}
	stageSeen := map[string]int{}
	idSeen := map[string]int{}
	preservedAt := 0 // line of the first evidence-preserving step
	for i := range rb.Stages {
		st := &rb.Stages[i]
		sn := stagesNode.Content[i]
		st.Line = sn.Line
		checkKeys(sn, []string{"name", "description", "steps"}, "stage", add)
		if st.Name == "" {
			add(sn.Line, "stage %d has no name", i+1)
		} else if prev, dup := stageSeen[st.Name]; dup {
			add(sn.Line, "stage %q appears twice (first at line %d)", st.Name, prev)
		} else {
			stageSeen[st.Name] = sn.Line
		}
		stepsNode := valueOf(sn, "steps")
		for j := range st.Steps {
			step := &st.Steps[j]
			node := stepsNode.Content[j]
			step.Line = node.Line
			checkKeys(node, []string{"id", "uses", "with", "approval", "continue_on_error"}, "step", add)
			if step.ID == "" {
				add(node.Line, "a step in stage %q has no id", st.Name)
			} else if prev, dup := idSeen[step.ID]; dup {
				add(lineOf(node, "id"), "duplicate step id %q (first at line %d)", step.ID, prev)
			} else {
				idSeen[step.ID] = lineOf(node, "id")
			}
			if step.Approval != "" && step.Approval != "required" && step.Approval != "none" {
				add(lineOf(node, "approval"), "approval is %q; use required or none", step.Approval)
			}
			if step.Uses == "" {
				add(node.Line, "step %q has no uses (a step kind such as npm.deprecate)", step.ID)
				continue
			}
			info, ok := lookup(step.Uses)
			if !ok {
				add(lineOf(node, "uses"), "step %q uses unknown step kind %q", step.ID, step.Uses)
				continue
			}
			checkParams(step, valueOf(node, "with"), info, add)
			if info.Preserves && preservedAt == 0 {
				preservedAt = step.Line
			}
			if info.Removes && preservedAt == 0 {
				add(lineOf(node, "uses"), "step %q (%s) removes or hides artifacts, but no evidence-preserving step (npm.verify) runs before it", step.ID, step.Uses)
			}
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	sum := sha256.Sum256(data)
	rb.Source, rb.Digest = source, "sha256:"+hex.EncodeToString(sum[:])
	return &rb, nil
}

func checkParams(step *Step, with *yaml.Node, info KindInfo, add func(int, string, ...any)) {
	known := map[string]Param{}
	for _, p := range info.Params {
		known[p.Name] = p
	}
	if with != nil {
		for i := 0; i+1 < len(with.Content); i += 2 {
			k := with.Content[i]
			p, ok := known[k.Value]
			if !ok {
				names := make([]string, 0, len(known))
				for n := range known {
					names = append(names, n)
				}
				slices.Sort(names)
				hint := "it takes no parameters"
				if len(names) > 0 {
					hint = "it takes: " + strings.Join(names, ", ")
				}
				add(k.Line, "step %q: unknown parameter %q for %s (%s)", step.ID, k.Value, step.Uses, hint)
				continue
			}
			if msg := typeMismatch(p.Type, step.With[k.Value]); msg != "" {
				add(with.Content[i+1].Line, "step %q: parameter %q %s", step.ID, k.Value, msg)
			} else if v, _ := step.With[k.Value].(string); len(p.Enum) > 0 && !slices.Contains(p.Enum, v) {
				add(with.Content[i+1].Line, "step %q: parameter %q is %q; use one of %s", step.ID, k.Value, v, strings.Join(p.Enum, ", "))
			}
		}
	}
	for _, p := range info.Params {
		if _, ok := step.With[p.Name]; p.Required && !ok {
			add(step.Line, "step %q: %s needs parameter %q", step.ID, step.Uses, p.Name)
		}
	}
}

func typeMismatch(typ string, v any) string {
	switch typ {
	case "string":
		if _, ok := v.(string); !ok {
			return "must be a string"
		}
	case "bool":
		if _, ok := v.(bool); !ok {
			return "must be true or false"
		}
	case "int":
		if _, ok := v.(int); !ok {
			return "must be a whole number"
		}
	case "strings":
		list, ok := v.([]any)
		if !ok {
			return "must be a list of strings"
		}
		for _, e := range list {
			if _, ok := e.(string); !ok {
				return "must be a list of strings"
			}
		}
	}
	return ""
}

func checkKeys(n *yaml.Node, allowed []string, what string, add func(int, string, ...any)) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(allowed, k.Value) {
			add(k.Line, "unknown %s field %q (allowed: %s)", what, k.Value, strings.Join(allowed, ", "))
		}
	}
}

func valueOf(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func lineOf(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i].Line
		}
	}
	return n.Line
}

func yamlErrLine(err error) int {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	var line int
	if i := strings.Index(msg, "line "); i >= 0 {
		fmt.Sscanf(msg[i+5:], "%d", &line)
	}
	return line
}

// Steps returns every step in order with its stage name.
func (rb *Runbook) Steps() []StageStep {
	var out []StageStep
	for _, st := range rb.Stages {
		for _, s := range st.Steps {
			out = append(out, StageStep{Stage: st.Name, Step: s})
		}
	}
	return out
}

// StageStep is a step with the name of its stage.
type StageStep struct {
	Stage string
	Step  Step
}
