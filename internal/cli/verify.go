package cli

import "github.com/spf13/cobra"

func newVerifyCmd(f *Factory) *cobra.Command {
	return &cobra.Command{Use: "verify", Hidden: true}
}
