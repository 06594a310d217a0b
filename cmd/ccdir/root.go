package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// Files inside the home folder.
const (
	configName = "config.yaml"
	dbName     = "directory.db"
	keysDir    = "keys"
	secretName = "directory.sec.asc"
	publicName = "directory.pub.asc"
	// revocationName is the directory key's revocation certificate,
	// written by init, to be moved offline.
	revocationName = "directory.rev.asc"
)

// globals is what every command shares: the streams, the configuration and
// the global flags.
type globals struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	v      *viper.Viper
	config map[string]configValue // the checked configuration (config.go)

	home       string
	configFile string
	json       bool

	now func() time.Time

	refused atomic.Int64 // messages refused by onDelivered
	// skippedChanges: due pending changes the daily run did not apply
	// (applyDue: tampered or unreadable rows).
	skippedChanges int
	// decided is the home's record of decided pending changes
	// (decisions), whose decisions mutateWith commits with its
	// transaction.
	decided *liveness.Decisions
}

const rootHelp = `ccdir keeps the contact directory of a ccTLD incident-response community:
who to call at every ccTLD when something breaks, with everyone's OpenPGP key.
Every change is a signed, hash-chained ledger entry; ccdir verify proves the
directory has not been tampered with.

Configuration: flags win over CCDIR_* environment variables (dots become
underscores: CCDIR_LIMITS_SECURITY_CONTACTS), which win over config.yaml in
the home folder, which wins over the defaults. ccdir config show prints
every key with its value and where it comes from.

EXIT STATUS
  0 ok, 1 error, 2 usage, 3 verify found a problem, 4 done but something
  needs attention (ping status), 75 temporary failure (process)`

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr, v: viper.New(), now: time.Now}
	if testOnlyNow != nil {
		g.now = testOnlyNow
	}
	cmd := &cobra.Command{
		Use:               "ccdir",
		Short:             "The signed contact directory of a ccTLD incident-response community",
		Long:              rootHelp,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: g.preRun,
	}
	cmd.SetIn(stdin)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.home, "home", "", "home folder (env CCDIR_HOME; default $XDG_DATA_HOME/ccdir)")
	pf.StringVar(&g.configFile, "config", "", "configuration file (env CCDIR_CONFIG; default HOME/config.yaml)")
	pf.BoolVar(&g.json, "json", false, "machine-readable JSON output")
	pf.String("passphrase-file", "", "file holding the directory key's passphrase (env CCDIR_PASSPHRASE_FILE, config key.passphrase_file)")

	cmd.AddCommand(
		newInitCmd(g),
		newMemberCmd(g),
		newContactCmd(g),
		newKeyCmd(g),
		newPubkeyCmd(g),
		newRekeyCmd(g),
		newImportCmd(g),
		newExportCmd(g),
		newBackupCmd(g), newRestoreCmd(g),
		newLogCmd(g),
		newVerifyCmd(g),
		newCheckCmd(g),
		newCoverageCmd(g),
		newDigestCmd(g),
		newPingCmd(g),
		newPendingCmd(g),
		newReportCmd(g),
		newOutboxCmd(g),
		newServeCmd(g),
		newProcessCmd(g),
		newAlertsCmd(g),
		newConfigCmd(g),
	)
	installBuildCommands(cmd, g) // version, --version, man, every command's Examples (examples.go)
	groupUsage(cmd)
	for _, c := range cmd.Commands() {
		setUsageErrors(c)
		addExitStatus(c)
	}
	return cmd
}

// addExitStatus ends the help of every command that does not say more
// with the exit codes all commands share.
func addExitStatus(cmd *cobra.Command) {
	if cmd.Runnable() && !strings.Contains(cmd.Long, "EXIT STATUS") {
		long := cmd.Long
		if long == "" {
			long = cmd.Short + "."
		}
		cmd.Long = long + "\n\nEXIT STATUS\n  0 ok, 1 error, 2 usage"
	}
	for _, c := range cmd.Commands() {
		addExitStatus(c)
	}
}

// groupUsage makes cmd and its descendants that only group subcommands
// (ccdir, member, contact, key) refuse an unknown subcommand as a usage
// error (exit 2) instead of cobra's plain error; alone they show their help.
func groupUsage(cmd *cobra.Command) {
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &usageError{fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())}
			}
			return nil
		}
		cmd.RunE = runGroupHelp
	}
	for _, c := range cmd.Commands() {
		groupUsage(c)
	}
}

// runGroupHelp is the handler of a command that only groups others: its
// help.
func runGroupHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// setUsageErrors makes argument and flag errors of cmd and its children
// usage errors (exit 2).
func setUsageErrors(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return &usageError{err}
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		setUsageErrors(c)
	}
}

// preRun runs before every command: setup, whose errors make process
// exit 75.
func (g *globals) preRun(cmd *cobra.Command, _ []string) error {
	err := g.setup(cmd)
	if err != nil && cmd.CommandPath() == "ccdir process" {
		// A mistake in the home or its configuration is the operator's:
		// the MTA keeps the mail and retries (exit 75) instead of
		// bouncing it to a sender that may be forged.
		return &tempFailError{err}
	}
	return err
}

// setup resolves the home folder and reads the configuration.
func (g *globals) setup(cmd *cobra.Command) error {
	if err := g.setConfigDefaults(cmd); err != nil {
		return err
	}
	if g.home == "" {
		g.home = os.Getenv("CCDIR_HOME")
	}
	if g.home == "" {
		data := os.Getenv("XDG_DATA_HOME")
		if data == "" {
			h, err := os.UserHomeDir()
			if err != nil {
				return withHint(err, "set --home or CCDIR_HOME")
			}
			data = filepath.Join(h, ".local", "share")
		}
		g.home = filepath.Join(data, "ccdir")
	}
	home, err := filepath.Abs(g.home)
	if err != nil {
		return err
	}
	g.home = home

	if cmd.Name() == "init" {
		return g.loadConfig(cmd, false) // init makes the home and its config
	}
	explicit := g.configFile != ""
	if !explicit {
		g.configFile = os.Getenv("CCDIR_CONFIG")
		explicit = g.configFile != ""
	}
	if !explicit {
		g.configFile = filepath.Join(g.home, configName)
	}
	g.v.SetConfigFile(g.configFile)
	g.v.SetConfigType("yaml")
	if err := g.v.ReadInConfig(); err != nil {
		// No config.yaml in the home is fine; a home that is missing or
		// not a folder is reported by checkHome, with its hint.
		if !explicit && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
			return g.loadConfig(cmd, false)
		}
		return withHint(fmt.Errorf("config %s: %w", g.configFile, err), "fix the file, or point --config elsewhere")
	}
	return g.loadConfig(cmd, true)
}

func (g *globals) path(name ...string) string {
	return filepath.Join(append([]string{g.home}, name...)...)
}

// checkHome makes sure the home folder is a ccdir home.
func (g *globals) checkHome() error {
	st, err := os.Stat(g.home)
	if errors.Is(err, fs.ErrNotExist) {
		return withHint(fmt.Errorf("home folder %s does not exist", g.home),
			"create one with: ccdir init --home %s --name NAME --address ADDR, or point --home (CCDIR_HOME) at an existing one", g.home)
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("home %s is not a folder", g.home)
	}
	if _, err := os.Stat(g.path(dbName)); errors.Is(err, fs.ErrNotExist) {
		return withHint(fmt.Errorf("%s is not a ccdir home: it has no %s", g.home, dbName),
			"point --home (CCDIR_HOME) at a folder made by ccdir init")
	}
	return nil
}

// openRead opens the directory without its secret key.
func (g *globals) openRead(ctx context.Context) (*directory.Store, error) {
	return g.openAudit(ctx, inbound.EvidenceCheck{})
}

// openAudit is openRead whose Verify re-checks evidence with ev (with
// the directory's secret key, to open the whole mails an older ccdir
// kept encrypted to it: evidenceCheck).
func (g *globals) openAudit(ctx context.Context, ev inbound.EvidenceCheck) (*directory.Store, error) {
	if err := g.checkHome(); err != nil {
		return nil, err
	}
	return directory.Open(ctx, g.path(dbName), directory.Options{ReadOnly: true, Now: g.now, Migrations: migrations(),
		Evidence: ev.Verify, EvidenceID: ev.ID, Asked: liveness.ParseApplyEvidence,
		KeyVerifier: ledgerKeyVerifier, Fingerprints: keys.Fingerprints, SplitSignatures: keys.SplitSignatures})
}

// snapshot reads the whole directory at its current head, for a command
// that shows it to the operator: the tables as they are, with a warning
// when they are not what the signed ledger says (see warnTampered).
func (g *globals) snapshot(ctx context.Context) (*directory.Snapshot, error) {
	s, err := g.openRead(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	g.warnTampered(ctx, s)
	return s.Snapshot(ctx)
}

// checked reads the whole directory as its signed ledger says it is
// (directory.Store.Checked, with the home's public key): what leaves the
// home as the directory (an export, signed or not) is read so, and tables
// that disagree are refused with a *directory.TamperError naming the row.
func (g *globals) checked(ctx context.Context) (*directory.Snapshot, error) {
	s, err := g.openRead(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	fpr, verify, err := g.ledgerKey()
	if err != nil {
		return nil, err
	}
	return s.Checked(ctx, fpr, verify)
}

// ledgerKey is the directory key's fingerprint and the check of its
// signatures on ledger entries, from the home's public key (which must be
// the secret key's, see publicKey).
func (g *globals) ledgerKey() (string, directory.VerifyFunc, error) {
	pub, err := g.publicKey()
	if err != nil {
		return "", nil, err
	}
	v, err := directoryVerifier(pub, g.now())
	if err != nil {
		return "", nil, fmt.Errorf("directory key %s: %w", g.path(keysDir, publicName), err)
	}
	return pub.Fingerprint, v.Verify, nil
}

// warnTampered is what a command that only shows the directory to the
// operator (contact show|list, member show|list, coverage, key check)
// checks: it shows the tables as they are, the better to look at them,
// but warns, naming the first row, when they are not what the signed
// ledger says (or when that could not be checked).
func (g *globals) warnTampered(ctx context.Context, s *directory.Store) {
	fpr, verify, err := g.ledgerKey()
	if err == nil {
		_, err = s.Checked(ctx, fpr, verify)
	}
	switch {
	case errors.Is(err, directory.ErrTampered):
		g.warnf("%v; what follows is the tables as they are, not what the signed ledger says", err)
	case err != nil:
		g.warnf("the tables could not be checked against the signed ledger: %v", err)
	}
}

// openWrite unlocks the directory key and opens the directory for changes.
func (g *globals) openWrite(ctx context.Context) (*directory.Store, error) {
	s, _, err := g.openWriteKey(ctx)
	return s, err
}

// openOps opens the directory without its key, for the operational
// tables (outbox, digest status): the signed state stays read-only.
func (g *globals) openOps(ctx context.Context) (*directory.Store, error) {
	if err := g.checkHome(); err != nil {
		return nil, err
	}
	return directory.Open(ctx, g.path(dbName), directory.Options{Now: g.now, Migrations: migrations(), KeyVerifier: ledgerKeyVerifier, Fingerprints: keys.Fingerprints, SplitSignatures: keys.SplitSignatures})
}

// openWriteKey is openWrite that also returns the unlocked directory key.
func (g *globals) openWriteKey(ctx context.Context) (*directory.Store, *keys.Secret, error) {
	if err := g.checkHome(); err != nil {
		return nil, nil, err
	}
	sec, err := g.secretKey()
	if err != nil {
		return nil, nil, err
	}
	if err := usableDirectoryKey(sec, g.now()); err != nil {
		return nil, nil, err
	}
	s, err := g.openWriteWith(ctx, sec)
	return s, sec, err
}

// openWriteWith opens the directory for changes signed by sec, which
// must be the directory's key.
func (g *globals) openWriteWith(ctx context.Context, sec *keys.Secret) (*directory.Store, error) {
	s, err := g.openSigner(ctx, sec)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	if !strings.EqualFold(info.KeyFingerprint, sec.Fingerprint()) {
		s.Close()
		err := fmt.Errorf("the key in %s (%s) is not the directory's key (%s)", g.path(keysDir, secretName), sec.Fingerprint(), info.KeyFingerprint)
		if _, serr := os.Stat(g.path(keysDir, nextSecretName)); serr == nil {
			return nil, withHint(err, "a ccdir rekey was interrupted: run ccdir rekey again to finish it")
		}
		return nil, err
	}
	return s, nil
}

// openSigner opens the directory for changes signed by sec.
func (g *globals) openSigner(ctx context.Context, sec *keys.Secret) (*directory.Store, error) {
	return directory.Open(ctx, g.path(dbName), directory.Options{Signer: sec, Now: g.now, MaxSecurityContacts: g.number("limits.security_contacts"), Migrations: migrations(), Fingerprints: keys.Fingerprints, Operator: g.operatorReserved(), BounceAddress: g.text("bounces.address"),
		KeyVerifier: ledgerKeyVerifier, SplitSignatures: keys.SplitSignatures})
}

// ledgerKeyVerifier reads a directory key the ledger names, as it stood
// when it started to sign (at), for a replay that follows the chain of
// the directory's keys (directory.Options.KeyVerifier): an earlier key
// is checked as it was then, not now (it may have expired or been
// revoked since).
func ledgerKeyVerifier(armored string, at time.Time) (string, directory.VerifyFunc, error) {
	p, err := keys.ParsePublicOneAt([]byte(armored), at)
	if err != nil {
		return "", nil, err
	}
	v, err := p.NewVerifier(at)
	if err != nil {
		return "", nil, err
	}
	return p.Fingerprint, v.Verify, nil
}

// mutate opens the directory for changes and runs fn in one write
// transaction: every change fn makes is a signed ledger entry, and all of
// them commit or none, with the notices of the contacts they change
// (announce): no change without its notices, no notice without its
// change. fn returns what it did, for the report; an update that changes
// nothing is reported as such (exit 0) with that text, or "unchanged".
func (g *globals) mutate(ctx context.Context, fn func(tx *directory.Tx) (string, error)) error {
	return g.mutateWith(ctx, mutateOptions{}, func(tx *directory.Tx, _ *txNotes) (string, error) { return fn(tx) })
}

// mutateUnannounced is mutate without the notices: for ccdir import, the
// operator's bulk load, whose changes the next digest lists.
func (g *globals) mutateUnannounced(ctx context.Context, fn func(tx *directory.Tx) (string, error)) error {
	return g.mutateWith(ctx, mutateOptions{unannounced: true}, func(tx *directory.Tx, _ *txNotes) (string, error) { return fn(tx) })
}

// mutateOptions are how mutateWith writes its transaction.
type mutateOptions struct {
	unannounced bool   // no notices (import)
	evidence    []byte // the evidence of the ledger entries (--confirmed, a pending change applied)
	daily       bool   // the daily run applies a pending change (txNotes.daily)
	quiet       bool   // report nothing (the daily run reports what it applied itself)
	// guarded: fn may ask for pending changes (proposeChange). fn runs
	// twice: first with every change it would ask for made at once, in
	// a transaction that is rolled back, so that a change the directory
	// would refuse when applied (an address or key another contact has,
	// one of the directory's own addresses) is refused now, by the
	// directory's own checks, not announced and superseded later; then
	// for real.
	guarded bool
}

// errDryRun rolls back the first run of a guarded mutation.
var errDryRun = errors.New("dry run")

// mutateWith is mutate with options, whose fn also records what it did
// to pending changes (notes), announced with the rest. A transaction
// that only asked for or decided on pending changes commits without a
// ledger entry.
func (g *globals) mutateWith(ctx context.Context, o mutateOptions, fn func(tx *directory.Tx, notes *txNotes) (string, error)) error {
	s, sec, err := g.openWriteKey(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	var ob *outbox.Outbox
	if !o.unannounced {
		if ob, err = g.openOutboxIn(ctx, s); err != nil {
			return err
		}
		ob.Now = g.now
	}
	actor := g.operatorActor()
	actor.Evidence = o.evidence
	if o.guarded {
		_, err := s.Update(ctx, actor, func(tx *directory.Tx) error {
			if _, err := fn(tx, &txNotes{actor: actor.Name, dryRun: true}); err != nil {
				return err
			}
			return errDryRun
		})
		if err != nil && !errors.Is(err, errDryRun) && !errors.Is(err, directory.ErrUnchanged) {
			return err
		}
	}
	var what string
	var told *changeNotices
	entries, err := s.Update(ctx, actor, func(tx *directory.Tx) (err error) {
		defer func() { g.decided.Forget(tx.SQL()) }() // rolled back: nothing decided
		notes := &txNotes{actor: actor.Name, daily: o.daily}
		what, err = fn(tx, notes)
		if err != nil {
			what = ""
			return err
		}
		if !o.unannounced {
			if told, err = g.announce(ctx, s, sec, ob, tx, actor, notes); err != nil {
				return err
			}
		}
		// Last, before tx commits: the pending changes it decided.
		return g.decided.Commit(tx.SQL())
	})
	if errors.Is(err, directory.ErrUnchanged) {
		if what == "" {
			what = "unchanged"
		}
		if o.quiet {
			return nil
		}
		return g.unchanged(what)
	}
	if err != nil {
		return err
	}
	var notified []string
	if told != nil {
		notified = told.sent
		g.deliver(ctx, ob, told)
	}
	if o.quiet {
		return nil
	}
	return g.changed(entries, what, notified)
}

// secretKey loads and unlocks the directory key.
func (g *globals) secretKey() (*keys.Secret, error) {
	pass, err := g.passphrase()
	if err != nil {
		return nil, err
	}
	sec, err := keys.ReadSecretFile(g.path(keysDir, secretName), pass)
	switch {
	case errors.Is(err, keys.ErrPassphraseRequired):
		return nil, withHint(err, "give the passphrase file with --passphrase-file, CCDIR_PASSPHRASE_FILE or key.passphrase_file in %s", g.configFile)
	case errors.Is(err, keys.ErrWrongPassphrase):
		return nil, withHint(err, "check the passphrase file %s", g.text("key.passphrase_file"))
	case err != nil:
		return nil, err
	}
	sec.SetClock(g.now)
	return sec, nil
}

// maxPassphrase caps what is read from a passphrase file.
const maxPassphrase = 4096

func (g *globals) passphrase() ([]byte, error) {
	name := g.text("key.passphrase_file")
	if name == "" {
		return nil, nil
	}
	return readPassphrase(name)
}

// readPassphrase reads a passphrase or password file (key.passphrase_file,
// init --passphrase-file, delivery.password_file): one that group or
// others may access is refused, as ssh refuses such a key
// (keys.OpenPrivateFile).
func readPassphrase(name string) ([]byte, error) {
	f, err := keys.OpenPrivateFile(name)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPassphrase+1))
	if err != nil {
		return nil, fmt.Errorf("passphrase file %s: %w", name, err)
	}
	if len(b) > maxPassphrase {
		return nil, fmt.Errorf("passphrase file %s is larger than %d bytes", name, maxPassphrase)
	}
	b = []byte(strings.TrimRight(string(b), "\r\n"))
	if len(b) == 0 {
		return nil, withHint(fmt.Errorf("passphrase file %s is empty", name), "write the passphrase into it, or use --no-passphrase")
	}
	return b, nil
}

// publicKey reads the directory's public key from the home folder.
func (g *globals) publicKey() (*keys.Public, error) {
	b, err := os.ReadFile(g.path(keysDir, publicName))
	if err != nil {
		return nil, fmt.Errorf("directory public key: %w", err)
	}
	p, err := keys.ParsePublicOne(b)
	if err != nil {
		return nil, fmt.Errorf("directory public key %s: %w", g.path(keysDir, publicName), err)
	}
	// The public key must be the secret key's, which only the operator
	// can replace (it signs): a swapped public file is caught here.
	fpr, err := keys.SecretFileFingerprint(g.path(keysDir, secretName))
	if err != nil {
		return nil, fmt.Errorf("directory secret key: %w", err)
	}
	if fpr != p.Fingerprint {
		return nil, withHint(&keyMismatchError{fmt.Sprintf("%s holds key %s, but the directory's secret key is %s", g.path(keysDir, publicName), p.Fingerprint, fpr)},
			"someone replaced a key file; restore the home from a backup and run ccdir verify")
	}
	return p, nil
}

// keyMismatchError is a public key file that is not the secret key's.
type keyMismatchError struct{ msg string }

func (e *keyMismatchError) Error() string { return e.msg }

// printJSON writes v as indented JSON.
func (g *globals) printJSON(v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := g.stdout.Write(jsonPrintable(b.Bytes()))
	return err
}

// printf writes to stdout; its arguments are shown printable.
func (g *globals) printf(format string, args ...any) {
	fmt.Fprintf(g.stdout, format, printableArgs(args)...)
}

// warnf writes a warning to stderr; its arguments are shown printable.
func (g *globals) warnf(format string, args ...any) {
	fmt.Fprintf(g.stderr, "ccdir: warning: "+format+"\n", printableArgs(args)...)
}

// logger is the log of serve and process, on stderr: one line per
// message, each shown printable.
func (g *globals) logger() *log.Logger {
	return log.New(printableLines{g.stderr}, "ccdir: ", 0)
}

// changed reports the result of a change, and who was sent its notice.
func (g *globals) changed(entries []directory.Entry, what string, notified []string) error {
	if len(entries) == 0 {
		// Only pending changes: asked for, decided, or none applied.
		if g.json {
			out := map[string]any{"result": what, "entries": 0}
			if len(notified) > 0 {
				out["notified"] = notified
			}
			return g.printJSON(out)
		}
		for _, l := range strings.Split(what, "\n") {
			g.printf("%s\n", l)
		}
		if len(notified) > 0 {
			g.printf("notice of the change sent to %s\n", strings.Join(notified, ", "))
		}
		return nil
	}
	last := entries[len(entries)-1]
	if g.json {
		out := map[string]any{"result": what, "serial": last.Seq, "head": last.Hash, "entries": len(entries)}
		if len(notified) > 0 {
			out["notified"] = notified
		}
		return g.printJSON(out)
	}
	// what may have lines (the changes that wait, then what changed).
	lines := strings.Split(what, "\n")
	for _, l := range lines[:len(lines)-1] {
		g.printf("%s\n", l)
	}
	g.printf("%s (serial %d)\n", lines[len(lines)-1], last.Seq)
	if len(notified) > 0 {
		g.printf("notice of the change sent to %s\n", strings.Join(notified, ", "))
	}
	return nil
}

// unchanged reports a change that changed nothing (no ledger entry).
func (g *globals) unchanged(what string) error {
	if g.json {
		return g.printJSON(map[string]any{"result": what, "entries": 0})
	}
	g.printf("%s\n", what)
	return nil
}

// flagChanged says whether the user gave a flag.
func flagChanged(fs *pflag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	return f != nil && f.Changed
}

// testOnlyNow, when set by the tests, replaces the clock.
var testOnlyNow func() time.Time

// testOnlyPanic, when set by the tests, panics in process while it
// handles a message.
var testOnlyPanic func()
