package directory

import (
	"errors"
	"strings"
	"testing"
)

// A newer copy of the directory's key is a directory.key entry: Info
// carries it, verify replays it, the same copy again changes nothing,
// and a payload naming another key never applies (that is a rollover).
func TestSetDirectoryKey(t *testing.T) {
	f := newFixture(t)
	f.populate()
	before := f.serial()
	var info Info
	entries := f.update(func(tx *Tx) (err error) {
		info, err = tx.SetDirectoryKey("test, with the list's user ID")
		return err
	})
	if len(entries) != 1 || entries[0].Op != opDirectoryKey || entries[0].Seq != before+1 {
		t.Fatalf("entries = %+v", entries)
	}
	if info.PublicKey != "test, with the list's user ID" {
		t.Errorf("Info.PublicKey = %q", info.PublicKey)
	}
	got, err := f.s.Info(f.ctx)
	if err != nil || got.PublicKey != info.PublicKey || got.KeyFingerprint != f.signer.Fingerprint() {
		t.Errorf("stored Info = %+v, %v", got, err)
	}
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify after directory.key: %v", err)
	}
	_, err = f.s.Update(f.ctx, Operator, func(tx *Tx) error { _, err := tx.SetDirectoryKey(info.PublicKey); return err })
	if !errors.Is(err, ErrUnchanged) {
		t.Errorf("same copy again: %v", err)
	}
	_, err = f.s.Update(f.ctx, Operator, func(tx *Tx) error {
		return tx.append(opDirectoryKey, directoryKeyPayload{Fingerprint: "CCCC00000000000000000000000000000000000C", PublicKey: "another key"})
	})
	if err == nil || !strings.Contains(err.Error(), "a copy of the same key only") {
		t.Errorf("another fingerprint: %v", err)
	}
	// With Fingerprints, the copy must be the directory's key and keep
	// its subkeys.
	own := f.signer.Fingerprint()
	f.s.opts.Fingerprints = func(armored string) ([]string, error) {
		switch armored {
		case "other":
			return []string{"CCCC00000000000000000000000000000000000C"}, nil
		case "no subkey":
			return []string{own}, nil
		}
		return []string{own, "DDDD00000000000000000000000000000000000D"}, nil
	}
	for _, armored := range []string{"other", "no subkey"} {
		_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error { _, err := tx.SetDirectoryKey(armored); return err })
		if !errors.Is(err, ErrPolicy) {
			t.Errorf("SetDirectoryKey(%q): %v", armored, err)
		}
	}
	if f.serial() != before+1 {
		t.Errorf("refused copies were written: serial %d", f.serial())
	}
}
