package digest

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// content is what a digest says, rebuilt identically on resume from the
// ledger serials recorded with it.
type content struct {
	snap        *directory.Snapshot
	changes     []export.Change
	prevSerial  int64
	prevHead    string
	created     time.Time
	attachments []export.Attachment
	keys        *keyring        // at created
	check       export.KeyCheck // the keys judged at created (keyring.check)
	// reach is the body's operational section: each contact's last
	// confirmed as it stood at created, so a resumed digest says the same.
	reach []export.Reach
}

// content is what the digest made at created says, from snap, the
// directory at its serial, and prev, the directory at the last digest's
// (nil if none), both read through checked; kr is used if it checks keys
// at created (nil: a new keyring).
func (j *Job) content(ctx context.Context, cfg Config, snap, prev *directory.Snapshot, created time.Time, kr *keyring) (*content, error) {
	atts, err := export.Attachments(snap, cfg.Attach)
	if err != nil {
		return nil, err
	}
	if atts, err = j.withChain(ctx, atts, snap, prev); err != nil {
		return nil, err
	}
	reach, err := reachability(ctx, j.Store.DB(), cfg, snap, created)
	if err != nil {
		return nil, err
	}
	if kr == nil || !kr.t.Equal(created) {
		kr = newKeyring(created)
	}
	kr.add(snap.Contacts)
	check := kr.check()
	var prevSerial int64
	var prevHead string
	if prev != nil {
		prevSerial, prevHead = prev.Head.Serial, prev.Head.Hash
	}
	return &content{
		snap:        snap,
		changes:     export.Diff(prev, snap, created, check),
		prevSerial:  prevSerial,
		prevHead:    prevHead,
		created:     created,
		attachments: atts,
		keys:        kr,
		check:       check,
		reach:       reach,
	}, nil
}

// withChain gives the directory.json of atts, if any, its chain
// (digestJSON) and puts its detached signature, directory.json.asc,
// right after it.
func (j *Job) withChain(ctx context.Context, atts []export.Attachment, snap, prev *directory.Snapshot) ([]export.Attachment, error) {
	for i, a := range atts {
		if a.Name != "json" {
			continue
		}
		body, sig, err := j.digestJSON(ctx, snap, prev)
		if err != nil {
			return nil, err
		}
		atts[i].Body = body
		return slices.Insert(atts, i+1, export.Attachment{Name: "json-signature", Filename: JSONSignatureName,
			ContentType: "application/pgp-signature", Body: sig}), nil
	}
	return atts, nil
}

// JSONSignatureName is the attachment of a digest that holds the
// armored detached signature of its directory.json.
const JSONSignatureName = "directory.json.asc"

// reachability is each contact's last confirmed (liveness.ConfirmedAt, at
// the digest's date), in liveness's words, for the body's operational
// section. It is not signed state: the signed attachments never hold it.
func reachability(ctx context.Context, q liveness.Queryer, cfg Config, snap *directory.Snapshot, at time.Time) ([]export.Reach, error) {
	conf, err := liveness.ConfirmedAt(ctx, q, snap.Contacts, at)
	if err != nil {
		return nil, fmt.Errorf("digest: last confirmed: %w", err)
	}
	out := make([]export.Reach, 0, len(snap.Contacts))
	for _, c := range snap.Contacts {
		out = append(out, export.Reach{Name: c.Name, Email: c.Email, Text: liveness.ConfirmedText(conf[c.Email], cfg.PingInterval, at)})
	}
	return out, nil
}

// checked reads the directory as its signed ledger says it is, and as it
// was at the entries in at (directory.Store.CheckedAt, one replay, with
// the directory key): a digest, sent, resumed, previewed or asked for by
// mail, never shows rows written into the database without the directory
// key; tables or a ledger that disagree give a *directory.TamperError.
// An At with serial 0 (no last digest) gives a nil snapshot.
func (j *Job) checked(ctx context.Context, at ...directory.At) (*directory.Snapshot, []*directory.Snapshot, error) {
	v, err := j.Secret.Public().NewVerifier(j.now())
	if err != nil {
		return nil, nil, fmt.Errorf("digest: directory key: %w", err)
	}
	var ask []directory.At
	for _, a := range at {
		if a.Serial > 0 {
			ask = append(ask, a)
		}
	}
	now, got, err := j.Store.CheckedAt(ctx, j.Secret.Fingerprint(), v.Verify, ask...)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*directory.Snapshot, len(at))
	for i, a := range at {
		if a.Serial > 0 {
			out[i], got = got[0], got[1:]
		}
	}
	return now, out, nil
}

// DirectoryKeyFile is the name of the directory's public key attached
// to every digest.
const DirectoryKeyFile = export.DirectoryKeyFile

// protected are the real headers of a digest, the same for everyone.
func (c *content) protected() pgpmime.Protected {
	info := c.snap.Info
	from := mail.Address{Name: info.Name, Address: info.Address}
	return pgpmime.Protected{
		From:    from,
		ToGroup: info.Name + " contacts",
		Subject: fmt.Sprintf("%s: digest, serial %d, %s", info.Name, c.snap.Head.Serial, c.created.Format("2006-01-02")),
		Date:    c.created,
	}
}

// signedFor builds and signs the inner entity for one recipient note;
// recipients with the same note share it.
func (j *Job) signedFor(c *content, cfg Config, rc *directory.Contact) (*pgpmime.Signed, error) {
	var body bytes.Buffer
	if err := export.WriteBody(&body, c.snap, export.BodyOptions{
		Now: c.created, PrevSerial: c.prevSerial, PrevHead: c.prevHead, Changes: c.changes, Recipient: rc, KeyNoteDays: cfg.KeyNoteDays, Keys: c.check,
		Reachability: c.reach,
	}); err != nil {
		return nil, err
	}
	text := body.Bytes()
	if n := cfg.KeyChange.Notice(c.created); n != "" {
		text = append([]byte(n), text...) // the rekey first (ccdir rekey)
	}
	parts := []pgpmime.Part{{ContentType: "text/plain", Params: map[string]string{"charset": "utf-8"}, Body: text}}
	for _, a := range c.attachments {
		mt, params, err := mime.ParseMediaType(a.ContentType)
		if err != nil {
			return nil, fmt.Errorf("attachment %s: %w", a.Filename, err)
		}
		parts = append(parts, pgpmime.Part{ContentType: mt, Params: params, Filename: a.Filename, Body: a.Body})
	}
	if k := c.snap.Info.PublicKey; strings.TrimSpace(k) != "" {
		// The directory's own key, as the signed ledger records it (a
		// user ID for each of its addresses): members who import it
		// find it by the list's address too. After a rekey, while it is
		// told, the old key (with its revocation, if revoked) beside it.
		body := []byte(k)
		if cfg.KeyChange.Told(c.created) {
			body = cfg.KeyChange.Keys
		}
		parts = append(parts, pgpmime.Part{ContentType: "application/pgp-keys", Filename: DirectoryKeyFile, Body: body})
	}
	inner, err := pgpmime.BuildInner(c.protected(), parts)
	if err != nil {
		return nil, err
	}
	return pgpmime.Sign(inner, j.Secret)
}
