package keys

import (
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// UsableUntil returns when the key stops working for the directory, as
// its self-signatures valid at at (zero: the latest valid ones) say;
// zero means never. It is the earliest of
//
//   - the primary key's expiry (Expires),
//   - the latest expiry among its encryption-capable keys (subkeys bound
//     and not revoked at at, and the primary key if it may encrypt), and
//   - the same for its signing-capable keys:
//
// the directory must both encrypt to the key and verify its signatures
// (Check). A key whose primary key is extended but whose encryption
// subkey is not (`gpg --quick-set-expire FPR 1y` without '*') stops
// working when the subkey expires, and a key whose primary key never
// expires stops working when its last encryption subkey does. An
// expired subkey counts with its past expiry, so a key already unusable
// for that reason gives the time it became so.
func (p *Public) UsableUntil(at time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.validAt(at)
	defer func() {
		if at.IsZero() {
			resetValidity(e)
		}
	}()
	cfg := checkConfig(at)
	// forever stands for "never expires" while comparing.
	forever := time.Unix(1<<40, 0)
	orForever := func(t time.Time) time.Time {
		if t.IsZero() {
			return forever
		}
		return t
	}
	until := orForever(expiry(e, at))
	var enc, sign time.Time // the latest expiry of each capability; zero: no key has it
	consider := func(sig *packet.Signature, algo packet.PublicKeyAlgorithm, t time.Time) {
		if usable(sig, algo.CanEncrypt(), sig.FlagEncryptCommunications || sig.FlagEncryptStorage, cfg) && t.After(enc) {
			enc = t
		}
		if usable(sig, algo.CanSign(), sig.FlagSign, cfg) && t.After(sign) {
			sign = t
		}
	}
	if psig, err := e.PrimarySelfSignature(at, cfg); err == nil {
		consider(psig, e.PrimaryKey.PubKeyAlgo, until)
	}
	for i := range e.Subkeys {
		sk := &e.Subkeys[i]
		sig, err := sk.LatestValidBindingSignature(at, cfg)
		if err != nil || sk.Revoked(sig, at) {
			continue
		}
		t := forever
		if sig.KeyLifetimeSecs != nil && *sig.KeyLifetimeSecs != 0 {
			t = sk.PublicKey.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second)
		}
		if sig.SigLifetimeSecs != nil && *sig.SigLifetimeSecs != 0 {
			if s := sig.CreationTime.Add(time.Duration(*sig.SigLifetimeSecs) * time.Second); s.Before(t) {
				t = s
			}
		}
		consider(sig, sk.PublicKey.PubKeyAlgo, t)
	}
	for _, t := range []time.Time{enc, sign} {
		if !t.IsZero() && t.Before(until) {
			until = t
		}
	}
	if until.Equal(forever) {
		return time.Time{}
	}
	return until
}

// usable says whether a key whose self-signature is sig may be used for
// what flag names (its algorithm can, capable), as go-crypto selects
// keys: by the key flags, or by cfg when the signature has none.
func usable(sig *packet.Signature, capable, flag bool, cfg *packet.Config) bool {
	if !capable {
		return false
	}
	if sig.FlagsValid {
		return flag
	}
	return cfg.AllowAllKeyFlagsWhenMissing()
}
