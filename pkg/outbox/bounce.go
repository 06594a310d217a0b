package outbox

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bounces. With Outbox.Bounce set to the directory's bounce address
// LOCAL-bounces@DOMAIN, every message goes out with the envelope sender
// LOCAL-bounces+ID-MAC@DOMAIN: ID is the message's id in the outbox and
// MAC a truncated HMAC, under a key derived from the outbox key, of the
// id and what the message is (kind, ref, recipient). A delivery status
// notification comes back to that address; Bounced checks the tag and
// marks the message it names bounced. Nobody without the outbox key can
// make a tag: a forged report names no message, and the tag a recipient
// sees in its own copy's Return-Path names that copy only.

// tagMACLen is how many hex digits of the HMAC a tag carries (80 bits:
// each guess costs a mail).
const tagMACLen = 20

// Errors of Bounced: the report is ignored, nothing changed.
var (
	// ErrNoTag: the address is not a tagged bounce address.
	ErrNoTag = errors.New("not a tagged bounce address")
	// ErrBadTag: the tag's MAC is not the outbox's for the message it names
	// (forged, truncated, or another message's id).
	ErrBadTag = errors.New("bounce tag fails authentication (forged or damaged)")
	// ErrNoMessage: the tag names no message in the outbox.
	ErrNoMessage = errors.New("bounce names no message of the outbox")
	// ErrNotSent: the message named was never handed to a transport.
	ErrNotSent = errors.New("bounce names a message that was not sent")
	// ErrAlreadyBounced: the message is bounced already (a second report).
	ErrAlreadyBounced = errors.New("bounce names a message already bounced")
)

// tagKey is the key of bounce tags: derived from the outbox key with a
// label of its own, so that one secret in the home serves both and a tag
// is never a row MAC.
func (o *Outbox) tagKey() []byte {
	h := hmac.New(sha256.New, o.Key)
	h.Write([]byte("ccdir bounce tag key v1"))
	return h.Sum(nil)
}

// tagMAC is the MAC part of the tag of message id.
func (o *Outbox) tagMAC(id int64, kind, ref, to string) string {
	h := hmac.New(sha256.New, o.tagKey())
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(id))
	h.Write(n[:])
	for _, s := range []string{kind, ref, strings.ToLower(to)} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))[:tagMACLen]
}

// BounceSender is the envelope sender of message id (kind, ref, to) for
// the bounce address base (LOCAL@DOMAIN): LOCAL+ID-MAC@DOMAIN.
func (o *Outbox) BounceSender(base string, id int64, kind, ref, to string) string {
	local, domain, _ := strings.Cut(base, "@")
	return local + "+" + strconv.FormatInt(id, 10) + "-" + o.tagMAC(id, kind, ref, to) + "@" + domain
}

// IsBounceAddress reports whether addr is the bounce address base or a
// +tag subaddress of it (compared case-insensitively).
func IsBounceAddress(base, addr string) bool {
	_, ok := bounceDetail(base, addr)
	return ok
}

// bounceDetail returns the detail of addr ("" for base itself) if addr
// is base or LOCAL+DETAIL@DOMAIN.
func bounceDetail(base, addr string) (string, bool) {
	if base == "" {
		return "", false
	}
	bl, bd, _ := strings.Cut(strings.ToLower(base), "@")
	al, ad, ok := strings.Cut(strings.ToLower(strings.TrimSpace(addr)), "@")
	if !ok || ad != bd {
		return "", false
	}
	if al == bl {
		return "", true
	}
	if d, ok := strings.CutPrefix(al, bl+"+"); ok {
		return d, true
	}
	return "", false
}

// parseTag splits a tag ID-MAC.
func parseTag(tag string) (int64, string, bool) {
	ids, mac, ok := strings.Cut(tag, "-")
	if !ok || ids == "" || len(ids) > 19 || len(mac) != tagMACLen {
		return 0, "", false
	}
	for _, c := range ids {
		if c < '0' || c > '9' {
			return 0, "", false
		}
	}
	id, err := strconv.ParseInt(ids, 10, 64)
	if err != nil || id <= 0 {
		return 0, "", false
	}
	return id, mac, true
}

// Bounced records that the message named by the tag of addr (the address
// a delivery status notification was sent to: base+ID-MAC@DOMAIN)
// bounced, with the remote diagnostic. It returns the message's row as it
// is now. A report that names no message it can vouch for changes
// nothing and returns ErrNoTag, ErrBadTag, ErrNoMessage, ErrNotSent or
// (with the row) ErrAlreadyBounced. Only the tag decides which message: what the report says of
// its recipient is not trusted.
func (o *Outbox) Bounced(ctx context.Context, base, addr, diagnostic string) (Row, error) {
	if err := o.checkKey(); err != nil {
		return Row{}, err
	}
	detail, ok := bounceDetail(base, addr)
	if !ok || detail == "" {
		return Row{}, ErrNoTag
	}
	id, mac, ok := parseTag(detail)
	if !ok {
		return Row{}, fmt.Errorf("%w: %q", ErrBadTag, detail)
	}
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return Row{}, fmt.Errorf("outbox: bounce: %w", err)
	}
	defer tx.Rollback()
	r, err := scanRow(tx.QueryRowContext(ctx, `SELECT `+listColumns+` FROM outbox WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Row{}, fmt.Errorf("%w (message %d)", ErrNoMessage, id)
	}
	if err != nil {
		return Row{}, fmt.Errorf("outbox: bounce: %w", err)
	}
	if !hmac.Equal([]byte(mac), []byte(o.tagMAC(r.ID, r.Kind, r.Ref, r.To))) {
		return Row{}, fmt.Errorf("%w (names message %d)", ErrBadTag, id)
	}
	switch {
	case r.Status == Bounced:
		return r, fmt.Errorf("%w (message %d)", ErrAlreadyBounced, id)
	case r.Status == Failed, r.Status == Queued && r.Attempts == 0:
		// Refused by the transport, or never tried: no transport took it,
		// so no report about it is true.
		return r, fmt.Errorf("%w (message %d is %s)", ErrNotSent, id, r.Status)
	}
	// Deferred or queued again after an attempt: the attempt may have
	// arrived (a timeout after the data); it bounced, so it is not retried.
	diagnostic = clip(diagnostic, 1000)
	if diagnostic == "" {
		diagnostic = "bounced (no diagnostic)"
	}
	now := o.now()
	if _, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'bounced', bounced_at = ?, last_error = ?,
		body = NULL, blob = NULL, tail = NULL WHERE id = ?`, now.UnixMilli(), diagnostic, id); err != nil {
		return Row{}, fmt.Errorf("outbox: bounce: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Row{}, fmt.Errorf("outbox: bounce: %w", err)
	}
	r.Status, r.BouncedAt, r.LastError = Bounced, fromMilli(now.UnixMilli()), diagnostic
	return r, nil
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xc0) == 0x80 {
		n--
	}
	return s[:n]
}

// BounceRun is the run of bounces that ends the mail to one recipient.
type BounceRun struct {
	To         string    `json:"to"`         // the recipient, as queued (the last bounced message's)
	Bounces    int       `json:"bounces"`    // bounced messages since the last one that was sent and did not bounce
	Last       time.Time `json:"last"`       // when the last bounce arrived
	Diagnostic string    `json:"diagnostic"` // the remote diagnostic of the last bounce
	// Times is when each bounce of the run arrived, oldest first: a
	// caller that knows of a later sign of life (a PONG) counts only
	// those after it.
	Times []time.Time `json:"-"`
}

// BounceRuns returns, for every recipient address whose latest messages
// bounced, the run of those bounces: how many messages to it bounced
// in a row since the last one that was sent and did not bounce (by
// queue order), with the last bounce's time and diagnostic. It is keyed
// by the address in lower case. Messages still waiting, and those that
// failed at the transport, neither count nor end a run; a message sent
// whose report has not come (yet) ends it. A contact is unreachable when
// its address's run reaches bounces.limit (DefaultBounceLimit); the run
// ends with the next message that is sent and does not bounce.
func BounceRuns(ctx context.Context, q RowsQueryer) (map[string]BounceRun, error) {
	rows, err := q.QueryContext(ctx, `SELECT rcpt, count(*), max(id), bounced_at, last_error,
		group_concat(bounced_at, ',' ORDER BY bounced_at) FROM outbox o
		WHERE status = 'bounced' AND id > coalesce((SELECT max(id) FROM outbox s
			WHERE lower(s.rcpt) = lower(o.rcpt) AND s.status = 'sent'), 0)
		GROUP BY lower(rcpt)`)
	if err != nil {
		return nil, fmt.Errorf("outbox: bounces: %w", err)
	}
	defer rows.Close()
	out := map[string]BounceRun{}
	for rows.Next() {
		var b BounceRun
		var id, at int64
		var times string
		if err := rows.Scan(&b.To, &b.Bounces, &id, &at, &b.Diagnostic, &times); err != nil {
			return nil, fmt.Errorf("outbox: bounces: %w", err)
		}
		b.Last = fromMilli(at)
		for _, f := range strings.Split(times, ",") {
			ms, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("outbox: bounces: time %q: %w", f, err)
			}
			b.Times = append(b.Times, fromMilli(ms))
		}
		out[strings.ToLower(b.To)] = b
	}
	return out, rows.Err()
}

// DefaultBounceLimit is how many bounces in a row make a contact
// unreachable (bounces.limit).
const DefaultBounceLimit = 3
