package liveness

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
)

// DefaultRemindDays are the days before a key's expiry its owner is
// reminded at (keys.remind_days).
var DefaultRemindDays = []int{60, 30, 7}

// KeyReminder is a key-expiry reminder queued, or a key that expired
// and so got none.
type KeyReminder struct {
	Email       string `json:"email"`
	Fingerprint string `json:"fingerprint"`
	Expires     string `json:"expires"` // RFC 3339
	// Days is the threshold of keys.remind_days the reminder is for
	// (none for an expired key).
	Days int `json:"days,omitempty"`
}

// remindDays returns the thresholds, largest first.
func (c Config) remindDays() []int {
	d := slices.Clone(c.RemindDays)
	if len(d) == 0 {
		d = slices.Clone(DefaultRemindDays)
	}
	slices.Sort(d)
	slices.Reverse(d)
	return slices.Compact(d)
}

// keyExpiry reminds c that its key expires, at the nearest threshold
// of Config.RemindDays it has reached and not yet been reminded at for
// this key and expiry; an expired key is listed in Result.Expired. The
// expiry is when the key stops working for the directory
// (keys.Public.UsableUntil, read from the registered key): the earlier
// of the primary key's and its encryption subkey's, not the primary
// key's alone that the directory records (directory.Key.Expires), so a
// refresh that extended only the primary key goes on being reminded of.
func (r *run) keyExpiry(ctx context.Context, c *directory.Contact) error {
	exp, ok := r.keys.UsableUntil(c.Key, r.now)
	if !ok || exp.IsZero() {
		return nil
	}
	exp = exp.UTC()
	fpr := strings.ToUpper(c.Key.Fingerprint)
	kr := KeyReminder{Email: c.Email, Fingerprint: fpr, Expires: exp.Format(time.RFC3339)}
	if !r.now.Before(exp) {
		r.res.Expired = append(r.res.Expired, kr)
		return nil
	}
	days := 0
	for _, d := range r.cfg.remindDays() {
		if exp.Sub(r.now) <= time.Duration(d)*24*time.Hour {
			days = d // the nearest reached, as the list is largest first
		}
	}
	if days == 0 {
		return nil
	}
	var n int
	if err := r.s.Store.DB().QueryRowContext(ctx, `SELECT count(*) FROM key_reminders WHERE fingerprint = ? AND expires = ? AND days <= ?`,
		fpr, kr.Expires, days).Scan(&n); err != nil || n > 0 {
		return err
	}
	kr.Days = days
	ref := fmt.Sprintf("key-expiry-%s-%s-%d", fpr, exp.Format("20060102T150405Z"), days)
	m, err := r.message(c, KindKeyAlert, ref, "key-expiry-"+shortHash(ref), keyExpirySubject(r.snap.Info, exp), keyExpiryBody(r.snap, c, exp, r.now))
	if r.skip(c, err) {
		return nil
	}
	if err != nil {
		return err
	}
	return r.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO key_reminders (fingerprint, expires, days, email, sent) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			fpr, kr.Expires, days, c.Email, formatTime(r.now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if _, err := r.s.Outbox.EnqueueTx(ctx, tx, m); err != nil {
			return err
		}
		r.res.KeyReminders = append(r.res.KeyReminders, kr)
		return nil
	})
}

func keyExpirySubject(info directory.Info, exp time.Time) string {
	return fmt.Sprintf("%s: your key expires on %s", info.Name, exp.Format(time.DateOnly))
}

func keyExpiryBody(snap *directory.Snapshot, c *directory.Contact, exp, now time.Time) string {
	var b strings.Builder
	left := int(exp.Sub(now).Hours() / 24)
	fmt.Fprintf(&b, "Hello %s,\n\n", c.Name)
	fmt.Fprintf(&b, "the OpenPGP key registered for you in %s,\n\n  %s\n\nexpires on %s (in %d days). After that the directory cannot\nencrypt to you: you get no alerts, digests or checks.\n\n",
		snap.Info.Name, strings.ToUpper(c.Key.Fingerprint), exp.Format("2006-01-02 15:04 UTC"), left)
	if prim, ok := c.Key.ExpiresAt(); !ok || prim.After(exp) {
		fmt.Fprintf(&b, "It is its encryption (or signing) subkey that expires then, not the\nprimary key: extend the subkeys too.\n\n")
	}
	fpr := strings.ToUpper(c.Key.Fingerprint)
	fmt.Fprintf(&b, "To refresh it, extend the expiry of the key and of its subkeys:\n\n  gpg --quick-set-expire %s 1y\n  gpg --quick-set-expire %s 1y '*'\n\n(the second command extends the subkeys, which the first leaves as they are),\nthen mail %s a message signed by this key whose text is\n\n", fpr, fpr, snap.Info.Address)
	fmt.Fprintf(&b, "DIRECTORY %s\nKEY-REFRESH\n\nwith the refreshed key attached (gpg --armor --export %s).\nA new key is not a refresh: use KEY-ROTATE for that.\n", snap.Info.Address, strings.ToUpper(c.Key.Fingerprint))
	return b.String()
}
