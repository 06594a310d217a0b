package directory

import (
	"errors"
	"fmt"
	"strings"
)

// KeptSubkeys makes sure that armored, a copy of key fpr, keeps every
// subkey of old, another copy of it (fprs lists a key's fingerprints,
// its primary key's first: keys.Fingerprints): the one check of a key
// copy that may add user IDs, signatures and revocations but no subkey
// of its own (a contact key refresh, a directory.key entry, ccdir
// check's key chain against the keys its rekey entries hand over to).
func KeptSubkeys(fprs func(armored string) ([]string, error), fpr, old, armored string) error {
	return keptSubkeys(fprs, fpr, old, armored)
}

// opDirectoryRevoke revokes one of the directory's earlier keys after
// the rekey that replaced it (ccdir key revoke-retired): a leak found
// later. The directory's key now is revoked only by a rekey
// (RekeyPayload.Revoked).
const opDirectoryRevoke = "directory.revoke"

// OpDirectoryRevoke is the operation of a RevokePayload entry.
const OpDirectoryRevoke = opDirectoryRevoke

// RevokePayload is what a directory.revoke entry says: the directory's
// earlier key Fingerprint, retired by a rekey without a revocation, is
// revoked for Reason; Revocation is that key, armored, with its
// revocation signature, which replies, digests and ccdir pubkey publish
// from then on instead of the key. The entry is signed by the
// directory's key now, as any entry.
type RevokePayload struct {
	Fingerprint string `json:"fingerprint"`
	Reason      string `json:"revocation_reason"`
	Revocation  string `json:"revocation"`
}

func (p *RevokePayload) check() error {
	switch {
	case p.Fingerprint == "" || strings.TrimSpace(p.Revocation) == "":
		return errors.New("directory.revoke needs the key's fingerprint and its revocation")
	case strings.TrimSpace(p.Reason) == "" || strings.ContainsAny(p.Reason, "\x00\r\n"):
		return errors.New("directory.revoke needs a reason of one line")
	}
	return nil
}

// decodeRevoke reads a directory.revoke payload strictly and checks it.
func decodeRevoke(payload string) (*RevokePayload, error) {
	var p RevokePayload
	if err := decodeStrict(payload, &p); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return &p, nil
}

// RevokeRetired revokes one of the directory's earlier keys: one
// directory.revoke entry. The key must be in the chain (KeyChain), not
// the directory's key now (ccdir rekey --revoke-old revokes that one),
// and not revoked already (ErrUnchanged); the revocation must be that
// key, a copy of the one the chain names that adds no subkey
// (Options.KeyVerifier, Options.Fingerprints). Whether it really carries
// a revocation signature the caller checks, with the keys package.
func (t *Tx) RevokeRetired(p RevokePayload) (ChainKey, error) {
	if err := p.check(); err != nil {
		return ChainKey{}, refuse(ErrPolicy, "", "%v", err)
	}
	chain, err := readChain(t.ctx, t.tx)
	if err != nil {
		return ChainKey{}, err
	}
	k, err := retiredKey(chain, p.Fingerprint)
	if err != nil {
		return ChainKey{}, err
	}
	if k.Revoked {
		return *k, ErrUnchanged
	}
	if err := (&keyNames{fprs: t.s.opts.Fingerprints}).revocation(k, p.Revocation); err != nil {
		return ChainKey{}, refuse(ErrPolicy, "", "%v", err)
	}
	if err := t.append(opDirectoryRevoke, p); err != nil {
		return ChainKey{}, err
	}
	e := t.entries[len(t.entries)-1]
	k.revoke(&e, &p)
	return *k, nil
}

// retiredKey is the earlier key fpr of chain, for a directory.revoke.
func retiredKey(chain []ChainKey, fpr string) (*ChainKey, error) {
	for i := range chain {
		k := &chain[i]
		if !strings.EqualFold(k.Fingerprint, fpr) {
			continue
		}
		if i == len(chain)-1 {
			return nil, refuse(ErrPolicy, "a rekey replaces and revokes it: ccdir rekey --revoke-old REASON",
				"key %s is the directory's key now, not an earlier one", strings.ToUpper(fpr))
		}
		return k, nil
	}
	fprs := make([]string, 0, len(chain))
	for _, k := range chain[:max(len(chain)-1, 0)] {
		fprs = append(fprs, k.Fingerprint)
	}
	earlier := "none"
	if len(fprs) > 0 {
		earlier = strings.Join(fprs, ", ")
	}
	return nil, refuse(ErrNotFound, "ccdir pubkey lists the directory's keys, the current one first",
		"key %s is not one of the directory's earlier keys (those: %s)", strings.ToUpper(fpr), earlier)
}

// revocation checks armored, the revocation of the earlier key k, as far
// as the directory can without the keys package (Options.Fingerprints;
// nil checks nothing): it is one public key, k's, adding no subkey to
// the copy the chain names. A revoked key has no verifier, so
// KeyVerifier is not asked.
func (n *keyNames) revocation(k *ChainKey, armored string) error {
	if n.fprs == nil {
		return nil
	}
	got, err := n.fprs(armored)
	if err != nil {
		return fmt.Errorf("the revocation of key %s cannot be read: %v", k.Fingerprint, err)
	}
	if len(got) == 0 || !strings.EqualFold(got[0], k.Fingerprint) {
		return fmt.Errorf("the revocation of key %s is another key (%v)", k.Fingerprint, got)
	}
	if err := keptSubkeys(n.fprs, k.Fingerprint, armored, k.PublicKey); err != nil {
		return fmt.Errorf("the revocation of key %s adds to the key: %v", k.Fingerprint, err)
	}
	return nil
}

// revoke records e, a directory.revoke entry with payload p, on k.
func (k *ChainKey) revoke(e *Entry, p *RevokePayload) {
	k.Revoked, k.Reason, k.Revocation = true, strings.TrimSpace(p.Reason), p.Revocation
	k.RevokedSince, k.RevokedTime = e.Seq, e.Time
}

// stepRevoke takes a directory.revoke entry into the chain walk: the key
// it names must be an earlier key of the chain, not revoked yet; with
// check set, its revocation is checked as RevokeRetired checks it.
func (w *chainWalk) stepRevoke(e *Entry) error {
	p, err := decodeRevoke(e.Payload)
	if err != nil {
		return fmt.Errorf("directory.revoke: %v", err)
	}
	if len(w.keys) == 0 {
		return errors.New("a directory.revoke before the genesis")
	}
	k, err := retiredKey(w.keys, p.Fingerprint)
	if err != nil {
		var de *Error
		if errors.As(err, &de) {
			err = errors.New(de.Msg)
		}
		return fmt.Errorf("directory.revoke: %v", err)
	}
	if k.Revoked {
		return fmt.Errorf("directory.revoke of key %s, revoked already (entry %d)", k.Fingerprint, k.RevokedSince)
	}
	if w.check != nil {
		if err := w.check.revocation(k, p.Revocation); err != nil {
			return fmt.Errorf("directory.revoke: %v", err)
		}
	}
	k.revoke(e, p)
	return nil
}
