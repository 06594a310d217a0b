package mailcmd

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/liveness"
)

// keyRefresh takes a newer copy of the sender's registered key (the same
// fingerprint: a later expiry, new self-signatures or subkeys), merged
// into the registered copy by keys.Public.Refresh, as a key.refresh
// entry that takes effect at once: it is not a key change (replies go to
// the same key), but it is announced like every change of an entry. A
// copy that is not newer changes nothing and says so; another key is
// refused (that is KEY-ROTATE).
func (r *run) keyRefresh() (string, error) {
	me := r.self()
	if me.Key == nil {
		return "", refuse("you have no key registered to refresh")
	}
	cur := me.Key.Fingerprint
	r.readAttached()
	var same, other []*keys.Public
	for _, k := range r.attached {
		if strings.EqualFold(k.Fingerprint, cur) {
			same = append(same, k)
		} else {
			other = append(other, k)
		}
	}
	switch {
	case len(same) == 0 && len(other) > 0:
		return "", refuse("attached key %s is not yours; to change to it, use KEY-ROTATE", other[0].Fingerprint)
	case len(same) == 0:
		msg := fmt.Sprintf("no key is attached; attach a newer copy of your key (gpg --export --armor %s)", cur)
		if len(r.attachErrs) > 0 {
			msg += " (" + strings.Join(r.attachErrs, "; ") + ")"
		}
		return "", refuse("%s", msg)
	}
	reg, err := keys.ParsePublicOne([]byte(me.Key.Armored))
	if err != nil {
		return "", fmt.Errorf("mailcmd: the registered key of %s: %w", me.Email, err)
	}
	merged := reg
	for _, k := range same {
		m, err := merged.Refresh(k)
		if errors.Is(err, keys.ErrNotNewer) {
			continue
		}
		if err != nil {
			return "", refuse("attached copy cannot be merged: %v", err)
		}
		merged = m
	}
	if merged == reg {
		return fmt.Sprintf("unchanged: the attached copy of your key %s is not newer than the registered one (%s)", cur, liveness.KeyText(me.Key)), nil
	}
	// A revocation by the key's own primary key is always taken (it can
	// only disable); any other refresh must leave a usable key.
	rk, err := export.RefreshedKey(reg, merged, me.Email, false, r.now)
	if err != nil {
		var ke *export.KeyError
		if errors.As(err, &ke) {
			return "", refuse("refreshed key cannot be used: %v", ke.Err)
		}
		return "", err
	}
	before := cloneContact(*me)
	after, err := r.tx.RefreshKey(me.Email, rk.Key)
	if errors.Is(err, directory.ErrUnchanged) {
		return fmt.Sprintf("unchanged: the registered copy of your key %s is the same", cur), nil
	}
	if err != nil {
		return "", err
	}
	r.put(after)
	line := fmt.Sprintf("key %s refreshed: %s", cur, refreshSummary(before.Key, after.Key, reg, merged))
	warning := ""
	if len(rk.Revoked) > 0 {
		line = revokedLine(me.Email, cur, rk)
	}
	if rk.Unusable == nil {
		warning = usableWarning(reg, merged, after.Key, cur, r.now)
	}
	// The notice to the contact goes to the refreshed copy (the same
	// key): never to a copy its owner has revoked since.
	r.announce(&after, nil, liveness.RoleTLDs(&before, nil), []string{line})
	if warning != "" {
		return r.did([]string{line}) + "\n" + warning, nil
	}
	return r.did([]string{line}), nil
}

// usableWarning is what the reply adds to a refresh that is taken but
// leaves the key stopping to work (keys.Public.UsableUntil, as the
// expiry reminders read it) before its primary key expires, which the
// directory records (k: a subkey not extended, gpg --quick-set-expire
// FPR 1y without '*'), or no later than the registered copy reg did:
// the reminders would go on. "" when the refresh extended what stops
// the key, or when nothing does.
func usableWarning(reg, merged *keys.Public, k *directory.Key, fpr string, now time.Time) string {
	until := merged.UsableUntil(now)
	if until.IsZero() {
		return ""
	}
	primary, expires := k.ExpiresAt()
	bySubkey := !expires || until.Before(primary)
	prev := reg.UsableUntil(now)
	noLater := prev.IsZero() || !until.After(prev)
	day := until.UTC().Format(time.DateOnly)
	switch {
	case bySubkey:
		// Which capability stops first: the key checked just after.
		what := "subkeys"
		switch err := merged.Check(until.Add(time.Second)); {
		case errors.Is(err, keys.ErrNoEncryptionKey):
			what = "encryption subkey"
		case errors.Is(err, keys.ErrNoSigningKey):
			what = "signing subkey"
		}
		return fmt.Sprintf("warning: your %s still expires on %s: run gpg --quick-set-expire %s 1y '*' and send KEY-REFRESH again", what, day, fpr)
	case noLater:
		return fmt.Sprintf("warning: your key still expires on %s, no later than the registered copy: run gpg --quick-set-expire %s 1y, then gpg --quick-set-expire %s 1y '*', and send KEY-REFRESH again", day, fpr, fpr)
	}
	return ""
}

// revokedLine says what a refresh with revocations did: the key (or a
// subkey) revoked by its owner, and, when it cannot be used any more,
// that the contact gets nothing encrypted and cannot sign commands until
// the operator registers a new key.
func revokedLine(email, fpr string, rk *export.Refreshed) string {
	what := make([]string, len(rk.Revoked))
	for i, rv := range rk.Revoked {
		what[i] = rv.String()
	}
	if rk.Unusable == nil {
		return fmt.Sprintf("key %s refreshed: %s; it can still be used", fpr, strings.Join(what, "; "))
	}
	why := ""
	if rk.Revoked[0].Subkey != "" {
		why = " (" + keys.Reason(rk.Unusable) + ")"
	}
	return fmt.Sprintf("key %s %s by its owner%s: %s gets nothing encrypted from the directory, and mail signed by that key is refused, until the operator registers a new key",
		fpr, strings.Join(what, "; "), why, email)
}

// refreshSummary says what a refresh changed: the expiry, the subkeys.
func refreshSummary(a, b *directory.Key, pa, pb *keys.Public) string {
	exp := func(k *directory.Key) string {
		if t, ok := k.ExpiresAt(); ok {
			return "expires " + t.UTC().Format(time.DateOnly)
		}
		return "never expires"
	}
	var parts []string
	if ea, eb := exp(a), exp(b); ea != eb {
		parts = append(parts, fmt.Sprintf("%s (was: %s)", eb, strings.TrimPrefix(ea, "expires ")))
	} else {
		parts = append(parts, eb)
	}
	if na, nb := len(pa.Entity().Subkeys), len(pb.Entity().Subkeys); na != nb {
		parts = append(parts, fmt.Sprintf("%d subkeys (was %d)", nb, na))
	}
	return strings.Join(parts, ", ")
}

// sameKeyHint turns KEY-ROTATE's "no new key" refusal, when the only key
// attached for the sender is its registered one, into the pointer to
// KEY-REFRESH (a newer copy of the same key is not a key change).
func (r *run) sameKeyHint(err error, cur string) error {
	var ref *refusal
	if cur == "" || !errors.As(err, &ref) {
		return err
	}
	same := false
	for _, k := range r.attached {
		switch {
		case strings.EqualFold(k.Fingerprint, cur):
			same = true
		case k.HasEmail(r.email):
			return err // another key for the sender: not this case
		}
	}
	if !same {
		return err
	}
	return refuse("key %s is your current key; for a newer copy of it, send KEY-REFRESH", cur)
}
