package inbound

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

// evidenceMagic begins the evidence this package makes. Evidence is what
// a ledger entry made by signed mail keeps of the mail: exactly the
// signed data and the signature over it, so that anyone holding the
// member's public key can check it again, and nothing else (no header,
// no unsigned part: what anyone on the path can add is not kept). The
// signed data is, by form: the signed MIME part (PGP/MIME signed, also
// inside an encryption), the canonical text of a clear-signed block, or
// the literal data of a signed OpenPGP message (inline, or PGP/MIME
// encrypted and signed in one), whose signature is then checked as a
// detached one over it (an OpenPGP signature hashes only the literal
// data). The signature block holds the signer's signature first, then
// the other signatures of the mail that verified on their own (by the
// new key of a KEY-ROTATE). Layout:
//
//	ccdir evidence v1
//	form: pgpmime-signed
//	signature: N
//	content: M
//
//	<N bytes: the signature, armored><M bytes: the signed data>
const evidenceMagic = directory.EvidenceMagic

// evidence builds the evidence of a verified signature: the signer's
// signature first, then the others of sigs that verified (a KEY-ROTATE's
// new key), in one block.
func evidence(form string, res *sigResult, sigs []Signature) []byte {
	var sig bytes.Buffer
	w, err := armor.Encode(&sig, "PGP SIGNATURE", nil)
	if err != nil {
		return nil
	}
	w.Write(res.sigBin)
	for i := range sigs {
		if s := &sigs[i]; s.Verified() && !bytes.Equal(s.raw.bin, res.sigBin) {
			w.Write(s.raw.bin)
		}
	}
	if err := w.Close(); err != nil {
		return nil
	}
	sig.WriteByte('\n')
	var b bytes.Buffer
	b.Grow(len(evidenceMagic) + 64 + sig.Len() + len(res.content))
	b.WriteString(evidenceMagic)
	fmt.Fprintf(&b, "form: %s\nsignature: %d\ncontent: %d\n\n", form, sig.Len(), len(res.content))
	b.Write(sig.Bytes())
	b.Write(res.content)
	return b.Bytes()
}

// parseEvidence splits evidence made by evidence.
func parseEvidence(ev []byte) (form string, sig, content []byte, err error) {
	rest, ok := bytes.CutPrefix(ev, []byte(evidenceMagic))
	if !ok {
		return "", nil, nil, errors.New("not ccdir evidence")
	}
	field := func(name string) (string, error) {
		line, after, ok := bytes.Cut(rest, []byte{'\n'})
		v, ok2 := bytes.CutPrefix(line, []byte(name+": "))
		if !ok || !ok2 {
			return "", fmt.Errorf("evidence: no %s line", name)
		}
		rest = after
		return string(v), nil
	}
	size := func(name string) (int, error) {
		v, err := field(name)
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > len(ev) {
			return 0, fmt.Errorf("evidence: bad %s size %q", name, v)
		}
		return n, nil
	}
	if form, err = field("form"); err != nil {
		return "", nil, nil, err
	}
	ns, err := size("signature")
	if err != nil {
		return "", nil, nil, err
	}
	nc, err := size("content")
	if err != nil {
		return "", nil, nil, err
	}
	rest, ok = bytes.CutPrefix(rest, []byte{'\n'})
	if !ok || len(rest) != ns+nc {
		return "", nil, nil, errors.New("evidence: sizes do not match its length")
	}
	return form, rest[:ns], rest[ns:], nil
}

// EvidenceCheck re-checks the evidence kept with ledger entries. Secret,
// when set, is the directory key, which opens the whole mails an older
// ccdir kept encrypted to it; without it (an auditor's copy) those give
// ErrEvidenceSealed, which wraps directory.ErrUnchecked.
type EvidenceCheck struct {
	// Secret, if set, gives the directory key when a sealed mail needs
	// it (it may ask for a passphrase only then); an error says why a
	// sealed mail is not checked (wrapped in ErrEvidenceSealed).
	Secret func() (*keys.Secret, error)
}

// VerifyEvidence is EvidenceCheck{}.Verify.
func VerifyEvidence(evidence []byte, armoredKey string, at time.Time) error {
	return EvidenceCheck{}.Verify(evidence, armoredKey, at)
}

// Verify checks that evidence, kept with a ledger entry made by a
// member's signed mail at time at, is a statement signed by armoredKey,
// the key registered for the member then. It is a directory.EvidenceFunc,
// what `ccdir verify` re-verifies member-made entries with.
//
// Evidence kept whole by an older ccdir is the mail as received; it is
// read again as Process reads a mail (every form, the same limits), with
// only armoredKey registered and the clock at at, and it must carry a
// good signature by armoredKey. A mail that was encrypted to the
// directory key is opened with c.Secret; without it, ErrEvidenceSealed.
func (c EvidenceCheck) Verify(evidence []byte, armoredKey string, at time.Time) error {
	if !bytes.HasPrefix(evidence, []byte(evidenceMagic)) {
		_, err := c.mailSource(evidence, armoredKey, at)
		return err
	}
	_, sig, content, err := parseEvidence(evidence)
	if err != nil {
		return err
	}
	key, err := keys.ParsePublicOne([]byte(armoredKey))
	if err != nil {
		return fmt.Errorf("the registered key cannot be read: %v", err)
	}
	// The signer's signature is the first of the block, checked alone.
	sigs, err := keys.SplitSignatures(sig)
	if err != nil {
		return fmt.Errorf("evidence: signature: %v", err)
	}
	_, err = key.VerifyAt(content, sigs[0], at.Add(DefaultSkew))
	return err
}

var _ directory.EvidenceFunc = VerifyEvidence

// ID is the replay id of the statement kept as evidence by an entry of
// actor member:fpr (EvidenceSeen), of a whole mail an older ccdir kept
// too: that of the signature by armoredKey it carries, as Process
// recorded it. A sealed mail without c.Secret gives "" and
// ErrEvidenceSealed. It is a directory.EvidenceIDFunc.
func (c EvidenceCheck) ID(evidence []byte, fpr, armoredKey string, at time.Time) (string, error) {
	if !bytes.HasPrefix(evidence, []byte(evidenceMagic)) {
		src, err := c.mailSource(evidence, armoredKey, at)
		if err != nil {
			return "", err
		}
		evidence = containerOf(src)
	}
	return EvidenceSeen(evidence, fpr)
}

var _ directory.EvidenceIDFunc = EvidenceCheck{}.ID

// mailSource reads a whole mail kept as evidence (mailSource), opening
// it with c.Secret if it was encrypted to the directory key.
func (c EvidenceCheck) mailSource(raw []byte, armoredKey string, at time.Time) (*source, error) {
	src, err := mailSource(raw, armoredKey, at, nil)
	if !errors.Is(err, errNoDirectoryKey) {
		return src, err
	}
	if c.Secret == nil {
		return nil, ErrEvidenceSealed
	}
	sec, kerr := c.Secret()
	if kerr != nil {
		return nil, fmt.Errorf("%w (%v)", ErrEvidenceSealed, kerr)
	}
	return mailSource(raw, armoredKey, at, sec)
}

// containerOf is the evidence v1 a whole mail gives: what Process keeps.
func containerOf(src *source) []byte { return evidence(src.form, src.res, src.sigs) }

// EvidenceSeen returns the replay id (Accepted.Seen, what seen_signatures
// records) of the signed statement kept as evidence by an entry whose
// actor is member:fpr. Evidence kept whole by an older ccdir gives "" and
// no error (EvidenceCheck.ID reads it).
func EvidenceSeen(evidence []byte, fpr string) (string, error) {
	ids, err := evidenceIDs(evidence, fpr)
	if err != nil || len(ids) == 0 {
		return "", err
	}
	return ids[0], nil
}

// evidenceIDs returns the replay ids of the signatures kept in evidence:
// the signer's (actor fpr) first, then those of the other signatures
// that verified with it (Accepted.SeenAlso), known by the issuer
// fingerprint they carry (gpg and go-crypto sign with it, in the hashed
// area; a signature by a subkey, or without one, gives no id).
func evidenceIDs(evidence []byte, fpr string) ([]string, error) {
	if !bytes.HasPrefix(evidence, []byte(evidenceMagic)) {
		return nil, nil
	}
	_, sigArmored, content, err := parseEvidence(evidence)
	if err != nil {
		return nil, err
	}
	blk, err := armor.Decode(bytes.NewReader(sigArmored))
	if err != nil {
		return nil, fmt.Errorf("evidence: signature: %v", err)
	}
	r := packet.NewReader(blk.Body)
	var ids []string
	for {
		p, err := r.Next()
		if err == io.EOF && len(ids) > 0 {
			return ids, nil
		}
		if err != nil {
			return nil, fmt.Errorf("evidence: signature: %v", err)
		}
		sig, ok := p.(*packet.Signature)
		if !ok {
			return nil, errors.New("evidence: no signature packet")
		}
		switch {
		case len(ids) == 0:
			ids = append(ids, replayID(fpr, sig, content))
		case len(sig.IssuerFingerprint) > 0:
			ids = append(ids, replayID(fmt.Sprintf("%X", sig.IssuerFingerprint), sig, content))
		}
		if len(ids) > keys.MaxSignatures {
			return nil, errors.New("evidence: too many signatures")
		}
	}
}

// inLedger reports whether the statement whose replay id is digest,
// signed at at, is already the evidence of a ledger entry: a replay even
// if seen_signatures has lost it (anyone who can write the database can
// delete its rows, and the ledger keeps the signed text to replay). The
// entry of the first use is dated after the signature, less the skew
// (SeenRetention bounds any skew), so only entries since then are read.
func inLedger(ctx context.Context, tx *sql.Tx, digest string, at time.Time) (bool, error) {
	used := false
	err := directory.MemberEvidence(ctx, tx, at.Add(-SeenRetention), func(fpr string, ev []byte) bool {
		ids, err := evidenceIDs(ev, fpr)
		used = err == nil && slices.Contains(ids, digest)
		return !used
	})
	if err != nil {
		return false, fmt.Errorf("inbound: ledger evidence: %w", err)
	}
	return used, nil
}
