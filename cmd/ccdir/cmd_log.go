package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/inbound"
)

type logOptions struct {
	since       int64
	evidence    int64
	evidenceSet bool   // --evidence given
	sinceSet    bool   // --since given
	output      string // -o: write the evidence for gpg and sq
	force       bool   // --force: -o may replace a file
	pin         string // --key: the directory key's fingerprint
}

func newLogCmd(g *globals) *cobra.Command {
	var o logOptions
	cmd := &cobra.Command{
		Use:   "log [--since N] [--evidence N [-o FILE [--force] [--key FINGERPRINT]]]",
		Short: "Show the audit trail: every ledger entry from serial N on",
		Long: `Show the audit trail: every ledger entry from serial N on.

With --evidence N, print instead the evidence kept with ledger entry N as
it is stored: for a change asked by signed mail, the signed data and the
member's signature over it (ccdir evidence v1: a header giving the form and
the byte sizes of the armored signature and of the signed data, a blank
line, the signature, then the data, which gpg --verify checks as a
detached signature); for an operator's change, the text it was confirmed
or applied with. Written to a file or a pipe, the bytes are exactly those
kept; on a terminal each line is shown as text, with control characters
escaped.

With -o FILE, write instead the member's signed statement behind entry N
in a form OpenPGP tools check as it is, with no splitting by hand:

  gpg --verify FILE                       (the member's key in gpg's keyring)
  sq verify --signer-cert KEY.asc FILE    (KEY.asc: the member's public key)

A clear-signed mail gives a clear-signed text; every other form (PGP/MIME
signed, signed and encrypted, inline signed or encrypted, a mail wrapped by
a mailing list) gives an OpenPGP signed message: the signed data exactly as
the member signed it (for an encrypted mail, what the decryption gave) and
the member's own signature, unchanged. Entry N is one made by a member's
signed mail, or one that applied a change a member asked for by signed
mail. ccdir first checks the ledger up to its head (as every command that
reads the directory for others does) and the members' statements up to
entry N as verify checks them, finds the key registered for the member
when the mail was taken, checks the statement with it, and prints which
key signed it, for which contact, and the commands to run. A KEY-ROTATE
signed by the old and the new key keeps both signatures: ccdir checks
the registered one and says the other is not checked; gpg holding only
the registered key prints "Good signature" and exits 2 for it until the
new key (attached to the statement) is imported. What this proves is
that the member's key signed the statement: a signature check, not a
content check (what the entry did: ccdir log). Evidence an older ccdir
kept as the whole mail is read again as the mail was; a mail that was
encrypted to the directory key is opened with the home's secret key, and
on a copy without it -o refuses it (the mail as kept is still shown
without -o). With --json and -o -, the JSON goes to stderr.

FILE is written with mode 0600 (it holds a contact's data), through a
temporary file in its folder linked into place (renamed, with --force), so
no half-written file is ever seen; an existing FILE is left alone unless
--force is given. -o -
writes to stdout and tells the rest on stderr. On a copy of a home without
the directory's secret key (an auditor's), pin the directory key with
--key, as for verify.

EXIT STATUS
  0 shown, 1 error (an unknown serial, an entry that keeps no evidence, an
  entry whose evidence is not a member's signed mail, FILE exists),
  2 usage, 3 (with -o) the ledger does not verify, or the evidence does
  not verify with the key registered then.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.evidenceSet = cmd.Flags().Changed("evidence")
			o.sinceSet = cmd.Flags().Changed("since")
			return runLog(cmd.Context(), o, g)
		},
	}
	cmd.Flags().Int64Var(&o.since, "since", 0, "first serial to show")
	cmd.Flags().Int64Var(&o.evidence, "evidence", 0, "print the evidence kept with the entry of this serial")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "with --evidence: write the member's signed statement to FILE, for gpg --verify and sq verify (- for stdout)")
	cmd.Flags().BoolVar(&o.force, "force", false, "with -o: replace FILE if it exists")
	cmd.Flags().StringVar(&o.pin, "key", "", "with -o: the directory key's fingerprint, known from outside the home (needed without the secret key)")
	return cmd
}

func runLog(ctx context.Context, o logOptions, g *globals) error {
	if !o.evidenceSet && (o.output != "" || o.force || o.pin != "") {
		return usagef("-o, --force and --key go with --evidence N")
	}
	if o.output == "" && (o.force || o.pin != "") {
		return usagef("--force and --key go with -o FILE")
	}
	if o.evidenceSet {
		if o.sinceSet {
			return usagef("--evidence and --since do not go together")
		}
		if g.json && o.output == "" {
			return usagef("--evidence prints the evidence as it is kept, not as JSON (with -o FILE, --json tells what was written)")
		}
		return runLogEvidence(ctx, o, g)
	}
	if o.since < 0 {
		return usagef("--since must not be negative")
	}
	s, err := g.openRead(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if g.json {
		// Stream a JSON array so memory stays flat however long the ledger.
		// JSON is written as it is (jsonPrintable escapes what could
		// drive a terminal), never through printf, whose printable would
		// turn it into something that is not JSON.
		first := true
		io.WriteString(g.stdout, "[")
		err := s.Log(ctx, o.since, func(e *directory.Entry) error {
			rec := struct {
				*directory.Entry
				Payload      json.RawMessage `json:"payload"`
				EvidenceSize int             `json:"evidence_bytes,omitempty"`
			}{e, json.RawMessage(e.Payload), len(e.Evidence)}
			if !json.Valid(rec.Payload) || !utf8.ValidString(e.Payload) {
				// A damaged payload is shown as a string (bytes that are
				// not UTF-8 as U+FFFD); verify names it.
				rec.Payload, _ = json.Marshal(e.Payload)
			}
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			sep := ",\n  "
			if first {
				sep = "\n  "
			}
			first = false
			_, err = g.stdout.Write(append([]byte(sep), jsonPrintable(b)...))
			return err
		})
		if err != nil {
			return err
		}
		_, err = io.WriteString(g.stdout, "\n]\n")
		return err
	}
	return s.Log(ctx, o.since, func(e *directory.Entry) error {
		g.printf("%6d  %s  %-8s  %-14s  %s\n", e.Seq, e.Time, e.Actor, e.Op, summarize(e))
		return nil
	})
}

// errStopLog ends a walk of the ledger early.
var errStopLog = errors.New("stop")

// runLogEvidence prints the evidence kept with ledger entry o.evidence.
func runLogEvidence(ctx context.Context, o logOptions, g *globals) error {
	if o.evidence < 1 {
		return usagef("--evidence must be a serial, 1 or more")
	}
	s, err := g.openRead(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	var found *directory.Entry
	err = s.Log(ctx, o.evidence, func(e *directory.Entry) error {
		if e.Seq == o.evidence {
			c := *e
			found = &c
		}
		return errStopLog
	})
	if err != nil && !errors.Is(err, errStopLog) {
		return err
	}
	if found == nil {
		head, err := s.Head(ctx)
		if err != nil {
			return err
		}
		return withHint(fmt.Errorf("no ledger entry %d: the last is %d", o.evidence, head.Serial), "list the entries with: ccdir log")
	}
	if found.EvidenceErased() {
		return withHint(fmt.Errorf("ledger entry %d (%s by %s): its evidence was erased (contact erase)", found.Seq, found.Op, found.Actor),
			"ccdir verify names the erasure that covers it")
	}
	if len(found.Evidence) == 0 {
		return withHint(fmt.Errorf("ledger entry %d (%s by %s) keeps no evidence", found.Seq, found.Op, found.Actor),
			"evidence is kept with changes asked by signed mail, made with --confirmed and applied after waiting")
	}
	if o.output != "" {
		s.Close()
		return exportEvidence(ctx, o, g, found)
	}
	if !writesToTerminal(g.stdout) {
		_, err = g.stdout.Write(found.Evidence)
		return err
	}
	_, err = io.WriteString(g.stdout, evidenceText(found.Evidence))
	return err
}

// evidenceText is evidence as a terminal shows it: each line (CRLF or LF)
// through printable, so that what a member's mail holds cannot drive the
// terminal.
func evidenceText(ev []byte) string {
	var b strings.Builder
	for line := range strings.SplitAfterSeq(string(ev), "\n") {
		if line == "" {
			continue // after a final line break
		}
		body, nl := strings.CutSuffix(line, "\n")
		if nl {
			body = strings.TrimSuffix(body, "\r")
		}
		b.WriteString(printable(body) + "\n")
	}
	return b.String()
}

// writesToTerminal reports whether w is a terminal (or another character
// device).
func writesToTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// summarize names what an entry is about, from its payload.
func summarize(e *directory.Entry) string {
	var p struct {
		Name    string           `json:"name"`
		Address string           `json:"address"`
		KeyFpr  string           `json:"key_fingerprint"`
		TLD     string           `json:"tld"`
		Org     string           `json:"org"`
		Email   string           `json:"email"`
		Status  string           `json:"status"`
		Roles   []directory.Role `json:"roles"`
		Key     *directory.Key   `json:"key"`
	}
	if e.Redacted() {
		return "(erased)" // by a contact.erase entry; verify names it
	}
	if err := json.Unmarshal([]byte(e.Payload), &p); err != nil {
		return "(unreadable payload)"
	}
	var parts []string
	switch {
	case e.Op == "directory.key":
		return directoryKeySummary(e.Payload)
	case e.Op == "directory.rekey":
		return rekeySummary(e.Payload)
	case e.Op == directory.OpDirectoryRevoke:
		return revokeSummary(e.Payload)
	case e.Op == "genesis":
		parts = append(parts, fmt.Sprintf("%q <%s> key %s", p.Name, p.Address, p.KeyFpr))
	case p.TLD != "":
		parts = append(parts, displayTLD(p.TLD))
		if p.Org != "" {
			parts = append(parts, p.Org)
		}
	case p.Email != "":
		parts = append(parts, p.Email)
		for _, r := range p.Roles {
			parts = append(parts, displayTLD(r.TLD)+":"+r.Role)
		}
	}
	if strings.HasPrefix(e.Op, "key.") || strings.HasPrefix(e.Op, "contact.") {
		switch {
		case p.Key != nil:
			parts = append(parts, "key "+p.Key.Fingerprint)
		case e.Op == "key.set":
			parts = append(parts, "key removed")
		}
	}
	return strings.Join(parts, " ")
}

// exportEvidence is log --evidence N -o FILE: the member's signed
// statement behind entry e, written for gpg --verify and sq verify.
func exportEvidence(ctx context.Context, o logOptions, g *globals, e *directory.Entry) error {
	chk := g.evidenceCheck()
	s, err := g.openAudit(ctx, chk)
	if err != nil {
		return err
	}
	defer s.Close()
	pub, verify, err := g.pinnedKey(o.pin)
	if err != nil {
		return err
	}
	// The whole directory is checked as verify checks it, each
	// member's statement too; the one of entry e comes with the
	// contact its key was registered to just before the mail's first
	// entry (a KEY-ROTATE among them changes it for those after it).
	st, _, err := s.MemberStatement(ctx, pub.Fingerprint, verify, e.Seq)
	var te *directory.TamperError
	if errors.As(err, &te) && directory.IsVerifyError(te.Finding) {
		return te.Finding // as verify reports it (exit 3)
	}
	if errors.Is(err, directory.ErrNoStatement) {
		return withHint(fmt.Errorf("ledger entry %d (%s by %s) keeps no member's signed mail: its evidence is the text it was confirmed or applied with", e.Seq, e.Op, e.Actor),
			"print that text with: ccdir log --evidence %d", e.Seq)
	}
	if err != nil {
		return err
	}
	if _, err := pinnedChain(ctx, s, o.pin); err != nil {
		return err // --key names no key of the chain the replay followed
	}
	contact, registered := st.Contact, st.First-1
	x, err := chk.Export(st.Mail, contact.Key.Armored, st.At)
	switch {
	case errors.Is(err, inbound.ErrEvidenceSealed):
		return withHint(fmt.Errorf("ledger entry %d: %v", e.Seq, err),
			"only the directory's secret key opens it: run ccdir log --evidence %d -o on the home that holds it; the mail as kept: ccdir log --evidence %d > entry-%d.eml", e.Seq, e.Seq, e.Seq)
	case errors.Is(err, inbound.ErrEvidenceBad):
		return &directory.VerifyError{Seq: e.Seq, Reason: fmt.Sprintf("its evidence cannot be handed out: %v (registered to %s at entry %d)", err, contact.Email, registered)}
	case err != nil:
		return fmt.Errorf("ledger entry %d: %w", e.Seq, err)
	}

	info := g.stdout
	if o.output == "-" {
		info = g.stderr
		if _, err := g.stdout.Write(x.Message); err != nil {
			return err
		}
	} else if err := writeFileNew(o.output, x.Message, 0o600, o.force); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return withHint(fmt.Errorf("%s exists", o.output), "choose another file, or replace it with --force")
		}
		return err
	}
	if g.json {
		// With -o -, stdout is the statement: the JSON goes to stderr.
		rec := map[string]any{"file": o.output, "serial": e.Seq, "op": e.Op, "actor": e.Actor,
			"form": x.Form, "kind": x.Kind, "signer": x.Signer, "contact": contact.Email,
			"registered_at": registered, "signed": x.SignedAt.UTC().Format(time.RFC3339),
			"other_signers": append([]string{}, x.Others...), "other_signers_checked": false}
		if st.Pending != "" {
			rec["pending_change"] = st.Pending
		}
		if o.output == "-" {
			b, err := json.MarshalIndent(rec, "", "  ")
			if err != nil {
				return err
			}
			_, err = g.stderr.Write(append(jsonPrintable(b), '\n'))
			return err
		}
		return g.printJSON(rec)
	}
	file := o.output
	if file == "-" {
		file = "FILE"
	}
	p := func(format string, args ...any) { fmt.Fprintf(info, format, printableArgs(args)...) }
	p("wrote %s: the evidence of ledger entry %d (%s by %s) as a %s (from a %s mail)\n", o.output, e.Seq, e.Op, e.Actor, x.Kind, x.Form)
	if st.Pending != "" {
		p("the mail asked for change %s at %s, which waited and entry %d applied\n", st.Pending, st.At.UTC().Format("2006-01-02 15:04:05 UTC"), e.Seq)
	}
	p("signed %s by key %s, registered to %s at entry %d\n", x.SignedAt.UTC().Format("2006-01-02 15:04:05 UTC"), keys.GroupFingerprint(x.Signer), contact.Email, registered)
	for _, f := range x.Others {
		if f == "" {
			f = "a key it does not name"
		}
		p("also signed by key %s: NOT CHECKED by ccdir here (the new key of a KEY-ROTATE, which the signed statement carries)\n", f)
	}
	p("check it with: gpg --verify %s\n", file)
	p("           or: sq verify --signer-cert KEY.asc %s  (KEY.asc: the public key %s)\n", file, x.Signer)
	if len(x.Others) > 0 {
		p("gpg checks every signature: holding only key %s it prints \"Good signature\" for it and \"No public key\" for the other, and exits 2;\n", x.Signer)
		p("  that exit 2 is expected: for exit 0, import the other key first (the new key, attached to the statement itself)\n")
	}
	p("what this proves: the member's key signed this statement; it is a signature check, not a content check (ccdir log shows what entry %d changed)\n", e.Seq)
	return nil
}

// writeFileNew writes data to path through a temporary file in its
// folder, synced, then linked (or, with replace, renamed) into place: a
// reader sees no file or the whole of it, and without replace an
// existing path is left alone (an error wrapping fs.ErrExist).
func writeFileNew(path string, data []byte, perm os.FileMode, replace bool) error {
	if replace {
		return writeFileAtomic(path, data, perm)
	}
	if _, err := os.Lstat(path); err == nil {
		return fs.ErrExist
	}
	t, err := newAtomicFile(path, perm)
	if err != nil {
		return err
	}
	if _, err := t.Write(data); err != nil {
		t.Abort()
		return err
	}
	if err := t.finish(); err != nil {
		return err
	}
	defer os.Remove(t.Name())
	if err := os.Link(t.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}
