package digest

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/mail"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// content is what a digest says, rebuilt identically on resume from the
// ledger serials recorded with it.
type content struct {
	snap        *directory.Snapshot
	changes     []export.Change
	prevSerial  int64
	created     time.Time
	attachments []export.Attachment
	keys        *keyring // at created
	usable      func(*directory.Contact) error
}

// content rebuilds what the digest made at created says; kr is used if it
// checks keys at created (nil: a new keyring).
func (j *Job) content(ctx context.Context, cfg Config, serial, prevSerial int64, created time.Time, kr *keyring) (*content, error) {
	snap, err := j.Store.SnapshotAt(ctx, serial)
	if err != nil {
		return nil, err
	}
	var prev *directory.Snapshot
	if prevSerial > 0 {
		if prev, err = j.Store.SnapshotAt(ctx, prevSerial); err != nil {
			return nil, err
		}
	}
	atts, err := export.Attachments(snap, cfg.Attach)
	if err != nil {
		return nil, err
	}
	if kr == nil || !kr.t.Equal(created) {
		kr = newKeyring(created)
	}
	kr.add(snap.Contacts)
	usable := kr.usable
	return &content{
		snap:        snap,
		changes:     export.Diff(prev, snap, created, usable),
		prevSerial:  prevSerial,
		created:     created,
		attachments: atts,
		keys:        kr,
		usable:      usable,
	}, nil
}

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
		Now: c.created, PrevSerial: c.prevSerial, Changes: c.changes, Recipient: rc, KeyNoteDays: cfg.KeyNoteDays, Usable: c.usable,
	}); err != nil {
		return nil, err
	}
	parts := []pgpmime.Part{{ContentType: "text/plain", Params: map[string]string{"charset": "utf-8"}, Body: body.Bytes()}}
	for _, a := range c.attachments {
		mt, params, err := mime.ParseMediaType(a.ContentType)
		if err != nil {
			return nil, fmt.Errorf("attachment %s: %w", a.Filename, err)
		}
		parts = append(parts, pgpmime.Part{ContentType: mt, Params: params, Filename: a.Filename, Body: a.Body})
	}
	inner, err := pgpmime.BuildInner(c.protected(), parts)
	if err != nil {
		return nil, err
	}
	return pgpmime.Sign(inner, j.Secret)
}
