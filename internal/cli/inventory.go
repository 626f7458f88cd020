package cli

import "github.com/spf13/cobra"

// newInventoryCmd is replaced by the inventory command (work in progress).
func newInventoryCmd(f *Factory) *cobra.Command {
	return &cobra.Command{Use: "inventory", Short: "Find every lockfile and SBOM that pins a bad version", Hidden: true}
}
