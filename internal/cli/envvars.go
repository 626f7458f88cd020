package cli

// EnvVar is one environment variable npmir reads, declared once so `npmir env` can list them
// (masking the sensitive ones) and nothing reads a variable the docs do not name.
type EnvVar struct {
	Name      string
	Sensitive bool
	Doc       string
}

// EnvVars is every variable npmir reads.
var EnvVars = []EnvVar{
	{"NPM_TOKEN", true, "npm registry token (the name is configurable: npm.token_env); else ~/.npmrc _authToken lines are used"},
	{"NPMIR_NPM_OTP", true, "one-time password sent as npm-otp on registry writes (same as --otp)"},
	{"NPMIR_REGISTRY", false, "npm registry URL (same as --registry; default https://registry.npmjs.org/)"},
	{"NPMIR_STATE_DIR", false, "where incident folders live (default .npmir)"},
	{"NPMIR_CONCURRENCY", false, "packages worked on at once (same as --concurrency; default 8)"},
	{"NPMIR_FAULT", false, "fault injection for crash tests: <point>:<n> SIGKILLs npmir the n-th time an op reaches point (after-started, mid, after-apply, after-audit, after-done)"},
	{"NPM_CONFIG_USERCONFIG", false, "the .npmrc npm would read (default ~/.npmrc)"},
	{"XDG_CONFIG_HOME", false, "config is read from $XDG_CONFIG_HOME/npmir/config.yaml (default ~/.config)"},
	{"NO_COLOR", false, "any value turns colour off"},
}
