package digest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/export"
)

// chain is what the digest of snap, made after the digest of prev (nil
// for the first), carries in its directory.json so that a member can
// check that it extends what they saw (Check): prev's serial and head,
// the ledger entries after prev's head up to snap's (the first digest:
// the last export.FirstDigestEntries), and the directory key chain.
func (j *Job) chain(ctx context.Context, snap, prev *directory.Snapshot) (*export.ExportChain, error) {
	c := &export.ExportChain{Entries: []export.ExportEntry{}}
	from := max(snap.Head.Serial-export.FirstDigestEntries+1, 1)
	if prev != nil {
		c.PrevSerial, c.PrevHead = prev.Head.Serial, prev.Head.Hash
		from = prev.Head.Serial + 1
	}
	stop := errors.New("stop")
	err := j.Store.Log(ctx, from, func(e *directory.Entry) error {
		if e.Seq > snap.Head.Serial {
			return stop
		}
		c.Entries = append(c.Entries, export.NewExportEntry(e))
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return nil, fmt.Errorf("digest: ledger entries: %w", err)
	}
	// The entries read now must be those the checked snapshots were
	// read at: the ledger only grows.
	base := directory.Head{Serial: from - 1}
	if prev != nil {
		base = prev.Head
	}
	end := base
	if n := len(c.Entries); n > 0 {
		end = directory.Head{Serial: c.Entries[n-1].Seq, Hash: c.Entries[n-1].Hash}
		if prev != nil && c.Entries[0].PrevHash != prev.Head.Hash {
			return nil, fmt.Errorf("digest: ledger entry %d does not follow the last digest's head %s", c.Entries[0].Seq, prev.Head)
		}
	}
	if end != snap.Head || int64(len(c.Entries)) != snap.Head.Serial-base.Serial {
		return nil, fmt.Errorf("digest: the ledger entries from %d read do not end at the digest's head %s", from, snap.Head)
	}
	if c.Keys, err = j.keyChain(ctx, snap); err != nil {
		return nil, err
	}
	return c, nil
}

// keyChain is the chain of directory keys, oldest first, each with the
// serial from which it signs and the ledger entry that links it to the
// key before (none for the genesis key). Every walk of the chain that
// a digest states is here; today the chain is the one key of the
// genesis entry, as the signed ledger records it at snap (Info.PublicKey,
// with the user IDs of key update-uids), or the signing key's own.
func (j *Job) keyChain(ctx context.Context, snap *directory.Snapshot) ([]export.ExportKeyOf, error) {
	armored := snap.Info.PublicKey
	if strings.TrimSpace(armored) == "" {
		b, err := j.Secret.Public().Armored()
		if err != nil {
			return nil, fmt.Errorf("digest: directory key: %w", err)
		}
		armored = string(b)
	}
	return []export.ExportKeyOf{{Fingerprint: j.Secret.Fingerprint(), FromSerial: 1, Key: armored}}, nil
}

// digestJSON renders the digest's directory.json, with its chain, and
// its detached signature by the directory key (directory.json.asc, which
// `gpg --verify directory.json.asc directory.json` checks).
func (j *Job) digestJSON(ctx context.Context, snap, prev *directory.Snapshot) (body, sig []byte, err error) {
	c, err := j.chain(ctx, snap, prev)
	if err != nil {
		return nil, nil, err
	}
	var b, s bytes.Buffer
	if err := export.WriteDigestJSON(&b, snap, c); err != nil {
		return nil, nil, err
	}
	if err := j.Secret.ArmoredDetachSign(&s, bytes.NewReader(b.Bytes())); err != nil {
		return nil, nil, err
	}
	return b.Bytes(), s.Bytes(), nil
}
