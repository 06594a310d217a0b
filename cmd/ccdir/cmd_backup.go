package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/backup"
)

type backupOptions struct {
	output   string
	keysOnly bool
}

// backupWait bounds how long backup waits for a rekey under way to
// install its key files (see backupFiles).
var backupWait = 15 * time.Second

func newBackupCmd(g *globals) *cobra.Command {
	var o backupOptions
	cmd := &cobra.Command{
		Use:   "backup -o FILE [--keys-only]",
		Short: "Write the home (database, keys, configuration) to one consistent backup file",
		Long: `Write one file that holds the whole home as it stood at one moment: the
database (every table, signed and operational), keys/ (the directory's
secret and public keys, the earlier keys a rekey kept, the outbox key, the
operator's key) and the configuration (config.yaml, or the --config file).

The database's write lock is taken first, as every change takes it: no
change, digest, outbox or serve commit falls between the copy of the
database and that of the files. A rekey writes its key files after its
ledger entry: while one is under way (keys/` + nextSecretName + ` is there, or
the key files are not the key the ledger names) backup waits for it, up to
15 s, then says so. The database is copied with SQLite's VACUUM INTO (from
its live rows only). Other writers wait for the lock meanwhile (a few
milliseconds for a small directory), up to their busy timeout.

With operator.key set, the file is encrypted to the operator's key (gpg -d
FILE gives the tar.gz); without it, it is written unencrypted, mode 0600,
with a warning: it holds the directory's secret key and every contact.
The file is written to a temporary file beside FILE and renamed into place:
never a partial file at FILE. -o - writes to stdout.

--keys-only leaves the database out: for a home whose database is
replicated apart (Litestream, docs/replication.md); take one after every
rekey, key update-uids and key import --operator.

Restore with: ccdir restore FILE --home NEWDIR

EXIT STATUS
  0 written, 1 error (nothing written at FILE), 2 usage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBackup(cmd.Context(), o, g)
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "the backup file (- for stdout)")
	cmd.Flags().BoolVar(&o.keysOnly, "keys-only", false, "keys/ and the configuration only, without the database")
	return cmd
}

func runBackup(ctx context.Context, o backupOptions, g *globals) error {
	if o.output == "" {
		return usagef("backup needs -o FILE (or -o - for stdout)")
	}
	if err := g.checkHome(); err != nil {
		return err
	}
	// The operator's key first: a key that cannot encrypt is an error,
	// never a silent fall back to an unencrypted file.
	var rcpt *keys.Public
	if fpr := g.text("operator.key"); fpr != "" {
		pub, err := g.operatorKeyFile(fpr)
		if err != nil {
			return err
		}
		if err := pub.Check(g.now()); err != nil {
			return withHint(fmt.Errorf("operator.key %s cannot be encrypted to: %w", fpr, err),
				"import the operator's renewed key: ccdir key import --operator FILE")
		}
		rcpt = pub
	}
	s, err := g.openOps(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	tmp, err := os.MkdirTemp("", "ccdir-backup-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dbCopy := ""
	if !o.keysOnly {
		dbCopy = filepath.Join(tmp, dbName)
	}
	var files []backup.Source
	var info directory.Info
	var head directory.Head
	deadline := time.Now().Add(backupWait)
	for {
		files = nil
		head, err = s.Backup(ctx, dbCopy, func(i directory.Info, _ directory.Head) error {
			info = i
			var err error
			files, err = g.backupFiles(i)
			return err
		})
		var ru *rekeyUnderwayError
		if !errors.As(err, &ru) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	if dbCopy != "" {
		files = append([]backup.Source{{Name: backup.DatabaseName, Mode: 0o600, Path: dbCopy}}, files...)
	}
	m := backup.Manifest{Created: g.now().UTC().Format(time.RFC3339), Directory: info.Name,
		KeyFingerprint: info.KeyFingerprint, Serial: head.Serial, Head: head.Hash, KeysOnly: o.keysOnly}
	write := func(w io.Writer) error {
		if rcpt == nil {
			return backup.Write(w, m, files)
		}
		ew, err := backup.Encrypt(w, rcpt, g.now())
		if err != nil {
			return err
		}
		if err := backup.Write(ew, m, files); err != nil {
			return err
		}
		return ew.Close()
	}
	if o.output == "-" {
		if err := write(g.stdout); err != nil {
			return err
		}
	} else {
		f, err := newAtomicFile(o.output, 0o600)
		if err != nil {
			return err
		}
		if err := write(f); err != nil {
			f.Abort()
			return err
		}
		if err := f.Commit(); err != nil {
			return err
		}
	}
	if rcpt == nil {
		g.warnf("operator.key is not set: %s is NOT encrypted, and it holds the directory's secret key and every contact: keep it as safe as the home; set the operator's key with: ccdir key import --operator --email ADDRESS FILE", o.output)
	}
	if o.output == "-" {
		return nil // stdout is the backup
	}
	if g.json {
		res := map[string]any{"file": o.output, "serial": head.Serial, "head": head.Hash, "files": len(files), "keys_only": o.keysOnly, "encrypted_to": nil}
		if rcpt != nil {
			res["encrypted_to"] = rcpt.Fingerprint
		}
		return g.printJSON(res)
	}
	how := "not encrypted (mode 0600)"
	if rcpt != nil {
		how = "encrypted to the operator's key " + rcpt.Fingerprint
	}
	what := "database, keys and configuration"
	if o.keysOnly {
		what = "keys and configuration only"
	}
	g.printf("wrote %s: %s at %s, %s, %s\n", o.output, what, head, plural(len(files), "file"), how)
	return nil
}

// rekeyUnderwayError: the key files are not (yet) those of the key the
// ledger names, or a rekey's new key waits in keys/.
type rekeyUnderwayError struct{ msg string }

func (e *rekeyUnderwayError) Error() string { return e.msg }

// backupFiles reads, under the database's write lock (directory.Store.
// Backup), the files a backup holds beside the database: every regular
// file of keys/ (not the temporary ones, whose names start with a dot)
// and the configuration file. The key files must be those of the key
// the ledger names (info), with no rekey under way: else a
// *rekeyUnderwayError, for the caller to wait.
func (g *globals) backupFiles(info directory.Info) ([]backup.Source, error) {
	hint := "a ccdir rekey is under way, or was interrupted: let it finish, or run ccdir rekey to finish it, then back up again"
	if _, err := os.Lstat(g.path(keysDir, nextSecretName)); err == nil {
		return nil, withHint(&rekeyUnderwayError{fmt.Sprintf("keys/%s is there: a rekey is installing a new key", nextSecretName)}, "%s", hint)
	}
	fpr, err := keys.SecretFileFingerprint(g.path(keysDir, secretName))
	if err != nil {
		return nil, fmt.Errorf("directory secret key: %w", err)
	}
	if !strings.EqualFold(fpr, info.KeyFingerprint) {
		return nil, withHint(&rekeyUnderwayError{fmt.Sprintf("keys/%s holds key %s, but the ledger names %s", secretName, fpr, info.KeyFingerprint)}, "%s", hint)
	}
	if _, err := g.publicKey(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(g.path(keysDir))
	if err != nil {
		return nil, err
	}
	var out []backup.Source
	for _, e := range ents {
		name := e.Name()
		// Not a rekey's new key, which the ledger did not name when the
		// lock was taken (it is looked for above): a rekey that starts
		// now commits after this backup.
		if strings.HasPrefix(name, ".") || !e.Type().IsRegular() || name == nextSecretName {
			continue
		}
		src, err := backupSource(g.path(keysDir, name), backup.KeysDir+"/"+name)
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if _, err := os.Stat(g.configFile); err == nil {
		src, err := backupSource(g.configFile, backup.ConfigName)
		if err != nil {
			return nil, err
		}
		src.Mode = 0o600
		out = append([]backup.Source{src}, out...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return out, nil
}

// backupSource reads one file for a backup: mode 0644 if its group or
// others may read it (a public key), else 0600.
func backupSource(path, name string) (backup.Source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return backup.Source{}, err
	}
	data, err := readCapped(path, backup.MaxKeyFile)
	if err != nil {
		return backup.Source{}, err
	}
	mode := os.FileMode(0o600)
	if st.Mode().Perm()&0o044 != 0 {
		mode = 0o644
	}
	return backup.Source{Name: name, Mode: mode, Data: data}, nil
}
