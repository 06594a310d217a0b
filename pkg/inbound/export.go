package inbound

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

// What an exported evidence is (Export.Kind).
const (
	// ExportClearSigned: a clear-signed text (RFC 9580 §7), the member's
	// signed text and their signature as the mail held them.
	ExportClearSigned = "clear-signed text"
	// ExportSignedMessage: an armored OpenPGP signed message, a one-pass
	// signature packet for each signature, a literal data packet holding
	// exactly the signed data, and the member's signature packets
	// unchanged (a signature hashes only the literal data's body).
	ExportSignedMessage = "signed message"
)

// ErrEvidenceSealed is the export of evidence that an older ccdir kept
// as the whole mail it received, encrypted to the directory key: what
// the member signed is inside the encryption, which only the directory's
// secret key opens.
var ErrEvidenceSealed = fmt.Errorf("the evidence is the whole mail as received, encrypted to the directory key (kept so by a ccdir older than evidence v1): %w without the directory's secret key", directory.ErrUnchecked)

// ErrEvidenceBad is the export of evidence that does not verify with the
// key it is checked against: there is nothing an auditor could check.
var ErrEvidenceBad = errors.New("the evidence does not verify")

// Export is a member's signed statement, kept as evidence with a ledger
// entry, in a form `gpg --verify FILE` and `sq verify --signer-cert KEY
// FILE` check as it is.
type Export struct {
	Form    string // the form of the mail it came in (FormPGPMIMESigned, ...)
	Kind    string // ExportClearSigned or ExportSignedMessage
	Message []byte // armored, the file to hand out
	// Signer is the fingerprint of the key it verified with (the primary
	// key's); SignedAt the time of that signature. Others are the issuer
	// fingerprints of the other signatures it holds (a KEY-ROTATE's new
	// key), "" for one that names none.
	Signer   string
	SignedAt time.Time
	Others   []string
}

// ExportEvidence turns evidence kept with a ledger entry made at time at
// into an Export, after checking it with armoredKey (the key registered
// for the member then) as VerifyEvidence does, and checks that what it
// wrote holds the same signed data and signatures. Every form a mail
// comes in gives the same evidence (the signed data, decrypted, and the
// signatures over it), so every form exports: a clear-signed mail as a
// clear-signed text, the others as a signed message. Evidence that an
// older ccdir kept as the whole mail is read again as Process reads it;
// if the mail was encrypted to the directory key, that gives
// ErrEvidenceSealed. Evidence that does not verify gives an error that
// wraps ErrEvidenceBad.
func ExportEvidence(ev []byte, armoredKey string, at time.Time) (*Export, error) {
	return EvidenceCheck{}.Export(ev, armoredKey, at)
}

// Export is ExportEvidence, opening a whole mail encrypted to the
// directory key with c.Secret.
func (c EvidenceCheck) Export(ev []byte, armoredKey string, at time.Time) (*Export, error) {
	key, err := keys.ParsePublicOne([]byte(armoredKey))
	if err != nil {
		return nil, fmt.Errorf("the registered key cannot be read: %v", err)
	}
	if !bytes.HasPrefix(ev, []byte(evidenceMagic)) {
		src, err := c.mailSource(ev, armoredKey, at)
		if errors.Is(err, ErrEvidenceSealed) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("%w with key %s: %v", ErrEvidenceBad, key.Fingerprint, err)
		}
		ev = containerOf(src)
	}
	if err := VerifyEvidence(ev, armoredKey, at); err != nil {
		return nil, fmt.Errorf("%w with key %s: %v", ErrEvidenceBad, key.Fingerprint, err)
	}
	form, sigArmored, content, err := parseEvidence(ev)
	if err != nil {
		return nil, err
	}
	bins, err := keys.SplitSignatures(sigArmored)
	if err != nil {
		return nil, fmt.Errorf("evidence: signature: %v", err)
	}
	sigs := make([]*packet.Signature, len(bins))
	for i, b := range bins {
		p, err := packet.Read(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("evidence: signature: %v", err)
		}
		sigs[i] = p.(*packet.Signature) // SplitSignatures keeps only these
	}
	x := &Export{Form: form, Signer: key.Fingerprint, SignedAt: sigs[0].CreationTime}
	for _, s := range sigs[1:] {
		x.Others = append(x.Others, fmt.Sprintf("%X", s.IssuerFingerprint))
	}
	if form == FormInlineClear {
		if msg, ok := clearSigned(content, sigArmored, sigs); ok {
			x.Kind, x.Message = ExportClearSigned, msg
			return x, nil
		}
		// Text that would not come back the same from a clear-signed
		// text (a lone CR in it): a signed message carries it exactly.
	}
	msg, err := signedMessage(content, bins, sigs)
	if err != nil {
		return nil, err
	}
	if err := checkSignedMessage(msg, content, bins); err != nil {
		return nil, fmt.Errorf("evidence: the signed message made of it does not read back: %v", err)
	}
	x.Kind, x.Message = ExportSignedMessage, msg
	return x, nil
}

// mailSource reads a whole mail as Process does, with only armoredKey
// registered and the clock at at, and returns the signed content it
// finds; a mail encrypted to the directory key is opened with sec
// (errNoDirectoryKey if nil).
func mailSource(raw []byte, armoredKey string, at time.Time, sec *keys.Secret) (*source, error) {
	cfg := Config{}.withDefaults()
	w := &walker{maxDepth: cfg.MaxDepth, maxParts: cfg.MaxParts}
	root, err := w.parseEntity(raw, 0)
	if err != nil {
		return nil, fmt.Errorf("not a readable mail: %v", mimeRefusal(err, cfg))
	}
	reg := &registered{armored: armoredKey}
	ids := keyIDs(armoredKey)
	if len(ids.ids) == 0 {
		return nil, errors.New("the registered key cannot be read")
	}
	idx := &keyIndex{byID: map[uint64][]*registered{}, byFpr: map[string][]*registered{}}
	for _, id := range ids.ids {
		idx.byID[id] = append(idx.byID[id], reg)
	}
	for _, f := range ids.fprs {
		idx.byFpr[f] = append(idx.byFpr[f], reg)
	}
	c := &check{p: &Pipeline{Secret: sec}, cfg: cfg, now: at, idx: idx}
	src, ref, err := c.examine(root, false)
	switch {
	case err != nil:
		return nil, err
	case ref != nil:
		return nil, fmt.Errorf("%s (%s)", ref.Reason, ref.Detail)
	}
	return src, nil
}

// hashNames are the names of hashes in a clear-signed text's Hash
// header (RFC 9580 §7.1).
var hashNames = map[crypto.Hash]string{
	crypto.SHA1: "SHA1", crypto.SHA224: "SHA224", crypto.SHA256: "SHA256", crypto.SHA384: "SHA384",
	crypto.SHA512: "SHA512", crypto.SHA3_256: "SHA3-256", crypto.SHA3_512: "SHA3-512",
}

// clearSigned writes content (a clear-signed block's signed text, CRLF
// line endings, trailing blanks removed: clearsign.Block.Bytes) and its
// armored signatures as a clear-signed text; ok is false if reading it
// back does not give content exactly.
func clearSigned(content, sigArmored []byte, sigs []*packet.Signature) ([]byte, bool) {
	var hashes []string
	for _, s := range sigs {
		n, ok := hashNames[s.Hash]
		if !ok {
			return nil, false
		}
		if !strings.Contains(strings.Join(hashes, ","), n) {
			hashes = append(hashes, n)
		}
	}
	var b bytes.Buffer
	b.WriteString("-----BEGIN PGP SIGNED MESSAGE-----\nHash: " + strings.Join(hashes, ",") + "\n\n")
	for line := range strings.SplitSeq(string(content), "\r\n") {
		if strings.HasPrefix(line, "-") {
			b.WriteString("- ")
		}
		b.WriteString(line + "\n")
	}
	b.Write(sigArmored)
	blk, rest := clearsign.Decode(b.Bytes())
	if blk == nil || len(bytes.TrimSpace(rest)) > 0 || !bytes.Equal(blk.Bytes, content) {
		return nil, false
	}
	return b.Bytes(), true
}

// signedMessage builds an armored signed message of content and the
// signature packets bins (parsed: sigs), the first the signer's: a
// one-pass signature packet for each, in order, the literal data, then
// the signatures in the reverse order, as RFC 9580 §10.3 nests them.
// The literal is binary for a binary signature, UTF-8 text for a text
// one; its name and date are empty (a v4 or v6 signature does not cover
// them).
func signedMessage(content []byte, bins [][]byte, sigs []*packet.Signature) ([]byte, error) {
	var out bytes.Buffer
	aw, err := armor.Encode(&out, "PGP MESSAGE", nil)
	if err != nil {
		return nil, err
	}
	for i, s := range sigs {
		if s.Version != 4 && s.Version != 6 {
			return nil, fmt.Errorf("evidence: a version %d signature, which covers the name and date of the literal data the evidence does not keep", s.Version)
		}
		ops := &packet.OnePassSignature{Version: 3, SigType: s.SigType, Hash: s.Hash, PubKeyAlgo: s.PubKeyAlgo, IsLast: i == len(sigs)-1}
		switch {
		case s.Version == 6:
			ops.Version, ops.Salt, ops.KeyFingerprint = 6, s.Salt(), s.IssuerFingerprint
			if len(ops.KeyFingerprint) != 32 {
				return nil, errors.New("evidence: a version 6 signature without its issuer's fingerprint")
			}
		case s.IssuerKeyId != nil:
			ops.KeyId = *s.IssuerKeyId
		case len(s.IssuerFingerprint) == 20:
			ops.KeyId = binary.BigEndian.Uint64(s.IssuerFingerprint[12:])
		}
		if err := ops.Serialize(aw); err != nil {
			return nil, fmt.Errorf("evidence: one-pass signature: %v", err)
		}
	}
	lw, err := packet.SerializeLiteral(nopWriteCloser{aw}, sigs[0].SigType == packet.SigTypeBinary, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := lw.Write(content); err != nil {
		return nil, err
	}
	if err := lw.Close(); err != nil {
		return nil, err
	}
	for i := len(bins) - 1; i >= 0; i-- {
		if _, err := aw.Write(bins[i]); err != nil {
			return nil, err
		}
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// nopWriteCloser keeps SerializeLiteral from closing the armor.
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// checkSignedMessage reads msg back packet by packet: one-pass signatures,
// one literal data packet holding exactly content, then exactly the
// signature packets bins in the reverse order, and nothing else.
func checkSignedMessage(msg, content []byte, bins [][]byte) error {
	blk, err := armor.Decode(bytes.NewReader(msg))
	if err != nil {
		return err
	}
	bin, err := io.ReadAll(blk.Body)
	if err != nil {
		return err
	}
	r := bytes.NewReader(bin)
	var opsN int
	var body []byte
	var got [][]byte
	for r.Len() > 0 {
		start := len(bin) - r.Len()
		p, err := packet.Read(r)
		if err != nil {
			return err
		}
		switch p := p.(type) {
		case *packet.OnePassSignature:
			if body != nil || got != nil {
				return errors.New("a one-pass signature after the data")
			}
			opsN++
		case *packet.LiteralData:
			if body != nil {
				return errors.New("two literal data packets")
			}
			if body, err = io.ReadAll(p.Body); err != nil {
				return err
			}
		case *packet.Signature:
			got = append(got, bin[start:len(bin)-r.Len()])
		default:
			return fmt.Errorf("a %T packet", p)
		}
	}
	if !bytes.Equal(body, content) {
		return errors.New("the literal data is not the signed data")
	}
	if opsN != len(bins) || len(got) != len(bins) {
		return fmt.Errorf("%d one-pass signatures and %d signatures, want %d of each", opsN, len(got), len(bins))
	}
	for i := range bins {
		if !bytes.Equal(got[len(got)-1-i], bins[i]) {
			return fmt.Errorf("signature %d is not the one kept", i+1)
		}
	}
	return nil
}

// IsEvidence reports whether b is evidence as this package makes it
// (ccdir evidence v1), not a whole mail kept by an older ccdir.
func IsEvidence(b []byte) bool { return bytes.HasPrefix(b, []byte(evidenceMagic)) }
