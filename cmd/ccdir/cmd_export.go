package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/pkg/export"
)

type exportOptions struct {
	format string
	output string
	sign   bool
	mode   string // --mode: the files' permissions, octal; "" is 0600
}

// exportMode is the mode of an exported file when --mode does not say
// otherwise: the export holds every contact in clear, for its owner only.
const exportMode = 0o600

func newExportCmd(g *globals) *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   "export [--format text|json|csv|vcard|keys] [--sign] [-o FILE]",
		Short: "Write the whole directory as text, JSON, CSV, vCard or a key bundle",
		Long: `Write the whole directory at its current head. JSON carries the serial and the
head hash. With -o the file is written atomically, mode 0600 whatever the umask (the
export holds every contact in clear; --mode 0640 shares it with the file's
group; a mode that lets others write it or makes it executable is refused,
one that lets others read it warned about); --sign also writes FILE.asc, an armored detached signature by the
directory key that gpg --verify accepts with the key printed by ccdir pubkey.

EXIT STATUS
  0 written, 1 error (no file is left half-written), 2 usage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(cmd.Context(), o, g)
		},
	}
	cmd.Flags().StringVar(&o.format, "format", export.FormatText, "text, json, csv, vcard or keys")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "write to FILE instead of stdout")
	cmd.Flags().BoolVar(&o.sign, "sign", false, "also write FILE.asc, a detached signature by the directory key")
	cmd.Flags().StringVar(&o.mode, "mode", "", "permissions of the files written with -o, octal (default 0600)")
	return cmd
}

func runExport(ctx context.Context, o exportOptions, g *globals) error {
	if !validFormat(o.format) {
		return usagef("unknown format %q: want one of %s", o.format, strings.Join(export.Formats, ", "))
	}
	if o.sign && o.output == "" {
		return usagef("--sign needs -o FILE (the signature goes to FILE.asc)")
	}
	mode := os.FileMode(exportMode)
	if o.mode != "" {
		if o.output == "" || o.output == "-" {
			return usagef("--mode needs -o FILE")
		}
		m, err := strconv.ParseUint(o.mode, 8, 32)
		if err != nil || m > 0o777 {
			return usagef("--mode takes permissions in octal, such as 0600 or 0640, not %q", o.mode)
		}
		mode = os.FileMode(m)
		// An export holds every contact in clear.
		switch {
		case mode&0o002 != 0:
			return usagef("--mode %04o lets others write the export; use 0600 or 0640", mode)
		case mode&0o111 != 0:
			return usagef("--mode %04o makes the export executable; use 0600 or 0640", mode)
		case mode&0o004 != 0:
			g.warnf("--mode %04o lets every user of this machine read the contacts in %s", uint32(mode), o.output)
		}
	}
	// An export is the directory as its signed ledger says it is; one
	// signed by the directory key of tables that disagree would launder
	// them.
	snap, err := g.checked(ctx)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := export.Render(&buf, o.format, snap); err != nil {
		return err
	}
	if o.output == "" || o.output == "-" {
		_, err := g.stdout.Write(buf.Bytes())
		return err
	}
	var sig []byte
	if o.sign {
		sec, err := g.secretKey()
		if err != nil {
			return err
		}
		if !strings.EqualFold(sec.Fingerprint(), snap.Info.KeyFingerprint) {
			return fmt.Errorf("the key in the home folder is not the directory's key")
		}
		var b bytes.Buffer
		if err := sec.ArmoredDetachSign(&b, bytes.NewReader(buf.Bytes())); err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		sig = b.Bytes()
	}
	if err := writeExport(o.output, buf.Bytes(), sig, mode); err != nil {
		return err
	}
	if g.json {
		res := map[string]any{"file": o.output, "format": o.format, "serial": snap.Head.Serial, "head": snap.Head.Hash}
		if o.sign {
			res["signature"] = o.output + ".asc"
		}
		return g.printJSON(res)
	}
	g.printf("wrote %s (%s, %s)\n", o.output, o.format, snap.Head)
	if o.sign {
		g.printf("wrote %s (signature by %s)\n", o.output+".asc", snap.Info.KeyFingerprint)
	}
	return nil
}

// writeExport writes data to out and, unless sig is nil, sig to out.asc,
// both with mode: both files fully before renaming either into place.
func writeExport(out string, data, sig []byte, mode os.FileMode) error {
	df, err := newAtomicFile(out, mode)
	if err != nil {
		return err
	}
	if _, err := df.Write(data); err != nil {
		df.Abort()
		return err
	}
	if err := df.finish(); err != nil {
		return err
	}
	if sig == nil {
		return df.rename()
	}
	sf, err := newAtomicFile(out+".asc", mode)
	if err != nil {
		df.Abort()
		return err
	}
	if _, err := sf.Write(sig); err != nil {
		sf.Abort()
		df.Abort()
		return err
	}
	if err := sf.finish(); err != nil {
		df.Abort()
		return err
	}
	// The signature first: if the data cannot follow, the new signature
	// is removed, so no file is left beside a signature that does not
	// match it.
	if err := sf.rename(); err != nil {
		df.Abort()
		return err
	}
	if err := df.rename(); err != nil {
		os.Remove(out + ".asc")
		return err
	}
	return nil
}

func validFormat(f string) bool {
	for _, x := range export.Formats {
		if f == x {
			return true
		}
	}
	return false
}
