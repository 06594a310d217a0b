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
// third-party certifications are dropped, as Armored drops them. A
// signature is known by its signed data and value, whatever its unhashed
// area carries (which Armored drops). Every revocation is kept; of the
// other self-signatures, only the latest one per user ID, per subkey and
// of the key itself, so that the key does not grow with each refresh. p
// and upd are not changed.
//
// It fails with ErrOtherKey if upd has another fingerprint, with
// ErrNotNewer if upd adds nothing newer: no user ID or subkey p lacks,
// no revocation p lacks, and no signature made after every one p has in
// the same place (an old copy of the key, or the same one, changes
// nothing), and with ErrTooLarge if the merged key, armored, is over
// MaxKeyBytes. The merged key is not checked for use: the caller checks
// it as any key (Check).
func (p *Public) Refresh(upd *Public) (*Public, error) {
	if upd.Fingerprint != p.Fingerprint {
		return nil, fmt.Errorf("%w: %s is not %s", ErrOtherKey, upd.Fingerprint, p.Fingerprint)
	}
	// Fresh entities of both: no validity cache or lock is shared.
	a, err := reparse(p)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", p.Fingerprint, err)
	}
	b, err := reparse(upd)
	if err != nil {
		return nil, fmt.Errorf("key %s, the newer copy: %w", p.Fingerprint, err)
	}
	ea, eb := a.entity, b.entity
	pk := ea.PrimaryKey

	// A signature is known by its signed data and value (sigID): a copy
	// that differs only in its unhashed area is the same signature.
	seen := map[string]bool{}
	mark := func(list []*packet.VerifiableSignature) {
		for _, s := range list {
			seen[sigID(s.Packet)] = true
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
	// merge returns the signatures of have and add that verify, each
	// once. Revocations (all) are all kept, and any new one is newer. Of
	// the other self-signatures only the latest is kept (a later one
	// supersedes the earlier ones, RFC 9580 §5.2.3.10), so that
	// refreshing a key again and again does not grow it; it is newer if
	// it comes from add and is dated after every one of have.
	merge := func(have, add []*packet.VerifiableSignature, verify func(*packet.Signature) error, all bool) []*packet.Signature {
		var out []*packet.Signature
		var latest *packet.Signature
		var latestHave time.Time
		for _, s := range have {
			if verify(s.Packet) != nil {
				continue
			}
			if s.Packet.CreationTime.After(latestHave) {
				latestHave = s.Packet.CreationTime
			}
			if all {
				out = append(out, s.Packet)
			} else if latest == nil || s.Packet.CreationTime.After(latest.CreationTime) {
				latest = s.Packet
			}
		}
		fromAdd := false
		for _, s := range add {
			k := sigID(s.Packet)
			if k == "" || seen[k] || verify(s.Packet) != nil {
				continue
			}
			seen[k] = true
			switch {
			case all:
				out = append(out, s.Packet)
				newer = true
			case latest == nil || s.Packet.CreationTime.After(latest.CreationTime):
				latest, fromAdd = s.Packet, true
			}
		}
		if latest != nil {
			out = append(out, latest)
			if fromAdd && (len(have) == 0 || latest.CreationTime.After(latestHave)) {
				newer = true
			}
		}
		return out
	}

	var w bytes.Buffer
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
	writeSigs(merge(ea.Revocations, eb.Revocations, pk.VerifyRevocationSignature, true))
	writeSigs(merge(ea.DirectSignatures, eb.DirectSignatures, pk.VerifyDirectKeySignature, false))

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
		certs := merge(haveCerts, addCerts, verify, false)
		if len(certs) == 0 {
			newer = wasNewer // a user ID nobody certified is not taken
			continue
		}
		revs := merge(haveRevs, addRevs, verify, true)
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
		binds := merge(haveBind, addBind, func(s *packet.Signature) error { return pk.VerifyKeySignature(sub, s) }, false)
		if len(binds) == 0 {
			newer = wasNewer // a subkey not bound to this key is not taken
			continue
		}
		revs := merge(haveRevs, addRevs, func(s *packet.Signature) error { return pk.VerifySubkeyRevocationSignature(s, sub) }, true)
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
	// The merged key is stored armored: it must read again as any key.
	arm, err := armorKey(w.Bytes())
	if err != nil {
		return nil, fmt.Errorf("key %s merged: %w", p.Fingerprint, err)
	}
	out, err := parsePublic(arm, MaxKeyBytes, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("key %s merged: %w", p.Fingerprint, err)
	}
	if len(out) != 1 {
		return nil, fmt.Errorf("key %s merged into %d keys", p.Fingerprint, len(out))
	}
	return out[0], nil
}

// reparse returns a Public of its own for p's key (minimal, as Armored
// writes it).
func reparse(p *Public) (*Public, error) {
	a, err := p.Armored()
	if err != nil {
		return nil, err
	}
	ps, err := parsePublic(a, MaxKeyBytes, time.Time{})
	if err != nil {
		return nil, err
	}
	if len(ps) != 1 {
		return nil, fmt.Errorf("%d keys", len(ps))
	}
	return ps[0], nil
}
