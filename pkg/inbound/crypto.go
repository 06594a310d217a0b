package inbound

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ccdir/ccdir/keys"
)

// sigResult is a signature that verified: who made it, and over what.
type sigResult struct {
	reg     *registered
	key     *keys.Public // parsed for this message only
	sig     *packet.Signature
	content []byte // the signed data, for the replay id and the evidence
	sigBin  []byte // the signature packet, binary, for the evidence
}

// check holds what one Process call needs to judge signatures.
type check struct {
	p   *Pipeline
	cfg Config
	now time.Time
	idx *keyIndex
}

func (c *check) verifyTime() time.Time { return c.now.Add(c.cfg.Skew) }

// SignatureRefused is the one answer to a signature that did not verify
// by a registered key: an unknown key, a bad signature and a date in the
// future get the same words, so that nobody can learn from the reply
// whether a key is registered here. Why, exactly, goes to the operator's
// log (Refusal.Detail).
const SignatureRefused = "the signature cannot be accepted: sign with your registered key, on a clock that is right, and change nothing after signing"

func (c *check) unregistered(detail string) *Refusal {
	return refuse(RefusedSignature, 550, enhPolicy, SignatureRefused).with("not registered: " + detail)
}

// future refuses a signature dated more than the skew ahead. The peer
// gets SignatureRefused, as for any signature not taken; the signer, if
// the signature is good (Refusal.by), is told of the clock.
func (c *check) future(sig *packet.Signature) *Refusal {
	r := refuse(RefusedFuture, 550, enhPolicy, SignatureRefused).with(fmt.Sprintf("dated in the future (more than %s ahead): signed at %s",
		fmtDuration(c.cfg.Skew), sig.CreationTime.UTC().Format(time.RFC3339)))
	r.Tell = fmt.Sprintf("the signature is dated %s, more than %s ahead of the directory's clock (%s): "+
		"set the clock of the computer that signs right, then sign and send the mail again",
		sig.CreationTime.UTC().Format("2006-01-02 15:04:05 UTC"), fmtDuration(c.cfg.Skew), c.now.UTC().Format("2006-01-02 15:04:05 UTC"))
	return r
}

func badSignature(detail string) *Refusal {
	return refuse(RefusedSignature, 550, enhPolicy, SignatureRefused).with("bad signature: " + detail)
}

func issuerString(sig *packet.Signature) string {
	if len(sig.IssuerFingerprint) > 0 {
		return fmt.Sprintf("issuer %X", sig.IssuerFingerprint)
	}
	if sig.IssuerKeyId != nil {
		return fmt.Sprintf("issuer %016X", *sig.IssuerKeyId)
	}
	return "no issuer"
}

// rawSig is one signature of a message, not checked yet.
type rawSig struct {
	sig *packet.Signature
	bin []byte // the signature packet, binary
	err error  // a fault found before any key is tried
}

// parseSigs reads a detached signature block (armored or binary): each
// of its signatures, at most keys.MaxSignatures.
func parseSigs(b []byte) ([]rawSig, error) {
	bins, err := keys.SplitSignatures(b)
	if err != nil {
		return nil, err
	}
	out := make([]rawSig, len(bins))
	for i, bin := range bins {
		p, err := packet.Read(bytes.NewReader(bin))
		if err != nil {
			return nil, err
		}
		out[i] = rawSig{sig: p.(*packet.Signature), bin: bin}
	}
	return out, nil
}

// verifySigs checks each signature of content on its own against the
// registered keys its issuer names (go-crypto takes a block of several
// as good as soon as any one verifies). The signer is the first
// signature, in order, that verifies by a registered key; with none, the
// refusal is that of the signatures by registered keys (bad, or dated in
// the future), else that the signers are not registered.
func (c *check) verifySigs(content []byte, raws []rawSig) ([]Signature, *sigResult, *Refusal) {
	sigs := make([]Signature, len(raws))
	var res *sigResult
	var why *Refusal
	var issuers []string
	var weak *Refusal // a signature with a hash refused, whoever made it
	for i, r := range raws {
		s := &sigs[i]
		*s = Signature{Issuer: issuerOf(r.sig), SignedAt: r.sig.CreationTime, raw: r}
		var id uint64
		if r.sig.IssuerKeyId != nil {
			id = *r.sig.IssuerKeyId
		}
		cands := c.idx.lookup(r.sig.IssuerFingerprint, id)
		if keys.RefusedHash(r.sig.Hash) {
			// Known from the packet before any key: said to everyone;
			// a registered key's good signature is answered.
			s.Err = fmt.Errorf("%w: signed with %s", keys.ErrBadSignature, r.sig.Hash)
			if weak == nil || weak.res == nil {
				w := weakHash(r.sig)
				if good := goodRefusedHash(cands, content, r, c.verifyTime()); good != nil {
					w.by(good)
				}
				weak = w
			}
			continue
		}
		if len(cands) == 0 {
			s.Err = errUnknownKey
			issuers = append(issuers, issuerString(r.sig))
			continue
		}
		if r.sig.CreationTime.After(c.verifyTime()) {
			s.Contact, s.Err = cands[0].contact.Email, errFuture
			// Checked at its own time: if it is good, its signer is
			// known (and may be told to set the clock right); either
			// way it is refused.
			if why == nil || why.res == nil {
				f := c.future(r.sig)
				if good := goodAt(cands, content, r, r.sig.CreationTime); good != nil {
					f.by(good)
				}
				if why == nil || f.res != nil {
					why = f
				}
			}
			continue
		}
		for _, reg := range cands {
			key, err := keys.ParsePublicOne([]byte(reg.armored))
			if err == nil {
				err = r.err
			}
			if err == nil {
				_, err = key.VerifyAt(content, r.bin, c.verifyTime())
			}
			s.Contact, s.Err = reg.contact.Email, err
			if key != nil {
				s.Fingerprint = key.Fingerprint
			}
			if err == nil {
				if res == nil {
					res = &sigResult{reg: reg, key: key, sig: r.sig, content: content, sigBin: r.bin}
				}
				break
			}
		}
		if s.Err != nil && why == nil {
			why = badSignature(s.Err.Error())
		}
	}
	if res != nil {
		return sigs, res, nil
	}
	if weak != nil && (why == nil || why.res == nil || weak.res != nil) {
		return nil, nil, weak
	}
	if why == nil {
		why = c.unregistered(strings.Join(issuers, ", "))
	}
	return nil, nil, why
}

// weakHash refuses a signature made with a hash refused (SHA-1): the
// same words to everyone, since the hash is in the signature packet and
// says nothing of who is registered.
func weakHash(sig *packet.Signature) *Refusal {
	r := refuse(RefusedWeakHash, 550, enhPolicy, fmt.Sprintf("the signature uses %s, which the directory does not accept: sign with SHA-256 "+
		"(gpg: --digest-algo SHA256, or personal-digest-preferences SHA256 in gpg.conf)", sig.Hash)).with(issuerString(sig))
	return r
}

// goodRefusedHash returns the signature r of content, made with a hash
// refused, as verified by one of the registered keys cands (only to know
// whom to answer), or nil.
func goodRefusedHash(cands []*registered, content []byte, r rawSig, t time.Time) *sigResult {
	if r.err != nil {
		return nil
	}
	for _, reg := range cands {
		key, err := keys.ParsePublicOne([]byte(reg.armored))
		if err != nil {
			continue
		}
		if err := key.VerifyRefusedHashAt(content, r.bin, t); err == nil {
			return &sigResult{reg: reg, key: key, sig: r.sig, content: content, sigBin: r.bin}
		}
	}
	return nil
}

// goodAt returns the signature r of content as verified at t by one of
// the registered keys cands, or nil.
func goodAt(cands []*registered, content []byte, r rawSig, t time.Time) *sigResult {
	if r.err != nil {
		return nil
	}
	for _, reg := range cands {
		key, err := keys.ParsePublicOne([]byte(reg.armored))
		if err != nil {
			continue
		}
		if _, err := key.VerifyAt(content, r.bin, t); err == nil {
			return &sigResult{reg: reg, key: key, sig: r.sig, content: content, sigBin: r.bin}
		}
	}
	return nil
}

// verifyAttached checks the signatures that no registered key made
// against the keys attached to the signed content (a KEY-ROTATE's new
// key), each on its own; a signature that verifies must also be fresh
// (the window and the skew of the signer's own) and its key usable now.
// So a message signed by a contact's registered key and by the new key
// it attaches shows both as verified (Accepted.SignedBy).
func (c *check) verifyAttached(sigs []Signature, content []byte, attached []*keys.Public) {
	for i := range sigs {
		s := &sigs[i]
		if s.Fingerprint != "" {
			if s.Err == nil && (s.SignedAt.After(c.now.Add(c.cfg.Skew)) || s.SignedAt.Before(c.now.Add(-c.cfg.Window))) {
				s.Err = errStale
			}
			continue
		}
		for _, k := range attached {
			if !issuedBy(s.raw.sig, k) {
				continue
			}
			s.Fingerprint, s.Attached = k.Fingerprint, true
			err := s.raw.err
			if err == nil && s.SignedAt.After(c.verifyTime()) {
				err = errFuture
			}
			if err == nil {
				_, err = k.VerifyAt(content, s.raw.bin, c.verifyTime())
			}
			if err == nil && s.SignedAt.Before(c.now.Add(-c.cfg.Window)) {
				err = errStale
			}
			if err == nil {
				err = k.Check(c.now)
			}
			s.Err = err
			break
		}
	}
}

// issuedBy reports whether sig names k's primary key or one of its
// subkeys as its issuer.
func issuedBy(sig *packet.Signature, k *keys.Public) bool {
	e := k.Entity()
	if sig.CheckKeyIdOrFingerprint(e.PrimaryKey) {
		return true
	}
	for _, sk := range e.Subkeys {
		if sig.CheckKeyIdOrFingerprint(sk.PublicKey) {
			return true
		}
	}
	return false
}

// pgpMessage is a read OpenPGP message (encrypted, signed, or both).
type pgpMessage struct {
	plain     []byte
	encrypted bool
	signed    bool
	sigs      []Signature // if signed: each checked on its own
	res       *sigResult  // if signed: the signer
}

// ring is the keyring for go-crypto's ReadMessage: the directory's own
// key, for decryption. It knows no contact: every signature is checked on
// its own afterwards (verifySigs), over the literal data.
type ring struct {
	dir openpgp.EntityList
	// answers counts the lookups that found a key. go-crypto verifies
	// every one-pass signature whose issuer the keyring knows, and a
	// message may carry thousands naming the directory key: after
	// maxAnswers the ring knows nobody, so the work per message is bounded.
	answers int
}

// maxAnswers bounds the keys a ring hands out for one message: a PKESK or
// two to the directory key and a signature or two.
const maxAnswers = 4

func (r *ring) KeysById(id uint64) []openpgp.Key { return r.dir.KeysById(id) }

func (r *ring) EntitiesById(id uint64) []*openpgp.Entity {
	if r.answers >= maxAnswers {
		return nil
	}
	es := r.dir.EntitiesById(id)
	if len(es) > 0 {
		r.answers++
	}
	return es
}

// readMessage decrypts (with the directory key) and verifies an OpenPGP
// message, armored or binary. The plaintext is capped at
// MaxDecryptedBytes, and so is every compressed layer.
func (c *check) readMessage(data []byte) (*pgpMessage, *Refusal, error) {
	var r io.Reader = bytes.NewReader(data)
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0]&0x80 == 0 {
		blk, err := armor.Decode(bytes.NewReader(t))
		if err != nil {
			return nil, refuse(RefusedCrypto, 550, enhMedia, "the armored OpenPGP message is damaged").with(err.Error()), nil
		}
		if blk.Type != "PGP MESSAGE" {
			return nil, refuse(RefusedCrypto, 550, enhMedia, "the armored block is not a PGP MESSAGE").with(blk.Type), nil
		}
		r = blk.Body
	}
	dir, err := c.p.dirKeyring()
	if err != nil {
		return nil, nil, err
	}
	// The directory's earlier keys during their overlap (ccdir rekey).
	old, err := c.p.retiredRing(c.p.now())
	if err != nil {
		return nil, nil, err
	}
	if len(old) > 0 {
		dir = append(append(openpgp.EntityList{}, dir...), old...)
	}
	rg := &ring{dir: dir}
	maxDec := c.cfg.MaxDecryptedBytes
	cfg := &packet.Config{
		MinRSABits:                 keys.MinRSABits,
		Time:                       c.verifyTime,
		MaxDecompressedMessageSize: &maxDec,
	}
	// go-crypto caches signature validity inside the directory key's
	// entity: one decryption at a time.
	c.p.cryptoMu.Lock()
	defer c.p.cryptoMu.Unlock()
	md, err := openpgp.ReadMessage(r, rg, nil, cfg)
	if err != nil {
		if errors.Is(err, pgperrors.ErrKeyIncorrect) {
			if why := c.p.retiredRefusal(data, c.p.now()); why != "" {
				return nil, refuse(RefusedCrypto, 550, enhCrypto, why).with(err.Error()), nil
			}
			return nil, refuse(RefusedCrypto, 550, enhCrypto, "the message is not encrypted to the directory's key").with(err.Error()), nil
		}
		return nil, refuse(RefusedCrypto, 550, enhCrypto, "the OpenPGP message cannot be read or decrypted").with(err.Error()), nil
	}
	plain, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, maxDec+1))
	if err != nil || int64(len(plain)) > maxDec {
		detail := fmt.Sprintf("read %d bytes: %v", len(plain), err)
		return nil, refuse(RefusedCrypto, 552, enhSize, fmt.Sprintf(
			"the OpenPGP message cannot be decrypted: damaged, or over %d bytes once decompressed", maxDec)).with(detail), nil
	}
	m := &pgpMessage{plain: plain, encrypted: md.IsEncrypted, signed: md.IsSigned}
	if !md.IsSigned {
		return m, nil, nil
	}
	if !md.IsVerified {
		return nil, badSignature("signature not verified"), nil
	}
	if len(md.SignatureCandidates) > keys.MaxSignatures {
		return nil, badSignature(fmt.Sprintf("%d signatures, at most %d are checked", len(md.SignatureCandidates), keys.MaxSignatures)), nil
	}
	raws := make([]rawSig, 0, len(md.SignatureCandidates))
	for _, cand := range md.SignatureCandidates {
		sig := cand.CorrespondingSig
		if sig == nil {
			return nil, badSignature(fmt.Sprintf("a one-pass signature without its signature packet (%v)", md.SignatureError)), nil
		}
		var sb bytes.Buffer
		if err := sig.Serialize(&sb); err != nil {
			return nil, badSignature("signature cannot be kept: " + err.Error()), nil
		}
		raws = append(raws, rawSig{sig: sig, bin: sb.Bytes(), err: recipientsError(sig, md.IsEncrypted, dir)})
	}
	sigs, res, ref := c.verifySigs(plain, raws)
	if ref != nil {
		return nil, ref, nil
	}
	m.sigs, m.res = sigs, res
	return m, nil, nil
}

// recipientsError is go-crypto's check of a signature's intended
// recipients (RFC 9580 5.2.3.36), which a signature checked over the
// literal data on its own skips: when it names any, the message must be
// encrypted, to one of them (the directory key).
func recipientsError(sig *packet.Signature, encrypted bool, dir openpgp.EntityList) error {
	if len(sig.IntendedRecipients) == 0 {
		return nil
	}
	if !encrypted {
		return errors.New("intended recipients in a message that is not encrypted")
	}
	for _, r := range sig.IntendedRecipients {
		for _, e := range dir {
			if bytes.Equal(r.Fingerprint, e.PrimaryKey.Fingerprint) {
				return nil
			}
		}
	}
	return errors.New("the signature's intended recipients do not include the directory key")
}

// errNoDirectoryKey: an encrypted message, and no key to decrypt it.
var errNoDirectoryKey = errors.New("inbound: no directory key")

// dirKeyring returns a private copy of the directory key, used only for
// decryption here, so that its signature-validity cache is never shared
// with code that signs with the key concurrently.
func (p *Pipeline) dirKeyring() (openpgp.EntityList, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dir != nil {
		return p.dir, nil
	}
	if p.Secret == nil {
		return nil, errNoDirectoryKey
	}
	var buf bytes.Buffer
	if err := p.Secret.Entity().SerializePrivateWithoutSigning(&buf, nil); err != nil {
		return nil, fmt.Errorf("inbound: copy directory key: %w", err)
	}
	el, err := openpgp.ReadKeyRing(&buf)
	if err != nil || len(el) != 1 {
		return nil, fmt.Errorf("inbound: copy directory key: %v", err)
	}
	p.dir = el
	return el, nil
}

// replayID is the id of a signed statement: the signer, the hashed part
// of the signature, and a digest of the signed content with line endings
// and trailing white space normalised (text signatures ignore them). It
// leaves out what an attacker can change without breaking the signature:
// the unhashed subpackets and the encoding of the signature values.
func replayID(fpr string, sig *packet.Signature, content []byte) string {
	ch := sha256.New()
	for line := range strings.SplitSeq(strings.ReplaceAll(string(content), "\r\n", "\n"), "\n") {
		ch.Write([]byte(strings.TrimRight(line, " \t\r")))
		ch.Write([]byte{'\n'})
	}
	h := sha256.New()
	h.Write([]byte("ccdir seen v1\x00"))
	h.Write([]byte(strings.ToUpper(fpr)))
	h.Write([]byte{0})
	h.Write(sig.HashSuffix)
	h.Write([]byte{0})
	h.Write(ch.Sum(nil))
	return hex.EncodeToString(h.Sum(nil))
}
