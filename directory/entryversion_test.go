package directory

import (
	"strings"
	"testing"
)

// v1Home makes a fixture as the ccdir releases before entry version 2
// made it (signed schema 1, entries of version 1), populated, with one
// contact changed.
func v1Home(t *testing.T) *fixture {
	t.Helper()
	released := signedMigrations
	signedMigrations = released[:1]
	testOnlyEntryVersion = entryV1
	defer func() { signedMigrations, testOnlyEntryVersion = released, 0 }()
	f := newFixture(t)
	f.populate()
	f.update(func(tx *Tx) error {
		_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Name = "Ana M. Sousa"; return nil })
		return err
	})
	return f
}

// entries reads the whole ledger.
func (f *fixture) entries() []Entry {
	f.t.Helper()
	var out []Entry
	if err := f.s.Log(f.ctx, 1, func(e *Entry) error { out = append(out, *e); return nil }); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// TestEntryVersion2Migrated: a home made before entry version 2 (signed
// schema 1) verifies read-only as it is; opened for writing it gains the
// ledger's new columns (signed schema 2), keeps its version 1 entries
// and their hashes, and writes version 2 entries with a salt of their
// own; verify checks both, and a changed payload or salt of a version 2
// entry is found.
func TestEntryVersion2Migrated(t *testing.T) {
	f := v1Home(t)
	before := f.entries()
	for _, e := range before {
		if e.Version != entryV1 || e.Salt != "" {
			t.Fatalf("entry %d of the old home: version %d salt %q", e.Seq, e.Version, e.Salt)
		}
	}
	opts := f.opts()
	opts.ReadOnly = true
	if _, err := f.reopen(opts); err != nil {
		t.Fatal(err)
	}
	head, err := f.verify()
	if err != nil {
		t.Fatalf("read-only verify of a signed schema 1 home: %v", err)
	}
	if got := f.entries(); len(got) != len(before) || got[len(got)-1].Hash != head.Hash {
		t.Fatalf("log of the old home: %d entries", len(got))
	}

	opts.ReadOnly = false
	if _, err := f.reopen(opts); err != nil {
		t.Fatal(err)
	}
	var ver int
	if err := f.s.r.QueryRow(`PRAGMA user_version`).Scan(&ver); err != nil || ver != SchemaVersion() || ver < 2 {
		t.Fatalf("user_version %d (want %d), %v", ver, SchemaVersion(), err)
	}
	if h, err := f.verify(); err != nil || h != head {
		t.Fatalf("verify after the migration: %v, %v (want %v)", h, err, head)
	}
	f.update(func(tx *Tx) error {
		_, err := tx.UpdateContact("ivan@cctld.ru", func(c *Contact) error { c.TimeZone = "Europe/Moscow"; return nil })
		return err
	})
	f.update(func(tx *Tx) error {
		_, err := tx.UpdateContact("ivan@cctld.ru", func(c *Contact) error { c.TimeZone = "Asia/Vladivostok"; return nil })
		return err
	})
	all := f.entries()
	for i, e := range all {
		if i < len(before) {
			if e.Version != entryV1 || e.Hash != before[i].Hash || e.Payload != before[i].Payload {
				t.Fatalf("entry %d changed by the migration: %+v", e.Seq, e)
			}
			continue
		}
		if e.Version != EntryVersion || len(e.Salt) != 2*saltBytes || e.PayloadDigest != "" || e.EvidenceDigest != "" {
			t.Fatalf("new entry %d: version %d salt %q digests %q %q", e.Seq, e.Version, e.Salt, e.PayloadDigest, e.EvidenceDigest)
		}
		if computeHash(&e) != e.Hash {
			t.Fatalf("new entry %d: hash does not recompute", e.Seq)
		}
	}
	if a, b := all[len(all)-1], all[len(all)-2]; a.Salt == b.Salt {
		t.Fatalf("entries %d and %d share the salt %s", a.Seq, b.Seq, a.Salt)
	}
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify of version 1 and 2 entries: %v", err)
	}

	last := all[len(all)-1]
	for _, c := range []struct{ name, stmt string }{
		{"payload", `UPDATE ledger SET payload = replace(payload, 'Vladivostok', 'Vladikavkaz') WHERE seq = ?`},
		{"salt", `UPDATE ledger SET salt = '00000000000000000000000000000000' WHERE seq = ?`},
	} {
		t.Run(c.name, func(t *testing.T) {
			saved := last
			tamper(t, f.path, c.stmt, last.Seq)
			t.Cleanup(func() {
				tamper(t, f.path, `UPDATE ledger SET payload = ?, salt = ? WHERE seq = ?`, saved.Payload, saved.Salt, saved.Seq)
			})
			_, err := f.verify()
			if !IsVerifyError(err) || !strings.Contains(err.Error(), "content does not match its hash") {
				t.Fatalf("verify with a changed %s: %v", c.name, err)
			}
		})
	}
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify once healed: %v", err)
	}
}
