package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReleasedHomeErase: on a home made by the released ccdir (ledger
// entries of version 1, a digest and a reply sent to Ana), contact erase
// migrates it, turns Ana's contact.add into a tombstone, drops her mail
// and digest records, and leaves none of her data in the file; verify is
// ok, names the tombstone, and Bruno is as he was.
func TestReleasedHomeErase(t *testing.T) {
	dump, err := os.ReadFile(filepath.Join("testdata", "released", "directory.sql"))
	if err != nil {
		t.Fatal(err)
	}
	home := releasedHome(t, string(dump))
	ccdir := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"--home", home}, args...), nil, &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	must := func(args ...string) string {
		t.Helper()
		code, out := ccdir(args...)
		if code != 0 {
			t.Fatalf("ccdir %s: exit %d, %s", strings.Join(args, " "), code, out)
		}
		return out
	}
	must("outbox", "list") // migrates
	bruno := must("contact", "show", "bruno@nic.br")
	// Ana in every operational table that can hold a person (as their
	// owners write them), beside Bruno.
	ana := "A429383F7EE5FF2DC5560DB25119BA402E5C652D"
	sqlExec(t, filepath.Join(home, dbName), `
INSERT INTO alerts (id, author_email, author_fpr, tlp, created) VALUES ('a1', 'ana@dns.pt', '`+ana+`', 'amber', 1), ('b1', 'bruno@nic.br', 'B0', 'amber', 2);
INSERT INTO alert_recipients (alert_id, email, tlds, state) VALUES ('a1', 'bruno@nic.br', 'br', 'queued'), ('b1', 'ana@dns.pt', 'pt', 'queued'), ('b1', 'bruno@nic.br', 'br', 'queued');
INSERT INTO pings (email, fingerprint, nonce, token_hash, sent, expires) VALUES ('ana@dns.pt', '`+ana+`', 'n1', 't1', '2026-12-01T00:00:00Z', '2026-12-08T00:00:00Z');
INSERT INTO key_reminders (fingerprint, expires, days, email, sent) VALUES ('`+ana+`', '2027-01-01T00:00:00Z', 30, 'ana@dns.pt', '2026-12-01T00:00:00Z');
INSERT INTO pending_changes (id, contact_id, email, fingerprint, kind, new_email, actor, requested, due, state)
	VALUES ('chg-1', 4, 'ana@dns.pt', '`+ana+`', 'email', 'ana.sousa@dns.pt', 'operator', '2026-12-01T00:00:00Z', '2026-12-04T00:00:00Z', 'cancelled');
INSERT INTO inbound_log (at, sender, recipient, route, signer, verdict) VALUES (1, 'ana@dns.pt', 'ccdir@tldops.example', 'commands', '`+ana+`', 'accepted'),
	(2, 'bruno@nic.br', 'ccdir@tldops.example', 'commands', '', 'refused');
`)
	out := must("contact", "erase", "ana@dns.pt", "--reason", "GDPR art. 17 request 7")
	if !strings.Contains(out, "erased ana@dns.pt, ana.sousa@dns.pt (contact 4) in entry 6: 1 entries redacted") ||
		!strings.Contains(out, "deleted: pings, reminders and pending changes 3, outbox 2, digest recipients 1, inbound log 1, alerts 3\n") {
		t.Fatalf("erase: %s", out)
	}
	db := filepath.Join(home, dbName)
	if got := queryString(t, db, `SELECT group_concat(alert_id || ':' || email, ' ') FROM (SELECT * FROM alert_recipients ORDER BY alert_id, email)`); got != "b1:bruno@nic.br" {
		t.Fatalf("alert recipients left: %s", got)
	}
	if got := queryString(t, db, `SELECT group_concat(sender) FROM inbound_log`); got != "bruno@nic.br" {
		t.Fatalf("inbound log left: %s", got)
	}
	out = must("verify")
	if !strings.Contains(out, "ok serial 6 ") || !strings.Contains(out, "entry 4 redacted by entry 6 (erase: GDPR art. 17 request 7)") {
		t.Fatalf("verify: %s", out)
	}
	if got := must("contact", "show", "bruno@nic.br"); got != bruno {
		t.Fatalf("bruno after the erasure:\n%s\nwant\n%s", got, bruno)
	}
	if code, _ := ccdir("contact", "show", "ana@dns.pt"); code == 0 {
		t.Fatal("Ana is still shown")
	}
	if v := queryString(t, db, `SELECT version || ' ' || length(payload) || ' ' || hash FROM ledger WHERE seq = 4`); !strings.HasPrefix(v, "1 0 ") {
		t.Fatalf("entry 4: %s", v)
	}
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(filepath.Join(home, dbName) + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, s := range []string{"ana@dns.pt", "ana.sousa@dns.pt", "Ana Sousa", "+351212345678", ana} {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s%s still holds %q", dbName, suffix, s)
			}
		}
	}
	// A change after it, and a digest: the replay from the tombstone on
	// holds.
	must("contact", "update", "bruno@nic.br", "--lang", "pt")
	must("verify")
}

// sqlExec runs statements on the database at path, as a test sets up rows.
func sqlExec(t *testing.T, path, stmts string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmts); err != nil {
		t.Fatal(err)
	}
}
