package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/receive"
	"github.com/ccdir/ccdir/pkg/relay"
)

// contactEraseOptions are contact erase's flags.
type contactEraseOptions struct {
	reason    string
	reasonSet bool
	scrub     bool
}

func newContactEraseCmd(g *globals) *cobra.Command {
	var o contactEraseOptions
	cmd := &cobra.Command{
		Use:   "erase EMAIL --reason REASON | erase --scrub",
		Short: "Erase a person from the directory and from its history (data-protection law)",
		Long: `Erase a person under data-protection law (GDPR article 17): the contact
with address EMAIL now; if none has it, the removed contact whose last
address it was; if none, the contact that had it before (a person's earlier
addresses are theirs). It never erases two people for one address: when
EMAIL names several at that step (a reused role address), it is refused,
naming them, and nothing is written. Everything that identifies the person
is erased.

One signed ledger entry (contact.erase) names the contacts by id, the entries
it redacts (each with its operation, the contact it was about, its version,
its hash and a digest of what it keeps) and REASON, and deletes the contact
and its roles. Only a contact's own entries can be erased; verify and
ccdir check refuse an erasure of any other, and an erased entry that is not
as the erasure recorded it. Every earlier
entry about them (added, updated, removed, its key set or refreshed) loses its
payload and evidence: an entry of version 2 or 3 keeps the salted digests its hash
covers, so the hash still recomputes; an older entry (version 1) becomes a
tombstone that keeps its hash and signature. Every other entry whose evidence
is the person's (a mail they signed, or one naming their address, name or
phone) loses its evidence, its digest kept. ccdir verify accepts exactly
these redactions and names them.

In the same transaction the person is erased from the operational tables,
each by its owner: the outbox (queued mail to them is dropped, not sent;
sent mail and bounces are forgotten), the digests' recipients, pings,
key-expiry reminders, pending changes, the inbound log and the list's
alerts. Then the database file is vacuumed and its WAL checkpointed, so
that neither holds an erased byte. If that step fails or is interrupted (a
crash after the commit), the erased rows are gone but their bytes may stay
in directory.db and directory.db-wal until the next scrub: run
ccdir contact erase --scrub (no EMAIL) to re-run it.

REASON is signed into the ledger, shown by verify to anyone who can read the
ledger and carried by every later digest: it is never erased. Say why (a
request's reference), never whom: a reason naming the person (their address,
name or phone number) is refused. The address itself
is not kept: a contact added later with the same address is a new person.
What left the home before (digests members received, backups, exports,
delivered mail) is not touched. Needs the directory key (its passphrase).

EXIT STATUS
  0 erased, 1 refused or failed (nothing changed), 2 usage`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.reasonSet = cmd.Flags().Changed("reason")
			return runContactErase(cmd.Context(), o, g, args)
		},
	}
	cmd.Flags().StringVar(&o.reason, "reason", "", "why the person is erased (a request's reference; signed into the ledger and never erased: never the person's name)")
	cmd.Flags().BoolVar(&o.scrub, "scrub", false, "only re-run the scrub (vacuum, WAL checkpoint) an interrupted erasure left undone; needs no key")
	return cmd
}

// eraser erases the person from one owner's operational tables.
type eraser struct {
	what  string
	erase func(context.Context, *directory.Tx, *directory.Erased) (int64, error)
}

// erasers are the owners of the operational tables that can hold a
// person: each erases them from its own tables. liveness first: it adds
// the addresses of pending changes, which the others erase too.
var erasers = []eraser{
	{"pings, reminders and pending changes", liveness.Erase},
	{"outbox", outbox.Erase},
	{"digest recipients", digest.Erase},
	{"inbound log", receive.Erase},
	{"alerts", relay.Erase},
}

func runContactErase(ctx context.Context, o contactEraseOptions, g *globals, args []string) error {
	if o.scrub {
		if len(args) > 0 || o.reasonSet {
			return usagef("contact erase --scrub takes no EMAIL and no --reason")
		}
		return runContactScrub(ctx, g)
	}
	if len(args) != 1 {
		return usagef("contact erase needs EMAIL (or --scrub)")
	}
	email := args[0]
	// Refuse bad input before the key is unlocked or the home opened
	// for writing.
	if !o.reasonSet {
		return usagef("contact erase needs --reason (why; never whom)")
	}
	reason := o.reason
	if _, err := directory.NormalizeEmail(email); err != nil {
		return err
	}
	if _, err := directory.NormalizeEraseReason(reason); err != nil {
		return withHint(err, "say why, e.g. --reason 'GDPR art. 17 request 2026-42'; never whom")
	}
	s, _, err := g.openWriteKey(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	var er *directory.Erased
	var deleted []string
	_, err = s.Update(ctx, g.operatorActor(), func(tx *directory.Tx) error {
		var err error
		if er, err = tx.Erase(email, reason); err != nil {
			return err
		}
		for _, e := range erasers {
			n, err := e.erase(ctx, tx, er)
			if err != nil {
				return err
			}
			if n > 0 {
				deleted = append(deleted, fmt.Sprintf("%s %d", e.what, n))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.Scrub(ctx); err != nil {
		return withHint(fmt.Errorf("erased in entry %d, but the file is not scrubbed yet: %w", er.Entry, err), "re-run the scrub with: ccdir contact erase --scrub")
	}
	g.printf("erased %s (contact %s) in entry %d: %d entries redacted, %d more lost their evidence\n",
		strings.Join(er.Emails, ", "), joinIDs(er.IDs), er.Entry, len(er.Redacted), len(er.Evidence))
	if len(deleted) > 0 {
		g.printf("deleted: %s\n", strings.Join(deleted, ", "))
	}
	return nil
}

// runContactScrub re-runs the scrub of an erasure that failed or was
// interrupted after its commit.
func runContactScrub(ctx context.Context, g *globals) error {
	s, err := g.openOps(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Scrub(ctx); err != nil {
		return err
	}
	g.printf("scrubbed: directory.db vacuumed, its WAL emptied\n")
	return nil
}

func joinIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ", ")
}
