package inbound

import (
	"bytes"
	"fmt"
	"io"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ccdir/ccdir/keys"
)

// RetiredKey is one of the directory's earlier keys (ccdir rekey). Mail
// encrypted to it is still decrypted until Until, the end of the
// overlap (rollover.overlap after Replaced), with its secret key, unless
// the rekey revoked it (a compromise: whoever holds it must not be able
// to write to the directory); after that, such mail is refused, saying
// which key it was encrypted to and why it no longer is accepted.
type RetiredKey struct {
	Public    *keys.Public // the key, for its key IDs
	Secret    *keys.Secret // nil: no secret key at hand (the mail is refused)
	Replaced  time.Time    // when the rekey entry replaced it
	Until     time.Time    // the end of the overlap
	Revoked   bool
	Reason    string    // of the revocation
	RevokedAt time.Time // when: the rekey's time, or a later directory.revoke's (zero: Replaced)
}

// accepts reports whether mail encrypted to k is decrypted at now: not
// after the overlap, nor once it is revoked, nor past its own expiry
// (an expired key opens no mail, as it signs nothing).
func (k *RetiredKey) accepts(now time.Time) bool {
	return k.Secret != nil && !k.Revoked && now.Before(k.Until) && !k.expired(now)
}

// expired reports whether the key itself had expired at now.
func (k *RetiredKey) expired(now time.Time) bool {
	return !k.Public.Expires.IsZero() && !now.Before(k.Public.Expires)
}

// retiredRing is a private copy of the secret keys of the retired keys
// that decrypt at now (see dirKeyring).
func (p *Pipeline) retiredRing(now time.Time) (openpgp.EntityList, error) {
	var out openpgp.EntityList
	for i := range p.Retired {
		k := &p.Retired[i]
		if !k.accepts(now) {
			continue
		}
		p.mu.Lock()
		e := p.retired[k.Public.Fingerprint]
		p.mu.Unlock()
		if e == nil {
			var buf bytes.Buffer
			if err := k.Secret.Entity().SerializePrivateWithoutSigning(&buf, nil); err != nil {
				return nil, fmt.Errorf("inbound: copy the directory's earlier key %s: %w", k.Public.Fingerprint, err)
			}
			el, err := openpgp.ReadKeyRing(&buf)
			if err != nil || len(el) != 1 {
				return nil, fmt.Errorf("inbound: copy the directory's earlier key %s: %v", k.Public.Fingerprint, err)
			}
			e = el[0]
			p.mu.Lock()
			if p.retired == nil {
				p.retired = map[string]*openpgp.Entity{}
			}
			p.retired[k.Public.Fingerprint] = e
			p.mu.Unlock()
		}
		out = append(out, e)
	}
	return out, nil
}

// retiredRefusal says why a message that could not be decrypted is
// refused when it was encrypted to one of the directory's earlier keys
// that no longer decrypts: "" if it was not.
func (p *Pipeline) retiredRefusal(data []byte, now time.Time) string {
	ids := recipientKeyIDs(data)
	for i := range p.Retired {
		k := &p.Retired[i]
		if k.accepts(now) || !holdsKeyID(k.Public, ids) {
			continue
		}
		cur := ""
		if p.Secret != nil {
			cur = fmt.Sprintf(": encrypt to the directory's key %s (ccdir pubkey, or mail the -sendkey address)", p.Secret.Fingerprint())
		}
		day := func(t time.Time) string { return t.UTC().Format("2006-01-02") }
		switch {
		case k.Revoked:
			at := k.RevokedAt
			if at.IsZero() {
				at = k.Replaced
			}
			return fmt.Sprintf("the message is encrypted to the directory's earlier key %s, revoked on %s (%s), which no longer opens mail to the directory%s",
				k.Public.Fingerprint, day(at), k.Reason, cur)
		case k.expired(now) && k.Public.Expires.Before(k.Until):
			return fmt.Sprintf("the message is encrypted to the directory's earlier key %s, replaced on %s, which expired on %s and no longer opens mail to the directory%s",
				k.Public.Fingerprint, day(k.Replaced), day(k.Public.Expires), cur)
		case !now.Before(k.Until):
			return fmt.Sprintf("the message is encrypted to the directory's earlier key %s, replaced on %s; mail to it was accepted until %s%s",
				k.Public.Fingerprint, day(k.Replaced), day(k.Until), cur)
		default:
			return fmt.Sprintf("the message is encrypted to the directory's earlier key %s, replaced on %s, whose secret key is not at hand%s",
				k.Public.Fingerprint, day(k.Replaced), cur)
		}
	}
	return ""
}

// maxRecipients bounds the encrypted-key packets recipientKeyIDs reads.
const maxRecipients = 32

// recipientKeyIDs are the key IDs an OpenPGP message (armored or binary)
// is encrypted to: those of its leading public-key encrypted session key
// packets.
func recipientKeyIDs(data []byte) []uint64 {
	var r io.Reader = bytes.NewReader(data)
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0]&0x80 == 0 {
		blk, err := armor.Decode(bytes.NewReader(t))
		if err != nil {
			return nil
		}
		r = blk.Body
	}
	var ids []uint64
	pr := packet.NewReader(r)
	for len(ids) < maxRecipients {
		pkt, err := pr.Next()
		if err != nil {
			break
		}
		ek, ok := pkt.(*packet.EncryptedKey)
		if !ok {
			break
		}
		ids = append(ids, ek.KeyId)
	}
	return ids
}

// holdsKeyID reports whether one of ids is the key ID of p's primary key
// or of one of its subkeys.
func holdsKeyID(p *keys.Public, ids []uint64) bool {
	e := p.Entity()
	for _, id := range ids {
		if e.PrimaryKey.KeyId == id {
			return true
		}
		for _, sk := range e.Subkeys {
			if sk.PublicKey.KeyId == id {
				return true
			}
		}
	}
	return false
}
