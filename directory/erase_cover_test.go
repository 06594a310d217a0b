package directory

import (
	"strings"
	"testing"
)

// signErase appends, signed, a contact.erase of ids that redacts the
// entries of recs (each as Tx.Erase records it, then changed by edit),
// as a holder of the directory key could.
func (f *fixture) signErase(ids []int64, seqs []int64, edit func(i int, r *ErasedEntry)) {
	f.t.Helper()
	f.update(func(tx *Tx) error {
		var recs []ErasedEntry
		for i, seq := range seqs {
			e, err := tx.entry(seq)
			if err != nil {
				return err
			}
			h := Hashed(e)
			id, _ := entryContact(seq, e.Op, e.Payload)
			r := ErasedEntry{Seq: seq, Op: e.Op, Contact: id, Version: versionOf(e.Version), Hash: e.Hash, Fields: ErasedFields(&h)}
			if edit != nil {
				edit(i, &r)
			}
			recs = append(recs, r)
		}
		if err := tx.forge(opContactErase, Erasure{IDs: ids, Redacts: seqs, Entries: recs, Evidence: []int64{}, Reason: "r3"}); err != nil {
			return err
		}
		for _, s := range seqs {
			if err := tx.redact(s, true); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestEraseCoversOnlyThePerson (review r3 finding 3, the probe
// TestR3EraseCoversOther): a signed contact.erase of Ana that redacts
// entry 10 (a member's change to ivan) is refused by verify, whether it
// records nothing of the entry (as the probe wrote it), records it as
// about ivan, or erases ivan without the entry that added him; one that
// redacts a member's entry as a contact.add is refused too. Where the
// payload is still at hand (an earlier copy), Covers refuses an erasure
// that says it was about someone else.
func TestEraseCoversOnlyThePerson(t *testing.T) {
	const ana, ivan = 4, 5
	for _, c := range []struct {
		name string
		ids  []int64
		seqs []int64
		edit func(int, *ErasedEntry)
		want string
	}{
		{"about ivan", []int64{ana}, []int64{4, 10}, nil, "about contact 5, which it does not erase"},
		{"ivan without his add", []int64{ana, ivan}, []int64{4, 10}, nil, "erases contact 5, but not the contact.add that added it"},
		{"a member's entry", []int64{ana, 2}, []int64{2, 4}, func(i int, r *ErasedEntry) {
			if i == 0 {
				r.Op, r.Contact = opContactAdd, 2
			}
		}, "the contact.erase erased a contact.add as entry 2, not a member.add"},
		{"a member's entry as it is", []int64{ana}, []int64{2, 4}, nil, "a member.add: only a contact's own entries"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := erasedHome(t)
			f.signErase(c.ids, c.seqs, c.edit)
			_, err := f.verify()
			if !IsVerifyError(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("verify: %v, want %q", err, c.want)
			}
		})
	}
	t.Run("probe", func(t *testing.T) { // as r3_probe_test.go wrote it
		f := erasedHome(t)
		f.update(func(tx *Tx) error {
			if err := tx.forge(opContactErase, Erasure{IDs: []int64{ana}, Redacts: []int64{10}, Evidence: []int64{}, Reason: "r3"}); err != nil {
				return err
			}
			return tx.redact(10, true)
		})
		if _, err := f.verify(); !IsVerifyError(err) || !strings.Contains(err.Error(), "ledger entry 10: its payload was erased, but entry 13, the contact.erase naming it, is refused (contact.erase does not record every entry it redacts)") {
			t.Fatalf("verify: %v", err)
		}
	})
	t.Run("earlier copy", func(t *testing.T) {
		// Entry 5 (version 1) adds ivan; entry 10 (version 3) changes him.
		f := erasedHome(t)
		for _, c := range []struct {
			seq  int64
			want string
		}{
			{5, "entry 5 is not about contact 4"},
			{10, `entry 10 is about "contact:5" (its hash says so), not contact 4`},
		} {
			e := f.entries()[c.seq-1] // with its payload
			h := Hashed(&e)
			p := &Erasure{IDs: []int64{ana}, Redacts: []int64{c.seq}, Entries: []ErasedEntry{{Seq: c.seq, Op: e.Op, Contact: ana, Version: versionOf(e.Version), Hash: e.Hash, Fields: ErasedFields(&h)}}}
			if err := p.Covers(&h, e.Hash); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Covers of ivan's entry %d said to be Ana's: %v, want %q", c.seq, err, c.want)
			}
		}
	})
}

// TestEraseTombstoneForged (review r3 finding 2): after a real erasure,
// a database writer without the key relabels an erased version 2 entry
// a version 1 tombstone and rewrites its time, operation or actor;
// verify finds it. A version 1 entry after a version 2 one is refused.
func TestEraseTombstoneForged(t *testing.T) {
	f := erasedHome(t)
	f.update(func(tx *Tx) error { _, err := tx.Erase("ana@dns.pt", "GDPR art. 17 request 2026-42"); return err })
	if _, err := f.verify(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, stmt, want string }{
		{"relabelled", `UPDATE ledger SET version = 1, payload_digest = NULL WHERE seq = 8`, "the contact.erase erased entry 8 of version 3, not 1"},
		{"retimed", `UPDATE ledger SET version = 1, payload_digest = NULL, op = 'contact.remove', time = '2020-01-01T00:00:00Z' WHERE seq = 9`, "entry 9 is of version 1, after entry 8 of version 3: versions never go down"},
		{"v1 retimed", `UPDATE ledger SET time = '2020-01-01T00:00:00Z' WHERE seq = 7`, "entry 7's time, actor, operation, previous hash or evidence digest is not what the contact.erase erased"},
		{"v1 actor", `UPDATE ledger SET actor = 'operator:someone' WHERE seq = 4`, "entry 4's time, actor"},
		{"v1 op", `UPDATE ledger SET op = 'contact.remove' WHERE seq = 4`, "erased a contact.add as entry 4, not a contact.remove"},
		{"version down", `UPDATE ledger SET version = 1 WHERE seq = 11`, "entry 11 is of version 1, after entry 8 of version 3: versions never go down"},
		{"version 2 after 3", `UPDATE ledger SET version = 2 WHERE seq = 11`, "entry 11 is of version 2, after entry 8 of version 3: versions never go down"},
		{"unknown version", `UPDATE ledger SET version = 4 WHERE seq = 12`, "entry 12 is of version 4, which this ccdir does not know"},
	} {
		t.Run(c.name, func(t *testing.T) {
			saved := f.entries()
			tamper(t, f.path, c.stmt)
			t.Cleanup(func() {
				for _, e := range saved {
					tamper(t, f.path, `UPDATE ledger SET version = ?, payload_digest = ?, op = ?, time = ?, actor = ? WHERE seq = ?`,
						e.Version, nullable(e.PayloadDigest), e.Op, e.Time, e.Actor, e.Seq)
				}
			})
			_, err := f.verify()
			if !IsVerifyError(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("verify: %v, want %q", err, c.want)
			}
		})
	}
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify once healed: %v", err)
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
