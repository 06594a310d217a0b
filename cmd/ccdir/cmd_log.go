package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
)

type logOptions struct {
	since int64
}

func newLogCmd(g *globals) *cobra.Command {
	var o logOptions
	cmd := &cobra.Command{
		Use:   "log [--since N]",
		Short: "Show the audit trail: every ledger entry from serial N on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLog(cmd.Context(), o, g)
		},
	}
	cmd.Flags().Int64Var(&o.since, "since", 0, "first serial to show")
	return cmd
}

func runLog(ctx context.Context, o logOptions, g *globals) error {
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
