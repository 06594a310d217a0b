package inbound

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

// registered is a contact who may sign commands: one with a role for an
// active ccTLD and a registered key.
type registered struct {
	contact directory.Contact
	armored string
}

// keyIndex maps the key IDs and fingerprints of the registered keys
// (primary keys and subkeys) to their contacts, at one directory head.
type keyIndex struct {
	head  string
	byID  map[uint64][]*registered
	byFpr map[string][]*registered // uppercase hex, primary and subkeys
}

// parsedIDs are the key IDs and fingerprints of one armored key.
type parsedIDs struct {
	ids  []uint64
	fprs []string
}

// index returns the key index for the directory's current head, rebuilding
// it (from cached key parses) when the head moved. The contacts come from
// directory.Store.Checked: keys written into the tables without the
// directory key (which the ledger does not say) are never registered
// here; the message is deferred (a *directory.TamperError, a temporary
// failure) until the operator has looked.
func (p *Pipeline) index(ctx context.Context) (*keyIndex, error) {
	head, err := p.Store.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("inbound: directory head: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idx != nil && p.idx.head == head.Hash {
		return p.idx, nil
	}
	verify, err := p.ledgerVerifier()
	if err != nil {
		return nil, err
	}
	snap, err := p.Store.Checked(ctx, p.Secret.Fingerprint(), verify)
	if err != nil {
		return nil, fmt.Errorf("inbound: directory: %w", err)
	}
	active := map[string]bool{}
	for _, m := range snap.Members {
		if m.Status == directory.StatusActive {
			active[m.TLD] = true
		}
	}
	if p.parsed == nil {
		p.parsed = map[[32]byte]parsedIDs{}
	}
	used := map[[32]byte]bool{}
	idx := &keyIndex{head: snap.Head.Hash, byID: map[uint64][]*registered{}, byFpr: map[string][]*registered{}}
	for _, c := range snap.Contacts {
		if c.Key == nil || c.Key.Armored == "" {
			continue
		}
		ok := false
		for _, r := range c.Roles {
			ok = ok || active[r.TLD]
		}
		if !ok {
			continue
		}
		sum := sha256.Sum256([]byte(c.Key.Armored))
		ids, seen := p.parsed[sum]
		if !seen {
			ids = keyIDs(c.Key.Armored)
			p.parsed[sum] = ids
		}
		used[sum] = true
		reg := &registered{contact: c, armored: c.Key.Armored}
		for _, id := range ids.ids {
			idx.byID[id] = append(idx.byID[id], reg)
		}
		for _, f := range ids.fprs {
			idx.byFpr[f] = append(idx.byFpr[f], reg)
		}
	}
	for k := range p.parsed {
		if !used[k] {
			delete(p.parsed, k)
		}
	}
	p.idx = idx
	return idx, nil
}

// ledgerVerifier returns the check of the directory key's signatures on
// ledger entries, made once. p.mu is held.
func (p *Pipeline) ledgerVerifier() (directory.VerifyFunc, error) {
	if p.ledgerV == nil {
		v, err := p.Secret.Public().NewVerifier(p.now())
		if err != nil {
			return nil, fmt.Errorf("inbound: directory key: %w", err)
		}
		p.ledgerV = v
	}
	return p.ledgerV.Verify, nil
}

// keyIDs lists the IDs of a key's primary key and of those subkeys that
// are bound to it by a valid binding signature and may sign: a subkey
// without a binding is anyone's key, copied in (it would let one member
// claim another's signing key). A key that cannot be parsed has none.
func keyIDs(armored string) parsedIDs {
	pub, err := keys.ParsePublicOne([]byte(armored))
	if err != nil {
		return parsedIDs{}
	}
	e := pub.Entity()
	out := parsedIDs{
		ids:  []uint64{e.PrimaryKey.KeyId},
		fprs: []string{strings.ToUpper(fmt.Sprintf("%x", e.PrimaryKey.Fingerprint))},
	}
	for _, sk := range e.Subkeys {
		sig, err := sk.LatestValidBindingSignature(time.Now(), nil)
		if err != nil || sig == nil || !sig.FlagsValid || !sig.FlagSign {
			continue
		}
		out.ids = append(out.ids, sk.PublicKey.KeyId)
		out.fprs = append(out.fprs, strings.ToUpper(fmt.Sprintf("%x", sk.PublicKey.Fingerprint)))
	}
	return out
}

// lookup returns the registered contacts whose key issued a signature with
// this issuer fingerprint (preferred, exact) or key ID.
func (x *keyIndex) lookup(fpr []byte, id uint64) []*registered {
	if len(fpr) > 0 {
		return x.byFpr[strings.ToUpper(fmt.Sprintf("%x", fpr))]
	}
	if id == 0 {
		return nil
	}
	return x.byID[id]
}
