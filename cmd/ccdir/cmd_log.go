package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
)

type logOptions struct {
	since       int64
	evidence    int64
	evidenceSet bool // --evidence given
	sinceSet    bool // --since given
}

func newLogCmd(g *globals) *cobra.Command {
	var o logOptions
	cmd := &cobra.Command{
		Use:   "log [--since N] [--evidence N]",
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

EXIT STATUS
  0 shown, 1 error (an unknown serial, an entry that keeps no evidence),
  2 usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.evidenceSet = cmd.Flags().Changed("evidence")
			o.sinceSet = cmd.Flags().Changed("since")
			return runLog(cmd.Context(), o, g)
		},
	}
	cmd.Flags().Int64Var(&o.since, "since", 0, "first serial to show")
	cmd.Flags().Int64Var(&o.evidence, "evidence", 0, "print the evidence kept with the entry of this serial")
	return cmd
}

func runLog(ctx context.Context, o logOptions, g *globals) error {
	if o.evidenceSet {
		if o.sinceSet {
			return usagef("--evidence and --since do not go together")
		}
		if g.json {
			return usagef("--evidence prints the evidence as it is kept, not as JSON")
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
	if len(found.Evidence) == 0 {
		return withHint(fmt.Errorf("ledger entry %d (%s by %s) keeps no evidence", found.Seq, found.Op, found.Actor),
			"evidence is kept with changes asked by signed mail, made with --confirmed and applied after waiting")
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
	if err := json.Unmarshal([]byte(e.Payload), &p); err != nil {
		return "(unreadable payload)"
	}
	var parts []string
	switch {
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
