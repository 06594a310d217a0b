package receive

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/mailcmd"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/relay"
	"github.com/ccdir/ccdir/pkg/smtpd"
)

// What Receive returns is what package smtpd turns into a reply.
var (
	_ smtpd.Status = (*inbound.Refusal)(nil)
	_ smtpd.Status = (*Deferred)(nil)
)

func TestRoute(t *testing.T) {
	withList := Config{Directory: directory.Info{Address: dirAddr, ListAddress: listAddr}}
	noList := Config{Directory: directory.Info{Address: dirAddr}}
	for _, tc := range []struct {
		cfg  Config
		addr string
		want Route
	}{
		{withList, dirAddr, Commands},
		{withList, "CCDIR@Directory.Example", Commands},
		{withList, " " + dirAddr + " ", Commands},
		{withList, listAddr, List},
		{withList, "Alerts@directory.example", List},
		{withList, keyAddr, SendKey},
		{withList, "CCDIR-SENDKEY@directory.example", SendKey},
		{withList, "postmaster@directory.example", NotOurs},
		{withList, "ccdir@other.example", NotOurs},
		{withList, "", NotOurs},
		{noList, listAddr, NotOurs},
		{noList, "", NotOurs},
		{noList, keyAddr, SendKey},
		{withList, bounceAddr, Bounce},
		{withList, "ccdir-bounces+17-0123456789abcdef0123@directory.example", Bounce},
		{withList, "CCDIR-Bounces+x@Directory.Example", Bounce},
		{withList, "ccdir-bounces@other.example", NotOurs},
		{withList, "ccdir-bouncesx@directory.example", NotOurs},
		{Config{Directory: directory.Info{Address: dirAddr}, Bounces: "return@mx.example"}, "return+1-ab@mx.example", Bounce},
	} {
		if got := tc.cfg.Route(tc.addr); got != tc.want {
			t.Errorf("Route(%q) with list %q = %v, want %v", tc.addr, tc.cfg.Directory.ListAddress, got, tc.want)
		}
	}
	if got, want := strings.Join(withList.Addresses(), " "), keyAddr+" "+dirAddr+" "+bounceAddr+" "+listAddr; got != want {
		t.Errorf("Addresses() = %s, want %s", got, want)
	}
	if got, want := strings.Join(noList.Addresses(), " "), keyAddr+" "+dirAddr+" "+bounceAddr; got != want {
		t.Errorf("Addresses() without a list = %s, want %s", got, want)
	}
}

// Each address gets its own service: commands answered with a reply, a
// list post relayed, a key request answered with the key, any other
// address dropped unread; a message with no envelope recipient is for
// the directory's address.
func TestReceiveRoutes(t *testing.T) {
	w := newWorld(t)

	if err := w.receive(anaAddr, []string{"CCDIR@directory.example"}, w.signed(dirAddr, "c1@dns.pt", "DIRECTORY "+dirAddr+"\nWHOAMI\n")); err != nil {
		t.Fatalf("command mail: %v", err)
	}
	expectLines(t, w.lines(), `^ccdir: command mail from ana@dns\.pt \(key `+w.ana.Fingerprint()+`\): 1 commands, 0 ledger entries, reply queued$`)
	if n := len(w.queued(outbox.KindReply)); n != 1 {
		t.Errorf("%d replies queued, want 1", n)
	}

	if err := w.receive(anaAddr, nil, w.signed(dirAddr, "c2@dns.pt", "DIRECTORY "+dirAddr+"\nWHOAMI\n")); err != nil {
		t.Fatalf("command mail without recipient: %v", err)
	}
	expectLines(t, w.lines(), `^ccdir: command mail from ana@dns\.pt `)

	if err := w.receive(anaAddr, []string{listAddr}, w.signed(listAddr, "p1@dns.pt", "DIRECTORY "+listAddr+"\n\nTLP:AMBER\nA resolver is down.\n")); err != nil {
		t.Fatalf("list post: %v", err)
	}
	expectLines(t, w.lines(), `^ccdir: list post from ana@dns\.pt \(key `+w.ana.Fingerprint()+`\): alert `)
	if n := len(w.queued(outbox.KindAlert)); n != 1 {
		t.Errorf("%d list copies queued, want 1 (to the author, the one member)", n)
	}

	if err := w.receive("someone@example.org", []string{keyAddr}, w.mail("someone@example.org", keyAddr, "k1@example.org", "key?\n")); err != nil {
		t.Fatalf("key request: %v", err)
	}
	expectLines(t, w.lines(), `^ccdir: sent the directory key to someone@example\.org$`)
	if n := len(w.queued(KindSendKey)); n != 1 {
		t.Errorf("%d key mails queued, want 1", n)
	}

	before := len(w.queued(""))
	for _, to := range []string{"postmaster@directory.example", "ccdir@elsewhere.example"} {
		if err := w.receive(anaAddr, []string{to}, w.signed(dirAddr, "x@dns.pt", "DIRECTORY "+dirAddr+"\nWHOAMI\n")); err != nil {
			t.Errorf("mail for %s: %v, want nil (dropped)", to, err)
		}
		expectLines(t, w.lines(), `^ccdir: dropped mail for "`+regexp.QuoteMeta(to)+`": not an address of this directory$`)
	}
	if n := len(w.queued("")); n != before {
		t.Errorf("mail for foreign addresses queued %d messages", n-before)
	}
}

// Refused, dropped and deferred mail end to end: each gets its reply and
// exit code, one log line, and nothing is queued but the answer to a
// registered signer who can fix the mail (TestRefusalsTold).
func TestReceiveRefusals(t *testing.T) {
	w := newWorld(t)
	whoami := w.signed(dirAddr, "w1@dns.pt", "DIRECTORY "+dirAddr+"\nWHOAMI\n")
	if err := w.receive(anaAddr, []string{dirAddr}, whoami); err != nil {
		t.Fatal(err)
	}
	w.lines()
	queued := len(w.queued(""))

	for _, tc := range []struct {
		name     string
		from, to string
		msg      []byte
		code     int // 0: taken (nil)
		enhanced [3]int
		text     string
		log      string
	}{
		{"unsigned", anaAddr, dirAddr, w.mail(anaAddr, dirAddr, "u1@dns.pt", "DIRECTORY "+dirAddr+"\nWHOAMI\n"),
			550, [3]int{5, 7, 1}, "the message is not signed with OpenPGP (use PGP/MIME or clear-signed text)",
			`^ccdir: refused mail from "ana@dns\.pt": the message is not signed with OpenPGP`},
		{"replay", anaAddr, dirAddr, whoami,
			550, [3]int{5, 7, 1}, "this signed message was already used; sign and send the commands again",
			`^ccdir: refused mail from "ana@dns\.pt": this signed message was already used`},
		{"bound to the list, sent to the directory", anaAddr, dirAddr, w.signed(dirAddr, "b1@dns.pt", "DIRECTORY "+listAddr+"\nWHOAMI\n"),
			550, [3]int{5, 7, 1}, "the signed content does not name this directory: the signed text must contain the line DIRECTORY " + dirAddr + " among the commands",
			`^ccdir: refused mail from "ana@dns\.pt": the signed content does not name this directory.*; told ana@dns\.pt$`},
		{"bounce", "", dirAddr, w.signed(dirAddr, "n1@dns.pt", "DIRECTORY "+dirAddr+"\nWHOAMI\n"),
			0, [3]int{}, "", `^ccdir: dropped mail from "": bounce \(empty envelope sender\): not answered$`},
		{"auto-reply", anaAddr, dirAddr, w.mail(anaAddr, dirAddr, "a1@dns.pt", "away\n", "Auto-Submitted: auto-replied"),
			0, [3]int{}, "", `^ccdir: dropped mail from "ana@dns\.pt": automatic message`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := w.receive(tc.from, []string{tc.to}, tc.msg)
			expectLines(t, w.lines(), tc.log)
			if ExitCode(err) != 0 {
				t.Errorf("ExitCode = %d, want 0: an MTA must not bounce it", ExitCode(err))
			}
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("Receive = %v, want nil", err)
				}
				return
			}
			var st smtpd.Status
			if !errors.As(err, &st) {
				t.Fatalf("Receive = %v (%T), want an error with an SMTP status", err, err)
			}
			code, enh, text := st.SMTPStatus()
			if code != tc.code || enh != tc.enhanced || text != tc.text {
				t.Errorf("SMTPStatus = %d %v %q, want %d %v %q", code, enh, text, tc.code, tc.enhanced, tc.text)
			}
		})
	}
	if n := len(w.queued("")); n != queued+1 {
		t.Errorf("refused mail queued %d messages, want 1 (the answer to the unbound mail)", n-queued)
	}
}

// A read error is ours: 451 and exit 75, and the cause goes to the log
// and into the error (process prints it), never to the peer.
func TestReceiveReadError(t *testing.T) {
	w := newWorld(t)
	err := w.rc.Receive(w.ctx, Envelope{From: anaAddr, To: []string{dirAddr}}, io.MultiReader(strings.NewReader("From: a\r\n"), failReader{}))
	expectLines(t, w.lines(), `^ccdir: mail from "ana@dns\.pt": inbound: read message: disk on fire$`)
	checkDeferred(t, err, "disk on fire")
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func checkDeferred(t *testing.T, err error, cause string) {
	t.Helper()
	var d *Deferred
	if !errors.As(err, &d) {
		t.Fatalf("err = %v (%T), want *Deferred", err, err)
	}
	if code, enh, text := d.SMTPStatus(); code != 451 || enh != [3]int{4, 3, 0} || strings.Contains(text, cause) {
		t.Errorf("SMTPStatus = %d %v %q, want 451 4.3.0 without the cause", code, enh, text)
	}
	if !strings.Contains(err.Error(), cause) {
		t.Errorf("Error() = %q, want the cause %q", err.Error(), cause)
	}
	if ExitCode(err) != 75 {
		t.Errorf("ExitCode = %d, want 75", ExitCode(err))
	}
}

// settle maps every outcome the pipeline and the services report to one
// result, SMTP reply and exit code, with one log line each.
func TestSettle(t *testing.T) {
	w := newWorld(t)
	acc := &inbound.Accepted{Key: w.ana.Public()}
	fpr := w.ana.Fingerprint()
	temp := &inbound.Refusal{Code: 451, Enhanced: [3]int{4, 7, 0}, Reason: "try later", Temporary: true}
	perm := &inbound.Refusal{Code: 554, Enhanced: [3]int{5, 7, 7}, Reason: "broken", Detail: "key 1234\n"}
	drop := &inbound.Refusal{Code: 250, Enhanced: [3]int{2, 6, 0}, Reason: "a loop", Drop: true}
	for _, tc := range []struct {
		name     string
		what     string
		acc      *inbound.Accepted
		err      error
		nilOK    bool
		code     int
		enhanced [3]int
		text     string
		exit     int
		log      string
	}{
		{"drop", "mail", nil, drop, true, 0, [3]int{}, "", 0, `^ccdir: dropped mail from "x@y": a loop$`},
		{"temporary refusal", "mail", nil, temp, false, 451, [3]int{4, 7, 0}, "try later", 75, `^ccdir: deferred mail from "x@y": try later$`},
		{"refusal", "mail", nil, perm, false, 554, [3]int{5, 7, 7}, "broken", 0, `^ccdir: refused mail from "x@y": broken \("key 1234\\n"\); not told: not a refusal of a registered signer$`},
		{"wrapped refusal", "mail", nil, fmt.Errorf("check: %w", perm), false, 554, [3]int{5, 7, 7}, "broken", 0, `^ccdir: refused mail from "x@y": broken`},
		{"replay of a command mail", "mail", acc, fmt.Errorf("mailcmd: %w", inbound.ErrReplay), false, 550, [3]int{5, 7, 1}, "this signed message was already used", 0,
			`^ccdir: refused mail from "x@y" signed by ` + fpr + `: replay$`},
		{"replay of a list post", "list post", acc, fmt.Errorf("relay: %w", inbound.ErrReplay), false, 550, [3]int{5, 7, 1}, "this signed message was already used", 0,
			`^ccdir: refused list post from "x@y" signed by ` + fpr + `: replay$`},
		{"command signer gone", "mail", acc, mailcmd.ErrUnknownSender, false, 550, [3]int{5, 7, 1}, inbound.SignatureRefused, 0,
			`^ccdir: refused mail from "x@y": signer ` + fpr + ` is no longer registered$`},
		{"list signer gone", "list post", acc, relay.ErrUnknownSender, false, 550, [3]int{5, 7, 1}, inbound.SignatureRefused, 0,
			`^ccdir: refused list post from "x@y": signer ` + fpr + ` is no longer registered$`},
		{"service failure", "list post", acc, errors.New("database is locked"), false, 451, [3]int{4, 3, 0}, "temporary failure, try again later", 75,
			`^ccdir: list post from "x@y" signed by ` + fpr + `: database is locked$`},
		{"storage busy", "mail", acc, fmt.Errorf("outbox: %w", sqlite3.Error{Code: sqlite3.ErrBusy}), false, 451, [3]int{4, 3, 0}, "temporary failure, try again later", 75,
			`^ccdir: deferred mail from "x@y" signed by ` + fpr + `: outbox: database is locked$`},
		{"pipeline failure", "mail", nil, errors.New("database is locked"), false, 451, [3]int{4, 3, 0}, "temporary failure, try again later", 75,
			`^ccdir: mail from "x@y": database is locked$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := w.rc.settle(w.ctx, tc.what, `"x@y"`, tc.acc, tc.err)
			expectLines(t, w.lines(), tc.log)
			if got := ExitCode(err); got != tc.exit {
				t.Errorf("ExitCode = %d, want %d", got, tc.exit)
			}
			if tc.nilOK {
				if err != nil {
					t.Errorf("settle = %v, want nil", err)
				}
				return
			}
			var st smtpd.Status
			if !errors.As(err, &st) {
				t.Fatalf("settle = %v (%T), want an SMTP status", err, err)
			}
			if code, enh, text := st.SMTPStatus(); code != tc.code || enh != tc.enhanced || text != tc.text {
				t.Errorf("SMTPStatus = %d %v %q, want %d %v %q", code, enh, text, tc.code, tc.enhanced, tc.text)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{&inbound.Refusal{Code: 550}, 0},
		{&inbound.Refusal{Code: 450, Temporary: true}, 75},
		{&Deferred{Err: errors.New("x")}, 75},
		{fmt.Errorf("wrapped: %w", &inbound.Refusal{Code: 550}), 0},
		{errors.New("anything else"), 75},
		{smtp.ErrDataTooLarge, 75},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// expectLines checks that lines is exactly one line matching re.
func expectLines(t *testing.T, lines []string, re string) {
	t.Helper()
	if len(lines) != 1 || !regexp.MustCompile(re).MatchString(lines[0]) {
		t.Errorf("log = %q, want one line matching %s", lines, re)
	}
}
