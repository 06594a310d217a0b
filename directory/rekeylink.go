package directory

import (
	"fmt"
	"strings"
)

// OpRekey is the operation of a ledger entry that replaces the
// directory key (see RekeyPayload).
const OpRekey = opRekey

// RekeyKey is one side of a key chain link: a directory key's
// fingerprint and the check of its signatures.
type RekeyKey struct {
	Fingerprint string
	Verify      VerifyFunc
}

// CheckRekeyLink checks that e hands the directory over from key old to
// key next by the rule the ledger's own replay applies (chainWalk.step,
// rekeySigs): e is a directory.rekey entry, its payload (decoded
// strictly) names old as the key replaced and next as the new key, and
// it carries exactly two signatures over its signed text, the first by
// old, the second by next (split parts them). It returns the payload:
// where the caller has next's key from elsewhere (a digest's key chain),
// it checks that the payload's PublicKey is that key. It does not
// recompute e's hash.
func CheckRekeyLink(e *Entry, old, next RekeyKey, split SplitFunc) (*RekeyPayload, error) {
	if e.Op != opRekey {
		return nil, fmt.Errorf("entry %d is %s, not a %s entry", e.Seq, e.Op, opRekey)
	}
	p, err := decodeRekey(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %v", e.Seq, err)
	}
	switch {
	case !strings.EqualFold(p.OldFingerprint, old.Fingerprint):
		return nil, fmt.Errorf("entry %d replaces key %s, not %s", e.Seq, p.OldFingerprint, old.Fingerprint)
	case !strings.EqualFold(p.NewFingerprint, next.Fingerprint):
		return nil, fmt.Errorf("entry %d hands over to key %s, not %s", e.Seq, p.NewFingerprint, next.Fingerprint)
	}
	o := &keyCheck{fpr: strings.ToUpper(old.Fingerprint), verify: old.Verify}
	n := &keyCheck{fpr: strings.ToUpper(next.Fingerprint), verify: next.Verify}
	if err := rekeySigs(signedText(e.Seq, e.Hash), e.Sig, o, n, split); err != nil {
		return nil, fmt.Errorf("entry %d: %v", e.Seq, err)
	}
	return p, nil
}

// decodeRekey reads a directory.rekey payload strictly and checks it:
// the one reading of it (apply, chainWalk.step, CheckRekeyLink).
func decodeRekey(payload string) (*RekeyPayload, error) {
	var p RekeyPayload
	if err := decodeStrict(payload, &p); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return &p, nil
}
