// Command npmir is the on-call engineer's runbook for a compromised npm publishing identity.
package main

import (
	"os"

	"github.com/npmir/npmir/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.System(os.Getenv), os.Getenv))
}
