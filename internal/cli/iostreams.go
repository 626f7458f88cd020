package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// IOStreams is where a command reads and writes. Data goes to Out, progress and status to
// ErrOut; prompts happen only when both stdin and stderr are terminals.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	InTTY, OutTTY, ErrTTY bool
	// NoColor is set from NO_COLOR (any value) or TERM=dumb.
	NoColor bool

	mu     sync.Mutex
	reader *bufio.Reader
}

// System returns the process's standard streams with their terminal-ness detected.
func System(getenv func(string) string) *IOStreams {
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		InTTY:   term.IsTerminal(int(os.Stdin.Fd())),
		OutTTY:  term.IsTerminal(int(os.Stdout.Fd())),
		ErrTTY:  term.IsTerminal(int(os.Stderr.Fd())),
		NoColor: getenv("NO_COLOR") != "" || getenv("TERM") == "dumb",
	}
}

// CanPrompt reports whether a person can be asked something.
func (s *IOStreams) CanPrompt() bool { return s.InTTY && s.ErrTTY }

// ColorOut / ColorErr report whether colour may be used on each stream.
func (s *IOStreams) ColorOut() bool { return s.OutTTY && !s.NoColor }
func (s *IOStreams) ColorErr() bool { return s.ErrTTY && !s.NoColor }

// Printf writes a status line to ErrOut; status lines from concurrent ops never interleave.
func (s *IOStreams) Printf(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.ErrOut, format, a...)
}

// Ask prints question on ErrOut and reads one line from In.
func (s *IOStreams) Ask(question string) (string, error) {
	if !s.CanPrompt() {
		return "", errors.New("no terminal to ask on")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprint(s.ErrOut, question)
	if s.reader == nil {
		s.reader = bufio.NewReader(s.In)
	}
	line, err := s.reader.ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// AskSecret reads a line without echo when In is a terminal file.
func (s *IOStreams) AskSecret(question string) (string, error) {
	if f, ok := s.In.(*os.File); ok && s.CanPrompt() {
		s.mu.Lock()
		defer s.mu.Unlock()
		fmt.Fprint(s.ErrOut, question)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(s.ErrOut)
		return strings.TrimSpace(string(b)), err
	}
	return s.Ask(question)
}
