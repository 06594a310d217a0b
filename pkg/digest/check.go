package digest

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/export"
)

// CheckOptions are what a member knows from outside a digest they check.
type CheckOptions struct {
	// Pin is the fingerprint of the directory key the member trusts (any
	// key of the digest's key chain; spaces are ignored).
	Pin string
	// Last is the serial and head of the digest the member saw last;
	// nil when they have none (the first digest they check).
	Last *directory.Head
	// LastSigner is the fingerprint of the key that signed the digest
	// the member saw last (Checked.Signer then), or "" when unknown:
	// this digest's key chain must have that key in force at
	// Last.Serial, so a digest signed by a key the directory had moved
	// past at Last (a chain cut short, its revocation left out) is
	// refused.
	LastSigner string
	// Now is the time signatures and keys are judged at (zero: time.Now).
	Now time.Time
}

// Checked is what Check found to hold.
type Checked struct {
	Serial int64
	Head   string
	// Extends is the head the digest was found to extend: the member's
	// Last, or without it the previous head the digest states.
	Extends directory.Head
	// Signer is the fingerprint of the key that signed directory.json.
	Signer string
	// Entries counts the ledger entries whose hashes were recomputed.
	Entries int
}

// CheckError is a finding of Check: what does not hold of a digest.
type CheckError struct {
	Reason string
	Hint   string
}

func (e *CheckError) Error() string { return e.Reason }

func finding(hint, format string, args ...any) *CheckError {
	return &CheckError{Reason: fmt.Sprintf(format, args...), Hint: hint}
}

// hintBroken is the hint of entries that do not hold together.
const hintBroken = "the digest was changed after the directory made it, or its ledger was rewritten: tell the operator, and keep the digest"

// hintRepin is the way out when the key chain cannot be followed.
const hintRepin = "get the directory key's fingerprint out of band (from the operator, in person or by phone) and pass it with --pin"

// Check checks a digest's directory.json (data) and its detached
// signature (sig, directory.json.asc) as a member can, without the
// directory's database: the key chain is walked from the pinned key
// (walkKeys) to its end, the signature must be by that last key (the
// one directory.json names), every ledger entry the JSON carries must
// hash to its hash and chain from the previous digest's head to the new
// head, and the head must extend opts.Last (no fork, no rollback, no
// replay of an older digest), with opts.LastSigner in force there. It
// covers directory.json and its signature only, not the mail around
// them. A finding is a *CheckError.
func Check(data, sig []byte, opts CheckOptions) (*Checked, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	ex, err := export.ParseJSON(bytes.NewReader(data))
	if err != nil {
		return nil, finding("pass the directory.json attached to a digest, or the digest's .eml", "%v", err)
	}
	ch := ex.Chain
	if ch == nil {
		return nil, finding("only a digest's directory.json carries the chain: check one attached to a digest (made by a ccdir that has ccdir check)",
			"directory.json has no chain: it is not a digest's (ccdir export writes none), or it was made by a ccdir that did not carry it")
	}
	walked, err := walkKeys(ch.Keys, opts.Pin, now)
	if err != nil {
		return nil, err
	}
	if len(sig) == 0 {
		return nil, finding("pass directory.json.asc beside directory.json, or the whole digest", "no signature of directory.json")
	}
	// Only the key in force at the head, the chain's last, signs: a
	// key the chain moved past does not, even unrevoked.
	signer := walked[len(walked)-1]
	if _, err := signer.pub.VerifyAt(data, sig, now); err != nil {
		return nil, finding("the digest was not made by the directory you pinned, or it was changed on the way",
			"the signature of directory.json is not by the directory key %s, the last of its key chain: %v", keys.GroupFingerprint(signer.fpr), err)
	}
	if !strings.EqualFold(ex.Directory.KeyFingerprint, signer.fpr) {
		return nil, finding(hintBroken, "directory.json says the directory key is %s, but its key chain ends at %s", ex.Directory.KeyFingerprint, signer.fpr)
	}
	base, err := checkEntries(ex, walked)
	if err != nil {
		return nil, err
	}
	if err := linksInLedger(ex, base); err != nil {
		return nil, err
	}
	res := &Checked{Serial: ex.Serial, Head: ex.Head, Extends: base, Signer: signer.fpr, Entries: len(ch.Entries)}
	if opts.Last != nil {
		if err := extends(ex, base, *opts.Last); err != nil {
			return nil, err
		}
		if opts.LastSigner != "" {
			if err := lastSigner(ch.Keys, *opts.Last, opts.LastSigner); err != nil {
				return nil, err
			}
		}
		res.Extends = *opts.Last
	}
	return res, nil
}

// lastSigner checks that the key chain list has key fpr, which signed
// the digest the member saw at last, in force at last.Serial (the key
// listed last from a serial at or before it).
func lastSigner(list []export.ExportKeyOf, last directory.Head, fpr string) error {
	fpr = strings.ToUpper(strings.ReplaceAll(fpr, " ", ""))
	var at string
	for _, k := range list {
		if k.FromSerial <= last.Serial {
			at = strings.ToUpper(k.Fingerprint)
		}
	}
	if at != fpr {
		return finding("a digest signed by a key the directory replaced before the digest you saw last (its key chain cut short, a revocation left out), or another directory's: do not trust it, tell the operator out of band",
			"key chain: the key in force at serial %d you saw last was %s, but this digest's chain has %s there", last.Serial, fpr, at)
	}
	return nil
}

// chainKey is one directory key of a digest's key chain.
type chainKey struct {
	fpr  string
	from int64
	pub  *keys.Public
	// verifier checks the ledger signatures the key made (made at the
	// first entry it checks).
	verifier *keys.Verifier
}

// walkKeys reads the digest's chain of directory keys and follows it from
// the pinned key to the newest, each step checked by linkKeys; it
// returns the keys walked, the pinned one first. It does not follow the
// chain past a revoked key: whoever holds a revoked key may have made
// the next link.
func walkKeys(list []export.ExportKeyOf, pin string, now time.Time) ([]*chainKey, error) {
	if len(list) == 0 {
		return nil, finding("", "directory.json has no directory key chain")
	}
	pin = strings.ToUpper(strings.ReplaceAll(pin, " ", ""))
	var chain []*chainKey
	at := -1
	for i, k := range list {
		pub, err := keys.ParsePublicOne([]byte(k.Key))
		if err != nil {
			return nil, finding("", "key chain: key %d (%s): %v", i+1, k.Fingerprint, err)
		}
		if !strings.EqualFold(pub.Fingerprint, k.Fingerprint) {
			return nil, finding("", "key chain: key %d is %s, not %s as listed", i+1, pub.Fingerprint, k.Fingerprint)
		}
		if i == 0 && k.FromSerial != 1 || i > 0 && k.FromSerial <= list[i-1].FromSerial {
			return nil, finding("", "key chain: key %d (%s) signs from serial %d, which does not follow the key before it", i+1, pub.Fingerprint, k.FromSerial)
		}
		for _, k := range chain {
			if k.fpr == pub.Fingerprint {
				return nil, finding("", "key chain: key %s is listed twice", pub.Fingerprint)
			}
		}
		if pub.Fingerprint == pin {
			at = i
		}
		chain = append(chain, &chainKey{fpr: pub.Fingerprint, from: k.FromSerial, pub: pub})
	}
	if at < 0 {
		fprs := make([]string, len(chain))
		for i, k := range chain {
			fprs[i] = k.fpr
		}
		return nil, finding(hintRepin, "the pinned key %s is not in the digest's key chain (%s): another directory's digest, or a key you never pinned",
			pin, strings.Join(fprs, ", "))
	}
	walked := []*chainKey{chain[at]}
	for i := at + 1; i < len(chain); i++ {
		prev := chain[i-1]
		if len(prev.pub.Revocations()) > 0 {
			return nil, finding(hintRepin, "key chain: the directory key %s is revoked (%s): ccdir check does not follow the chain past it to %s",
				prev.fpr, prev.pub.Revocations()[0], chain[i].fpr)
		}
		if err := linkKeys(prev, chain[i], list[i].Key, list[i].Link, now); err != nil {
			return nil, err
		}
		walked = append(walked, chain[i])
	}
	if last := walked[len(walked)-1]; len(last.pub.Revocations()) > 0 {
		return nil, finding(hintRepin, "the directory key %s is revoked (%s)", last.fpr, last.pub.Revocations()[0])
	}
	return walked, nil
}

// linkKeys checks that link, a ledger entry, hands the directory over
// from key prev to key next: it must be the entry at the serial next
// signs from, hash to its hash, and be a directory.rekey entry by the
// ledger's own rule (directory.CheckRekeyLink: its payload names prev
// and next, signed by prev and then by next, two signatures), whose
// payload's public key is next's; and listed, next's key as the chain
// lists it (the key a member imports and checks the digest with), must
// be that payload's key byte for byte, or a copy of it that adds no
// subkey (directory.KeptSubkeys: the current key with the user IDs of
// key update-uids since, an earlier one with its revocation), so that
// the chain cannot hand members a key with someone's encryption subkey
// added.
func linkKeys(prev, next *chainKey, listed string, link *export.ExportEntry, now time.Time) error {
	gap := func(why string) error {
		return finding(hintRepin, "key chain has a gap: %s links key %s to key %s (from serial %d)", why, prev.fpr, next.fpr, next.from)
	}
	if link == nil {
		return gap("no ledger entry")
	}
	if link.Seq != next.from {
		return gap(fmt.Sprintf("entry %d, not the entry at serial %d,", link.Seq, next.from))
	}
	h, err := link.Hashed()
	if err != nil || h.Hash() != link.Hash {
		return gap(fmt.Sprintf("entry %d, which does not hash to its hash,", link.Seq))
	}
	verify := func(k *chainKey) directory.VerifyFunc {
		return func(text, sig []byte) error {
			_, err := k.pub.VerifyAt(text, sig, now)
			return err
		}
	}
	e := &directory.Entry{Seq: link.Seq, Op: link.Op, Payload: link.Payload, Hash: link.Hash, Sig: link.Sig}
	p, err := directory.CheckRekeyLink(e,
		directory.RekeyKey{Fingerprint: prev.fpr, Verify: verify(prev)},
		directory.RekeyKey{Fingerprint: next.fpr, Verify: verify(next)}, keys.SplitSignatures)
	if err != nil {
		return gap(fmt.Sprintf("%v, which", err))
	}
	pub, err := keys.ParsePublicOne([]byte(p.PublicKey))
	if err != nil {
		return gap(fmt.Sprintf("entry %d, whose new key cannot be read (%v),", link.Seq, err))
	}
	if pub.Fingerprint != next.fpr {
		return gap(fmt.Sprintf("entry %d, whose new key is %s,", link.Seq, pub.Fingerprint))
	}
	if listed != p.PublicKey {
		if err := directory.KeptSubkeys(keys.Fingerprints, next.fpr, listed, p.PublicKey); err != nil {
			return finding(hintBroken, "key chain: key %s as listed is not the key entry %d hands over to, but one with a subkey added (that entry's key, compared: %v)", next.fpr, link.Seq, err)
		}
	}
	return nil
}

// linksInLedger checks that each key chain link is the ledger's entry at
// its serial: beyond the head there is none, and within the entries the
// digest carries it must be the one there; and that each rekey entry
// carried is a link of the chain.
func linksInLedger(ex *export.Export, base directory.Head) error {
	linked := map[int64]bool{}
	for _, k := range ex.Chain.Keys {
		if k.Link != nil {
			linked[k.Link.Seq] = true
		}
	}
	for _, e := range ex.Chain.Entries {
		if e.Op == directory.OpRekey && !linked[e.Seq] {
			return finding(hintBroken, "entry %d is a directory.rekey entry, but the key chain has no key it links: the chain was cut short", e.Seq)
		}
	}
	for _, k := range ex.Chain.Keys {
		l := k.Link
		switch {
		case l == nil:
		case l.Seq > ex.Serial:
			return finding(hintBroken, "key chain: key %s is linked by entry %d, beyond the head %d", k.Fingerprint, l.Seq, ex.Serial)
		case l.Seq > base.Serial && !strings.EqualFold(ex.Chain.Entries[l.Seq-base.Serial-1].Hash, l.Hash):
			return finding(hintBroken, "key chain: key %s is linked by an entry %d that is not the ledger's", k.Fingerprint, l.Seq)
		}
	}
	return nil
}

// checkEntries recomputes the hash of every entry the digest carries and
// checks that they chain from the previous digest's head (for the first
// digest: from the first entry carried) to the digest's head, each
// signed by the directory key in force at its serial, as far as the
// walked chain knows it. It returns the head the entries extend.
func checkEntries(ex *export.Export, walked []*chainKey) (directory.Head, error) {
	ch := ex.Chain
	base := directory.Head{Serial: ch.PrevSerial, Hash: ch.PrevHead}
	if ch.PrevSerial == 0 && len(ch.Entries) > 0 {
		// The first digest: its entries start where they start.
		base = directory.Head{Serial: ch.Entries[0].Seq - 1, Hash: ch.Entries[0].PrevHash}
		if base.Serial == 0 && base.Hash != directory.GenesisPrevHash {
			return base, finding(hintBroken, "entry 1 does not start the ledger: its prev_hash is %.16s…, not zeros", base.Hash)
		}
	}
	// What the contact.erase entries among them erased: an erased payload
	// is accepted only where one covers it (a person's data erased under
	// data-protection law); each erase entry is itself hashed in turn.
	erased := map[int64]*directory.Erasure{}
	for i := range ch.Entries {
		e := &ch.Entries[i]
		er, err := (&directory.Entry{Seq: e.Seq, Op: e.Op, Payload: e.Payload}).Erasure()
		if err != nil || er == nil {
			continue // one that does not parse covers nothing
		}
		for _, s := range er.Redacts {
			erased[s] = er
		}
	}
	var versions directory.Versions
	prev := base
	for i := range ch.Entries {
		e := &ch.Entries[i]
		if e.Seq != prev.Serial+1 {
			return base, finding(hintBroken, "entries missing: after serial %d, directory.json carries entry %d", prev.Serial, e.Seq)
		}
		if !strings.EqualFold(e.PrevHash, prev.Hash) {
			return base, finding(hintBroken, "entry %d does not chain: its prev_hash %.16s… is not the hash %.16s… of entry %d", e.Seq, e.PrevHash, prev.Hash, prev.Serial)
		}
		h, err := e.Hashed()
		if err != nil {
			return base, finding(hintBroken, "%v", err)
		}
		if err := versions.Step(e.Seq, h.Version); err != nil {
			return base, finding(hintBroken, "%v", err)
		}
		if by := erased[e.Seq]; e.Payload == "" && by == nil {
			return base, finding(hintBroken, "entry %d was erased, but no contact.erase entry after it covers it", e.Seq)
		} else if e.Payload == "" {
			if err := by.Covers(&h, e.Hash); err != nil {
				return base, finding(hintBroken, "entry %d was erased, but not as the contact.erase covering it says: %v", e.Seq, err)
			}
		}
		// A version 1 entry erased (a tombstone) keeps a hash that cannot
		// be recomputed: the next entry's prev_hash and the signatures
		// vouch for it.
		if got := h.Hash(); got != e.Hash && !h.Tombstone() {
			return base, finding(hintBroken, "entry %d does not hash to its hash (stated %.16s…, computed %.16s…): its fields were changed", e.Seq, e.Hash, got)
		}
		if err := h.CheckSubject(); err != nil {
			return base, finding(hintBroken, "%v", err)
		}
		if err := entrySigned(e, walked); err != nil {
			return base, err
		}
		prev = directory.Head{Serial: e.Seq, Hash: e.Hash}
	}
	if prev.Serial != ex.Serial || !strings.EqualFold(prev.Hash, ex.Head) {
		if len(ch.Entries) == 0 {
			return base, finding(hintBroken, "entries missing: directory.json carries none, but its head %d:%.16s… is not the previous digest's %d:%.16s…", ex.Serial, ex.Head, base.Serial, base.Hash)
		}
		return base, finding(hintBroken, "the entries end at %d:%.16s…, not at the digest's head %d:%.16s…", prev.Serial, prev.Hash, ex.Serial, ex.Head)
	}
	return base, nil
}

// entrySigned checks the signature of e by the directory key in force at
// its serial. Entries from before the pinned key are covered by the hash
// chain alone: the member did not pin the key that signed them.
func entrySigned(e *export.ExportEntry, walked []*chainKey) error {
	var k *chainKey
	for _, w := range walked {
		if w.from <= e.Seq {
			k = w
		}
	}
	if k == nil {
		return nil
	}
	if k.verifier == nil {
		t, err := time.Parse(time.RFC3339, e.Time)
		if err != nil {
			return finding(hintBroken, "entry %d: bad time %q", e.Seq, e.Time)
		}
		if k.verifier, err = k.pub.NewVerifier(t); err != nil {
			return finding(hintBroken, "entry %d: the directory key %s cannot sign at %s: %v", e.Seq, k.fpr, e.Time, err)
		}
	}
	sigs, err := keys.SplitSignatures(e.Sig)
	if err != nil {
		return finding(hintBroken, "entry %d: signature: %v", e.Seq, err)
	}
	text := directory.SignedText(e.Seq, e.Hash)
	for _, s := range sigs {
		if err = k.verifier.Verify(text, s); err == nil {
			return nil
		}
	}
	return finding(hintBroken, "entry %d is not signed by the directory key %s: %v", e.Seq, k.fpr, err)
}

// extends checks that the digest's head extends last, the head the
// member saw, given that its entries chain from base.
func extends(ex *export.Export, base, last directory.Head) error {
	lastText := fmt.Sprintf("%d:%.16s…", last.Serial, last.Hash)
	switch {
	case last.Serial > ex.Serial:
		return finding("a digest older than the last you saw was sent again (a replay), or the directory was rolled back: ask the operator",
			"rollback or replay: this digest is at serial %d, below serial %d you saw last (%s)", ex.Serial, last.Serial, lastText)
	case last.Serial < base.Serial:
		return finding(fmt.Sprintf("check the digest of serial %d first (ask the operator for it if you missed it), then this one with --last %d:%s", base.Serial, base.Serial, base.Hash),
			"entries missing: this digest carries the ledger from serial %d on, after the serial %d you saw last", base.Serial+1, last.Serial)
	}
	hash := base.Hash
	if last.Serial > base.Serial {
		hash = ex.Chain.Entries[last.Serial-base.Serial-1].Hash
	}
	if !strings.EqualFold(hash, last.Hash) {
		return finding("the directory's history was rewritten after you saw it, or this is another directory's digest: tell the operator and the community",
			"fork: this digest's ledger has %d:%.16s… where you saw %s", last.Serial, hash, lastText)
	}
	return nil
}

// MaxDigestBytes caps a digest message read by DigestFiles.
const MaxDigestBytes = 64 << 20

// EncryptedError is DigestFiles's error for a digest still encrypted:
// Armored is the OpenPGP message to decrypt (the member's gpg does).
type EncryptedError struct{ Armored []byte }

func (e *EncryptedError) Error() string { return "the digest is still encrypted" }

// DigestFiles finds directory.json and its signature (directory.json.asc)
// in a received digest: the message as saved by a mail program after
// decryption, or as gpg decrypts its encrypted part (the multipart/signed
// entity). A digest still encrypted gives an *EncryptedError.
func DigestFiles(msg []byte) (data, sig []byte, err error) {
	if len(msg) > MaxDigestBytes {
		return nil, nil, finding("", "the message has %d bytes, more than %d", len(msg), MaxDigestBytes)
	}
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil && !message.IsUnknownCharset(err) {
		return nil, nil, finding("pass a digest as received (.eml), or directory.json and directory.json.asc", "not a mail message: %v", err)
	}
	parts := 0
	var walk func(e *message.Entity, depth int) error
	walk = func(e *message.Entity, depth int) error {
		if parts++; parts > 64 || depth > 8 {
			return finding("", "the message has too many or too deeply nested parts")
		}
		t, params, _ := e.Header.ContentType()
		if mr := e.MultipartReader(); mr != nil {
			encrypted := t == "multipart/encrypted" && strings.EqualFold(params["protocol"], "application/pgp-encrypted")
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					return nil
				}
				if err != nil && !message.IsUnknownCharset(err) {
					return finding("", "the message cannot be read: %v", err)
				}
				if pt, _, _ := p.Header.ContentType(); encrypted && pt == "application/octet-stream" {
					b, err := io.ReadAll(io.LimitReader(p.Body, MaxDigestBytes))
					if err != nil {
						return finding("", "the encrypted part cannot be read: %v", err)
					}
					return &EncryptedError{Armored: b}
				}
				if err := walk(p, depth+1); err != nil {
					return err
				}
			}
		}
		_, dp, _ := e.Header.ContentDisposition()
		name := dp["filename"]
		if name == "" {
			name = params["name"]
		}
		var dst *[]byte
		switch name {
		case "directory.json":
			dst = &data
		case JSONSignatureName:
			dst = &sig
		default:
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(e.Body, MaxDigestBytes))
		if err != nil {
			return finding("", "%s cannot be read: %v", name, err)
		}
		*dst = b
		return nil
	}
	if err := walk(e, 0); err != nil {
		return nil, nil, err
	}
	if data == nil {
		return nil, nil, finding("pass a digest of a directory that attaches directory.json (digest.attach)", "the message has no directory.json attachment")
	}
	if sig == nil {
		return nil, nil, finding("only digests made by a ccdir that has ccdir check carry it: check a newer digest", "the message has no %s attachment", JSONSignatureName)
	}
	return data, sig, nil
}
