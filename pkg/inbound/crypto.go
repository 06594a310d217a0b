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
	return refuse(550, enhPolicy, SignatureRefused).with("not registered: " + detail)
}

func (c *check) future(sig *packet.Signature) *Refusal {
	return refuse(550, enhPolicy, SignatureRefused).with(fmt.Sprintf("dated in the future (more than %s ahead): signed at %s",
		fmtDuration(c.cfg.Skew), sig.CreationTime.UTC().Format(time.RFC3339)))
}

func badSignature(detail string) *Refusal {
	return refuse(550, enhPolicy, SignatureRefused).with("bad signature: " + detail)
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

// readSignature reads exactly one signature packet, armored or binary.
func readSignature(b []byte) (*packet.Signature, []byte, error) {
	if len(b) > keys.MaxSignatureBytes {
		return nil, nil, fmt.Errorf("signature of %d bytes", len(b))
	}
	bin := b
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0]&0x80 == 0 {
		blk, err := armor.Decode(bytes.NewReader(t))
		if err != nil {
			return nil, nil, err
		}
		if blk.Type != openpgp.SignatureType {
			return nil, nil, fmt.Errorf("armor block %q is not a signature", blk.Type)
		}
		bin, err = io.ReadAll(io.LimitReader(blk.Body, keys.MaxSignatureBytes+1))
		if err != nil {
			return nil, nil, err
		}
		if len(bin) > keys.MaxSignatureBytes {
			return nil, nil, errors.New("signature too large")
		}
	}
	r := bytes.NewReader(bin)
	pkt, err := packet.Read(r)
	if err != nil {
		return nil, nil, err
	}
	sig, ok := pkt.(*packet.Signature)
	if !ok {
		return nil, nil, errors.New("not a signature packet")
	}
	if r.Len() != 0 {
		return nil, nil, errors.New("more than one packet where one signature was expected")
	}
	return sig, bin, nil
}

// verifyDetached finds the registered key that issued the detached
// signature sigData and checks it with verify (which gets the key and the
// binary signature).
func (c *check) verifyDetached(sigData, content []byte, verify func(key *keys.Public, sigBin []byte, at time.Time) error) (*sigResult, *Refusal) {
	sig, bin, err := readSignature(sigData)
	if err != nil {
		return nil, badSignature(err.Error())
	}
	var id uint64
	if sig.IssuerKeyId != nil {
		id = *sig.IssuerKeyId
	}
	cands := c.idx.lookup(sig.IssuerFingerprint, id)
	if len(cands) == 0 {
		return nil, c.unregistered(issuerString(sig))
	}
	if sig.CreationTime.After(c.verifyTime()) {
		return nil, c.future(sig)
	}
	var last error
	for _, reg := range cands {
		key, err := keys.ParsePublicOne([]byte(reg.armored))
		if err != nil {
			last = err
			continue
		}
		if err := verify(key, bin, c.verifyTime()); err != nil {
			last = err
			continue
		}
		return &sigResult{reg: reg, key: key, sig: sig, content: content, sigBin: bin}, nil
	}
	return nil, badSignature(fmt.Sprint(last))
}

// pgpMessage is a read OpenPGP message (encrypted, signed, or both).
type pgpMessage struct {
	plain     []byte
	encrypted bool
	signed    bool
	res       *sigResult // if signed
}

// ring is the keyring for go-crypto's ReadMessage: the directory's own
// key (for decryption) and, looked up lazily by key ID, the registered
// keys of contacts (for the signature), parsed for this message only.
type ring struct {
	c      *check
	dir    openpgp.EntityList
	parsed map[*openpgp.Entity]*sigResult
	byReg  map[*registered]*openpgp.Entity
	// answers counts the lookups that found a key. go-crypto hashes the
	// whole plaintext once for every one-pass signature whose issuer the
	// keyring knows, and a message may carry thousands of them: after
	// maxAnswers the ring knows nobody, so the work per message is bounded.
	answers int
}

// maxAnswers bounds the keys a ring hands out for one message: a PKESK or
// two to the directory key and a signature or two.
const maxAnswers = 4

func (r *ring) contacts(id uint64) []*openpgp.Entity {
	var out []*openpgp.Entity
	for _, reg := range r.c.idx.lookup(nil, id) {
		e := r.byReg[reg]
		if e == nil {
			key, err := keys.ParsePublicOne([]byte(reg.armored))
			if err != nil {
				continue
			}
			e = key.Entity()
			r.byReg[reg] = e
			r.parsed[e] = &sigResult{reg: reg, key: key}
		}
		out = append(out, e)
	}
	return out
}

func (r *ring) KeysById(id uint64) []openpgp.Key {
	ks := r.dir.KeysById(id)
	if id != 0 {
		ks = append(ks, openpgp.EntityList(r.contacts(id)).KeysById(id)...)
	}
	return ks
}

func (r *ring) EntitiesById(id uint64) []*openpgp.Entity {
	if r.answers >= maxAnswers {
		return nil
	}
	es := r.dir.EntitiesById(id)
	if id != 0 {
		es = append(es, r.contacts(id)...)
	}
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
			return nil, refuse(550, enhMedia, "the armored OpenPGP message is damaged").with(err.Error()), nil
		}
		if blk.Type != "PGP MESSAGE" {
			return nil, refuse(550, enhMedia, "the armored block is not a PGP MESSAGE").with(blk.Type), nil
		}
		r = blk.Body
	}
	dir, err := c.p.dirKeyring()
	if err != nil {
		return nil, nil, err
	}
	rg := &ring{c: c, dir: dir, parsed: map[*openpgp.Entity]*sigResult{}, byReg: map[*registered]*openpgp.Entity{}}
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
			return nil, refuse(550, enhCrypto, "the message is not encrypted to the directory's key").with(err.Error()), nil
		}
		return nil, refuse(550, enhCrypto, "the OpenPGP message cannot be read or decrypted").with(err.Error()), nil
	}
	plain, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, maxDec+1))
	if err != nil || int64(len(plain)) > maxDec {
		detail := fmt.Sprintf("read %d bytes: %v", len(plain), err)
		return nil, refuse(552, enhSize, fmt.Sprintf(
			"the OpenPGP message cannot be decrypted: damaged, or over %d bytes once decompressed", maxDec)).with(detail), nil
	}
	m := &pgpMessage{plain: plain, encrypted: md.IsEncrypted, signed: md.IsSigned}
	if !md.IsSigned {
		return m, nil, nil
	}
	if !md.IsVerified {
		return nil, badSignature("signature not verified"), nil
	}
	var sig *packet.Signature
	if md.SelectedCandidate != nil {
		sig = md.SelectedCandidate.CorrespondingSig
	}
	if md.SignatureError != nil {
		switch {
		case errors.Is(md.SignatureError, pgperrors.ErrUnknownIssuer):
			detail := "unknown issuer"
			if sig != nil {
				detail = issuerString(sig)
			}
			return nil, c.unregistered(detail), nil
		case sig != nil && sig.CreationTime.After(c.verifyTime()):
			return nil, c.future(sig), nil
		}
		return nil, badSignature(md.SignatureError.Error()), nil
	}
	if md.SignedBy == nil || md.Signature == nil {
		return nil, badSignature("no signer"), nil
	}
	res := rg.parsed[md.SignedBy.Entity]
	if res == nil {
		// Signed by the directory's own key, or by nobody we know.
		return nil, c.unregistered(issuerString(md.Signature)), nil
	}
	res.sig = md.Signature
	res.content = plain
	var sb bytes.Buffer
	if err := md.Signature.Serialize(&sb); err != nil {
		return nil, badSignature("signature cannot be kept: " + err.Error()), nil
	}
	res.sigBin = sb.Bytes()
	m.res = res
	return m, nil, nil
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
