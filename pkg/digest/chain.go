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

// keyChain is the chain of directory keys at snap, oldest first, each
// with the serial from which it signs and the ledger entry that links it
// to the key before (none for the genesis key): the chain the ledger
// names (directory.Store.KeyChain, which the checked replay behind snap
// followed), the key now as the signed ledger records it at snap
// (Info.PublicKey, with the user IDs of key update-uids and the
// certification by the key before), an earlier key as its entry gave it,
// or with its revocation once a rekey or a later directory.revoke
// entry revoked it (ccdir check does not
// follow the chain past it). Every walk of the chain that a digest
// states is here.
func (j *Job) keyChain(ctx context.Context, snap *directory.Snapshot) ([]export.ExportKeyOf, error) {
	chain, err := j.Store.KeyChain(ctx)
	if err != nil {
		return nil, fmt.Errorf("digest: directory key chain: %w", err)
	}
	var out []export.ExportKeyOf
	for _, k := range chain {
		if k.Since > snap.Head.Serial {
			break // a rekey after the digest's head
		}
		x := export.ExportKeyOf{Fingerprint: k.Fingerprint, FromSerial: k.Since, Key: k.PublicKey}
		if k.Revoked && k.RevokedSince <= snap.Head.Serial {
			x.Key = k.Revocation
		}
		if k.Since > 1 {
			var link *export.ExportEntry
			err := j.Store.Log(ctx, k.Since, func(e *directory.Entry) error {
				x := export.NewExportEntry(e)
				link = &x
				return errStopLog
			})
			if err != nil && !errors.Is(err, errStopLog) {
				return nil, fmt.Errorf("digest: ledger entry %d: %w", k.Since, err)
			}
			x.Link = link
		}
		out = append(out, x)
	}
	if n := len(out); n > 0 && strings.EqualFold(out[n-1].Fingerprint, snap.Info.KeyFingerprint) && strings.TrimSpace(snap.Info.PublicKey) != "" {
		out[n-1].Key = snap.Info.PublicKey
	}
	if n := len(out); n == 0 || !strings.EqualFold(out[n-1].Fingerprint, j.Secret.Fingerprint()) {
		return nil, fmt.Errorf("digest: the directory key chain at serial %d does not end at the signing key %s", snap.Head.Serial, j.Secret.Fingerprint())
	}
	return out, nil
}

var errStopLog = errors.New("stop")

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
