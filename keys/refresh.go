package keys

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// ErrOtherKey: a refresh ([Public.Refresh]) carries another primary key.
var ErrOtherKey = errors.New("not the same key")

// ErrNotNewer: a refresh ([Public.Refresh]) brings nothing newer than the
// key already has.
var ErrNotNewer = errors.New("nothing newer than the registered copy")

// Refresh merges upd, a newer copy of the same key (the same primary
// fingerprint, as `gpg --export` writes it after `gpg --quick-set-expire`
// or `--quick-add-key`), into p, as an OpenPGP implementation merges a
// certificate it already has (RFC 9580 §10.1): the result is p with the
// user IDs, subkeys and self-signatures of upd that p lacks. Only
// signatures made by p's primary key that verify are taken (the
// certification of a user ID, a direct-key signature, a key revocation, a
// subkey binding with its back-signature, a subkey revocation);
// third-party certifications are dropped, as Armored drops them. p and
// upd are not changed.
//
// It fails with ErrOtherKey if upd has another fingerprint, and with
// ErrNotNewer if upd adds nothing newer: no user ID or subkey p lacks,
// and no signature made after every one p has in the same place (an old
// copy of the key, or the same one, changes nothing). The merged key is
// not checked for use: the caller checks it as any key (Check).
func (p *Public) Refresh(upd *Public) (*Public, error) {
	if upd.Fingerprint != p.Fingerprint {
		return nil, fmt.Errorf("%w: %s is not %s", ErrOtherKey, upd.Fingerprint, p.Fingerprint)
	}
	// Fresh entities of both: no validity cache or lock is shared.
	a, b := reparse(p), reparse(upd)
	if a == nil || b == nil {
		return nil, fmt.Errorf("key %s cannot be serialized", p.Fingerprint)
	}
	ea, eb := a.entity, b.entity
	pk := ea.PrimaryKey

	seen := map[string]bool{}
	sigKey := func(s *packet.Signature) string {
		var buf bytes.Buffer
		if err := s.Serialize(&buf); err != nil {
			return ""
		}
		return buf.String()
	}
	mark := func(list []*packet.VerifiableSignature) {
		for _, s := range list {
			seen[sigKey(s.Packet)] = true
		}
	}
	mark(ea.Revocations)
	mark(ea.DirectSignatures)
	for _, id := range ea.Identities {
		mark(id.SelfCertifications)
		mark(id.Revocations)
	}
	for _, sk := range ea.Subkeys {
		mark(sk.Bindings)
		mark(sk.Revocations)
	}

	newer := false
	// merge returns have followed by the signatures of add that verify and
	// that have not been seen; a new one dated after all of have is newer.
	merge := func(have, add []*packet.VerifiableSignature, verify func(*packet.Signature) error) []*packet.Signature {
		var latest time.Time
		out := make([]*packet.Signature, 0, len(have)+len(add))
		for _, s := range have {
			out = append(out, s.Packet)
			if s.Packet.CreationTime.After(latest) {
				latest = s.Packet.CreationTime
			}
		}
		for _, s := range add {
			k := sigKey(s.Packet)
			if k == "" || seen[k] || verify(s.Packet) != nil {
				continue
			}
			seen[k] = true
			out = append(out, s.Packet)
			if len(have) == 0 || s.Packet.CreationTime.After(latest) {
				newer = true
			}
		}
		return out
	}

	var w bytes.Buffer
	var err error
	write := func(pkt interface{ Serialize(io.Writer) error }) {
		if err == nil {
			err = pkt.Serialize(&w)
		}
	}
	writeSigs := func(list []*packet.Signature) {
		for _, s := range list {
			write(s)
		}
	}
	write(pk)
	writeSigs(merge(ea.Revocations, eb.Revocations, pk.VerifyRevocationSignature))
	writeSigs(merge(ea.DirectSignatures, eb.DirectSignatures, pk.VerifyDirectKeySignature))

	uids := slices.Clone(a.UserIDs)
	for _, u := range b.UserIDs {
		if !slices.Contains(uids, u) {
			uids = append(uids, u)
		}
	}
	for _, u := range uids {
		ida, idb := ea.Identities[u], eb.Identities[u]
		var haveCerts, haveRevs, addCerts, addRevs []*packet.VerifiableSignature
		uidPkt := (*packet.UserId)(nil)
		if ida != nil {
			haveCerts, haveRevs, uidPkt = ida.SelfCertifications, ida.Revocations, ida.UserId
		}
		if idb != nil {
			addCerts, addRevs = idb.SelfCertifications, idb.Revocations
			if uidPkt == nil {
				uidPkt = idb.UserId
			}
		}
		verify := func(s *packet.Signature) error { return pk.VerifyUserIdSignature(u, pk, s) }
		wasNewer := newer
		certs := merge(haveCerts, addCerts, verify)
		if len(certs) == 0 {
			newer = wasNewer // a user ID nobody certified is not taken
			continue
		}
		revs := merge(haveRevs, addRevs, verify)
		write(uidPkt)
		writeSigs(revs)
		writeSigs(certs)
	}

	subkeys := slices.Clone(ea.Subkeys)
	for _, sb := range eb.Subkeys {
		if !slices.ContainsFunc(subkeys, func(s openpgp.Subkey) bool { return bytes.Equal(s.PublicKey.Fingerprint, sb.PublicKey.Fingerprint) }) {
			subkeys = append(subkeys, sb)
		}
	}
	for i, sa := range subkeys {
		var haveBind, haveRevs []*packet.VerifiableSignature
		if i < len(ea.Subkeys) {
			haveBind, haveRevs = sa.Bindings, sa.Revocations
		}
		var addBind, addRevs []*packet.VerifiableSignature
		for _, sb := range eb.Subkeys {
			if bytes.Equal(sb.PublicKey.Fingerprint, sa.PublicKey.Fingerprint) {
				addBind, addRevs = sb.Bindings, sb.Revocations
			}
		}
		sub := sa.PublicKey
		wasNewer := newer
		binds := merge(haveBind, addBind, func(s *packet.Signature) error { return pk.VerifyKeySignature(sub, s) })
		if len(binds) == 0 {
			newer = wasNewer // a subkey not bound to this key is not taken
			continue
		}
		revs := merge(haveRevs, addRevs, func(s *packet.Signature) error { return pk.VerifySubkeyRevocationSignature(s, sub) })
		write(sub)
		writeSigs(revs)
		writeSigs(binds)
	}
	if err != nil {
		return nil, fmt.Errorf("key %s: %v", p.Fingerprint, err)
	}
	if !newer {
		return nil, fmt.Errorf("%w: key %s", ErrNotNewer, p.Fingerprint)
	}
	out, err := parsePublic(w.Bytes(), MaxKeyBytes, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("key %s merged: %w", p.Fingerprint, err)
	}
	if len(out) != 1 {
		return nil, fmt.Errorf("key %s merged into %d keys", p.Fingerprint, len(out))
	}
	return out[0], nil
}

// reparse returns a Public of its own for p's key (minimal, as Armored
// writes it), or nil.
func reparse(p *Public) *Public {
	a, err := p.Armored()
	if err != nil {
		return nil
	}
	ps, err := parsePublic(a, MaxKeyBytes, time.Time{})
	if err != nil || len(ps) != 1 {
		return nil
	}
	return ps[0]
}
