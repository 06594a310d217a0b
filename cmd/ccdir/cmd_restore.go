package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/backup"
)

type restoreOptions struct {
	secretKey string // --secret-key: the operator's secret key file
	db        string // --db: the database of a keys-only backup
	// passGiven: --passphrase-file was given on the command line, the
	// passphrase of --secret-key (key.passphrase_file, which the flag
	// sets); from CCDIR_PASSPHRASE_FILE or a configuration it is the
	// directory key's, and not used.
	passGiven bool
}

func newRestoreCmd(g *globals) *cobra.Command {
	var o restoreOptions
	cmd := &cobra.Command{
		Use:   "restore FILE|- --home DIR [--secret-key FILE [--passphrase-file F]] [--db DATABASE]",
		Short: "Make a new home from a backup written by ccdir backup",
		Long: `Unpack a backup made by ccdir backup into the home folder DIR (--home,
CCDIR_HOME), which must not exist or be empty: restore never writes over a
home. Every file is checked against the backup's manifest (name, size,
SHA-256); the database must be at the head the manifest names and the key
files must be the key its ledger names. The files are unpacked into a
temporary folder beside DIR and renamed to DIR at the end: a backup that
fails any check leaves nothing at DIR.

A backup encrypted to the operator's key is read with --secret-key FILE,
the operator's secret key (gpg --export-secret-keys --armor FPR > FILE,
mode 0600), and --passphrase-file with its passphrase; or decrypt it with
gpg and give the result on stdin: gpg -d FILE | ccdir restore - --home DIR.

A keys-only backup (ccdir backup --keys-only) needs --db DATABASE, the
database restored apart (litestream restore): its ledger must name the key
of the backup's key files; if it names a later key, a rekey came after the
keys backup, and the keys backup taken after it is needed.

Then check the new home: ccdir verify --home DIR --head SERIAL:HASH, with
the head restore prints. The configuration comes back as DIR/config.yaml;
paths it names (key.passphrase_file, delivery) must exist on this host.

EXIT STATUS
  0 restored, 1 refused (nothing written at DIR), 2 usage`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.passGiven = flagChanged(cmd.Flags(), "passphrase-file")
			return runRestore(cmd.Context(), o, g, args[0])
		},
	}
	cmd.Flags().StringVar(&o.secretKey, "secret-key", "", "the operator's secret key, to decrypt an encrypted backup (with --passphrase-file for its passphrase)")
	cmd.Flags().StringVar(&o.db, "db", "", "the database for a keys-only backup (from litestream restore)")
	return cmd
}

func runRestore(ctx context.Context, o restoreOptions, g *globals, file string) error {
	home := g.home
	passFile := ""
	if o.passGiven {
		passFile = g.text("key.passphrase_file")
	}
	if st, err := os.Stat(home); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s is not a folder", home)
		}
		ents, err := os.ReadDir(home)
		if err != nil {
			return err
		}
		if len(ents) > 0 {
			return withHint(fmt.Errorf("home %s is not empty: restore never writes over a home", home),
				"restore into a new folder (--home NEWDIR); to replace this home, move it aside first")
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if passFile != "" && o.secretKey == "" {
		return usagef("--passphrase-file is the passphrase of --secret-key FILE, which is missing")
	}
	var sec *keys.Secret
	if o.secretKey != "" {
		var pass []byte
		if passFile != "" {
			p, err := readPassphrase(passFile)
			if err != nil {
				return err
			}
			pass = p
		}
		s, err := keys.ReadSecretFile(o.secretKey, pass)
		switch {
		case errors.Is(err, keys.ErrPassphraseRequired):
			return withHint(err, "give its passphrase with --passphrase-file FILE")
		case errors.Is(err, keys.ErrWrongPassphrase):
			return withHint(err, "check the passphrase file %s", passFile)
		case err != nil:
			return err
		}
		sec = s
	}
	var in io.Reader
	name := file
	if file == "-" {
		in, name = g.stdin, "stdin"
	} else {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", file)
		}
		in = f
	}
	plain, err := backup.Open(in, sec)
	switch {
	case errors.Is(err, backup.ErrEncrypted):
		return withHint(fmt.Errorf("%s is encrypted (to the operator's key)", name),
			"give the operator's secret key: --secret-key FILE [--passphrase-file F]; or decrypt it with gpg: gpg -d %s | ccdir restore - --home %s", file, home)
	case errors.Is(err, backup.ErrNotBackup):
		return withHint(fmt.Errorf("%s: %w", name, err), "give a file written by ccdir backup")
	case err != nil:
		return withHint(fmt.Errorf("%s: %w", name, err), "is it encrypted to another key? gpg --list-packets %s names the key", file)
	}
	parent := filepath.Dir(home)
	if st, err := os.Stat(parent); err != nil || !st.IsDir() {
		return withHint(fmt.Errorf("%s, the folder of the home %s, is not there", parent, home), "create it first (mkdir -p %s), or restore elsewhere", parent)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(home)+".restore-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	m, err := backup.Extract(plain, tmp)
	if err != nil {
		return withHint(fmt.Errorf("%s: %w", name, err), "nothing was written at %s; take the backup again, or use another copy", home)
	}
	switch {
	case m.KeysOnly && o.db == "":
		return withHint(fmt.Errorf("%s is a keys-only backup: it has no database", name),
			"give the database restored apart: --db FILE (litestream restore -o FILE ...)")
	case !m.KeysOnly && o.db != "":
		return usagef("--db is for a keys-only backup; %s has its own database", name)
	case m.KeysOnly:
		if err := copyInto(o.db, filepath.Join(tmp, dbName)); err != nil {
			return err
		}
	}
	head, err := restoredHead(ctx, tmp, m)
	if err != nil {
		return err
	}
	if m.KeysOnly && head.Serial < m.Serial {
		g.warnf("the database %s is at serial %d, older than the keys backup (serial %d): the replica may lag", o.db, head.Serial, m.Serial)
	}
	if err := os.Remove(home); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, home); err != nil {
		return err
	}
	done = true
	if err := syncDir(parent); err != nil {
		return err
	}
	if g.json {
		return g.printJSON(map[string]any{"home": home, "serial": head.Serial, "head": head.Hash, "key": m.KeyFingerprint,
			"created": m.Created, "keys_only": m.KeysOnly, "files": len(m.Files)})
	}
	g.printf("restored %s from %s (taken %s): %s, key %s\n", home, name, m.Created, head, m.KeyFingerprint)
	g.printf("check it with: ccdir verify --home %s --head %d:%s\n", home, head.Serial, head.Hash)
	return nil
}

// restoredHead checks the home unpacked in dir against its manifest m:
// the database's ledger names the key of the key files and, for a whole
// backup, is at m's head. It returns the database's head.
func restoredHead(ctx context.Context, dir string, m *backup.Manifest) (directory.Head, error) {
	s, err := directory.Open(ctx, filepath.Join(dir, dbName), directory.Options{ReadOnly: true, Migrations: migrations()})
	if err != nil {
		return directory.Head{}, err
	}
	defer s.Close()
	info, err := s.Info(ctx)
	if err != nil {
		return directory.Head{}, err
	}
	head, err := s.Head(ctx)
	if err != nil {
		return directory.Head{}, err
	}
	fpr, err := keys.SecretFileFingerprint(filepath.Join(dir, keysDir, secretName))
	if err != nil {
		return directory.Head{}, fmt.Errorf("the backup's directory secret key: %w", err)
	}
	switch {
	case m.KeysOnly && !strings.EqualFold(info.KeyFingerprint, fpr):
		return head, withHint(fmt.Errorf("the database names the directory key %s, but the keys backup holds key %s: a rekey came after the keys backup", info.KeyFingerprint, fpr),
			"restore the keys backup taken after the rekey (ccdir backup --keys-only, run after every rekey)")
	case !strings.EqualFold(info.KeyFingerprint, fpr) || !strings.EqualFold(m.KeyFingerprint, fpr):
		return head, fmt.Errorf("the backup's database names key %s, its manifest %s, its key file %s: the backup is damaged", info.KeyFingerprint, m.KeyFingerprint, fpr)
	case !m.KeysOnly && (head.Serial != m.Serial || head.Hash != m.Head):
		return head, fmt.Errorf("the backup's database is at %s, its manifest says serial %d head %s: the backup is damaged", head, m.Serial, m.Head)
	}
	return head, nil
}

// copyInto copies the regular file from to the new file to (0600).
func copyInto(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", from)
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
