package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the configuration",
	}
	cmd.AddCommand(newConfigShowCmd(g), newConfigReferenceCmd(g))
	return cmd
}

type configShowOptions struct {
	changed bool
}

func newConfigShowCmd(g *globals) *cobra.Command {
	var o configShowOptions
	cmd := &cobra.Command{
		Use:   "show [--changed] [--json]",
		Short: "Print every configuration key with its effective value and where it comes from",
		Long: `Print every configuration key, defaults included, with its effective value
and where that value comes from: the default, the config file (its path),
the environment (the variable) or a flag. --changed prints only the keys
not at their default, like postconf -n. Keys holding secrets name files;
config show prints the file's name, never its content.

Flags win over CCDIR_* environment variables, which win over the config
file, which wins over the defaults. docs/configuration.md describes every
key.

EXIT STATUS
  0 ok, 1 error (a value is invalid: the error names the key), 2 usage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigShow(cmd.Context(), o, g)
		},
	}
	cmd.Flags().BoolVar(&o.changed, "changed", false, "only the keys not at their default")
	return cmd
}

// configShowRow is one key of config show --json.
type configShowRow struct {
	Key     string `json:"key"`
	Value   any    `json:"value"`
	Default string `json:"default"`
	Source  string `json:"source"`         // default, config file, environment or flag
	From    string `json:"from,omitempty"` // the file, variable or flag
}

func runConfigShow(_ context.Context, o configShowOptions, g *globals) error {
	var values []configValue
	for _, v := range g.configValues() {
		if !o.changed || v.source.kind != fromDefault {
			values = append(values, v)
		}
	}
	if g.json {
		rows := make([]configShowRow, 0, len(values))
		for _, v := range values {
			r := configShowRow{Key: v.key.name, Value: v.shown(), Default: v.key.def, Source: v.source.kind, From: v.source.name}
			switch x := v.value.(type) {
			case int, bool:
				r.Value = x
			}
			rows = append(rows, r)
		}
		return g.printJSON(rows)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	for _, v := range values {
		shown := v.shown()
		if shown == "" {
			shown = `""`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.key.name, printable(shown), printable(v.source.String()))
	}
	return tw.Flush()
}

type configReferenceOptions struct {
	output string
}

// newConfigReferenceCmd writes docs/configuration.md (go generate).
func newConfigReferenceCmd(g *globals) *cobra.Command {
	var o configReferenceOptions
	cmd := &cobra.Command{
		Use:    "reference [--output FILE]",
		Short:  "Write the configuration reference in Markdown (docs/configuration.md)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigReference(cmd.Context(), o, g)
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "write to FILE instead of stdout")
	return cmd
}

func runConfigReference(_ context.Context, o configReferenceOptions, g *globals) error {
	if o.output == "" {
		_, err := g.stdout.Write(configReference())
		return err
	}
	return writeFileAtomic(o.output, configReference(), 0o644)
}

// configReference is docs/configuration.md, made from configKeys.
func configReference() []byte {
	var b bytes.Buffer
	b.WriteString(`# Configuration reference

<!-- Generated from configKeys in cmd/ccdir/config.go by go generate ./cmd/ccdir; do not edit. -->

ccdir reads its settings, in this order of precedence:

1. flags (only the keys that name one below);
2. ` + "`CCDIR_*`" + ` environment variables: the key in upper case, dots become
   underscores (` + "`limits.security_contacts`" + ` is ` + "`CCDIR_LIMITS_SECURITY_CONTACTS`" + `);
   an empty variable counts as unset;
3. ` + "`config.yaml`" + ` in the home folder (` + "`--home`, `CCDIR_HOME`" + `), or the file named by
   ` + "`--config` or `CCDIR_CONFIG`" + `;
4. the defaults below.

` + "`ccdir config show`" + ` prints every key with its effective value and where it comes
from; ` + "`ccdir config show --changed`" + ` only those not at their default. Every value
is checked before a command runs: a wrong one is an error naming the key,
the value and where it came from (` + "`ccdir process`" + ` then exits 75, so that the
MTA keeps the mail until the value is fixed; ` + "`ccdir verify`" + `, which reads no
key, only warns). Secrets are never configuration values:
keys name the files that hold them.

In ` + "`config.yaml`" + ` a key ` + "`section.name`" + ` is written

` + "```yaml\nsection:\n    name: value\n```" + `

| key | default | type | environment | flag |
|---|---|---|---|---|
`)
	for i := range configKeys {
		k := &configKeys[i]
		def := "empty"
		if k.def != "" {
			def = "`" + k.def + "`"
		}
		flag := ""
		if k.flag != "" {
			flag = "`--" + k.flag + "`"
		}
		env := make([]string, 0, 2)
		for _, e := range k.envVars() {
			env = append(env, "`"+e+"`")
		}
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s | %s | %s |\n", k.name, anchor(k.name), def, k.typ.name, strings.Join(env, ", "), flag)
	}
	section := ""
	for i := range configKeys {
		k := &configKeys[i]
		if s, _, _ := strings.Cut(k.name, "."); s != section {
			section = s
			fmt.Fprintf(&b, "\n## %s\n", section)
		}
		fmt.Fprintf(&b, "\n### %s\n\n%s\n", k.name, k.help)
	}
	return b.Bytes()
}

// anchor is the id GitHub gives the heading "### key".
func anchor(key string) string {
	return strings.NewReplacer(".", "", " ", "-").Replace(strings.ToLower(key))
}
