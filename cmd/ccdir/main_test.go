package main

import (
	"bufio"
	"bytes"
	"crypto"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	sqlite3 "github.com/mattn/go-sqlite3"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/outbox/smtptest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ccdir": func() {
			// CCDIR_TESTONLY_NOW fixes the clock of the test binary only;
			// the real ccdir never reads it.
			if v := os.Getenv("CCDIR_TESTONLY_NOW"); v != "" {
				t, err := time.Parse(time.RFC3339, v)
				if err != nil {
					fmt.Fprintln(os.Stderr, "bad CCDIR_TESTONLY_NOW:", err)
					os.Exit(2)
				}
				testOnlyNow = func() time.Time { return t }
			}
			// CCDIR_TESTONLY_PANIC makes process panic while it handles
			// a message, with a value that holds mail text.
			if os.Getenv("CCDIR_TESTONLY_PANIC") != "" {
				testOnlyPanic = func() { panic("SECRET-BODY") }
			}
			main()
		},
	})
}

// TestScripts runs the CLI tests in testdata/script, one file per area
// and behaviour. They run the real ccdir (this test binary) and the real
// gpg and sq.
func TestScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/script/*.txtar")
	if len(files) == 0 {
		t.Fatal("no scripts in testdata/script")
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		// [root]: the test runs as root, whom file modes do not stop.
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Setup: func(e *testscript.Env) error {
			home := filepath.Join(e.WorkDir, "user")
			gnupg := filepath.Join(e.WorkDir, ".gnupg")
			for _, d := range []string{home, gnupg} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					return err
				}
			}
			e.Setenv("HOME", home)
			e.Setenv("XDG_DATA_HOME", filepath.Join(home, ".local", "share"))
			e.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
			e.Setenv("GNUPGHOME", gnupg)
			e.Setenv("CCDIR_HOME", filepath.Join(e.WorkDir, "dir"))
			e.Defer(func() { killAgent(gnupg) })
			e.Values[scriptStateKey{}] = &scriptState{}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"sqlexec":      cmdSQLExec,
			"perm":         cmdPerm,
			"status":       cmdStatus,
			"gpgfpr":       cmdGPGFpr,
			"grepenv":      cmdGrepEnv,
			"nonempty":     cmdNonEmpty,
			"mime":         cmdMIME,
			"mimepart":     cmdMIMEPart,
			"maildir":      cmdMaildir,
			"pgpsplit":     cmdPGPSplit,
			"evsplit":      cmdEvSplit,
			"launder":      cmdLaunder,
			"launderas":    cmdLaunderAs,
			"smugglekey":   cmdSmuggleKey,
			"sink":         cmdSink,
			"genkeys":      cmdGenKeys,
			"dblock":       cmdDBLock,
			"flock":        cmdFlock,
			"freeport":     cmdFreePort,
			"waitport":     cmdWaitPort,
			"greet":        cmdGreet,
			"hangup":       cmdHangup,
			"smtpsend":     cmdSMTPSend,
			"lmtpsend":     cmdLMTPSend,
			"mkmail":       cmdMkMail,
			"mailtake":     cmdMailTake,
			"sigterm":      cmdSigterm,
			"releasedhome": cmdReleasedHome,
			"crlf":         cmdCRLF,
		},
	})
}

// killAgent stops the gpg-agent a script may have started.
func killAgent(gnupg string) {
	if _, err := os.Stat(filepath.Join(gnupg, "S.gpg-agent")); err == nil {
		cmd := exec.Command("gpgconf", "--homedir", gnupg, "--kill", "all")
		cmd.Run()
	}
}

// sqlexec DB STATEMENT [FILE...] changes a database behind ccdir's back
// and fails if the statement changed no row. The contents of the FILEs
// are bound to the statement's ? parameters, in order.
func cmdSQLExec(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: sqlexec DB STATEMENT [FILE...]")
	}
	var params []any
	for _, f := range args[2:] {
		b, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		params = append(params, string(b))
	}
	db, err := sql.Open("sqlite3", "file:"+ts.MkAbs(args[0])+"?_foreign_keys=off")
	if err != nil {
		ts.Fatalf("%v", err)
	}
	defer db.Close()
	res, err := db.Exec(args[1], params...)
	if err == nil {
		var n int64
		n, err = res.RowsAffected()
		if err == nil && n == 0 {
			err = fmt.Errorf("changed no row")
		}
	}
	if neg != (err != nil) {
		ts.Fatalf("sqlexec %q: %v", args[1], err)
	}
}

// perm FILE MODE checks a file's permission bits, e.g. perm dir/keys/directory.sec.asc 0600.
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	if err != nil {
		ts.Fatalf("bad mode %q", args[1])
	}
	st, err := os.Stat(ts.MkAbs(args[0]))
	if err != nil {
		ts.Fatalf("%v", err)
	}
	got := st.Mode().Perm()
	if (got == os.FileMode(want)) == neg {
		ts.Fatalf("%s has mode %#o, want %s%#o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// status N CMD ARGS... runs a command like exec and checks its exit code,
// e.g. status 3 ccdir verify.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("bad exit code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%v", err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// gpgfpr VAR USERID sets $VAR to the fingerprint of the one key in the
// script's GnuPG keyring that USERID names, so a script can use it in
// later commands (gpg --quick-add-key $VAR ..., openpgp-revocs.d/$VAR.rev).
func cmdGPGFpr(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: gpgfpr VAR USERID")
	}
	cmd := exec.Command("gpg", "--batch", "--with-colons", "--list-keys", args[1])
	cmd.Env = append(os.Environ(), "GNUPGHOME="+ts.Getenv("GNUPGHOME"))
	out, err := cmd.Output()
	if err != nil {
		ts.Fatalf("gpg --list-keys %s: %v", args[1], err)
	}
	// The first fpr record after each pub record is the primary key's.
	var fprs []string
	pub := false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ":")
		switch {
		case f[0] == "pub":
			pub = true
		case f[0] == "fpr" && pub && len(f) > 9:
			fprs = append(fprs, f[9])
			pub = false
		}
	}
	if len(fprs) != 1 {
		ts.Fatalf("%q names %d keys, want 1", args[1], len(fprs))
	}
	ts.Setenv(args[0], fprs[0])
}

// grepenv VAR REGEXP FILE sets $VAR to the first submatch of REGEXP
// (multi-line mode) in FILE, which may be stdout or stderr, and fails if
// REGEXP does not match; e.g. grepenv HEAD '^ok serial \d+ head (\w+)$' stdout.
func cmdGrepEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: grepenv VAR REGEXP FILE")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	if err != nil {
		ts.Fatalf("%v", err)
	}
	if re.NumSubexp() < 1 {
		ts.Fatalf("grepenv: %q has no group", args[1])
	}
	m := re.FindStringSubmatch(ts.ReadFile(args[2]))
	if m == nil {
		ts.Fatalf("no match for %q in %s", args[1], args[2])
	}
	ts.Setenv(args[0], m[1])
}

// nonempty FILE succeeds if FILE exists and holds at least one byte;
// ! nonempty FILE succeeds if it is missing or empty (e.g. no pending WAL).
func cmdNonEmpty(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: nonempty FILE")
	}
	st, err := os.Stat(ts.MkAbs(args[0]))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		ts.Fatalf("%v", err)
	}
	full := err == nil && st.Size() > 0
	if full == neg {
		ts.Fatalf("%s: nonempty is %v", args[0], full)
	}
}

// scriptStateKey finds a script's scriptState in its testscript values.
type scriptStateKey struct{}

// scriptState is what the custom commands of one script keep between
// commands: its SMTP sink and a database lock held by the test process.
type scriptState struct {
	flock  *os.File
	sink   *scriptSink
	lockDB *sql.DB
	lockTx *sql.Tx
}

func stateOf(ts *testscript.TestScript) *scriptState {
	return ts.Value(scriptStateKey{}).(*scriptState)
}

// mime FILE prints the MIME structure of a message or entity, decoded
// with go-message: for each entity its path (1, 1.1, 1.2, ...), media
// type and file name, its From, To and Subject headers decoded (RFC 2047),
// and the lines of text/*, application/json and application/pgp-encrypted
// leaves, transfer-decoded,
// each prefixed with "PATH| ". Other leaves show their size.
func cmdMIME(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: mime FILE")
	}
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	e, err := message.Read(f)
	ts.Check(err)
	ts.Check(printEntity(ts.Stdout(), e, "1"))
}

func printEntity(w io.Writer, e *message.Entity, path string) error {
	mt, params, err := e.Header.ContentType()
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	line := path + " " + mt
	if _, dp, err := e.Header.ContentDisposition(); err == nil && dp["filename"] != "" {
		line += " " + dp["filename"]
	} else if params["name"] != "" {
		line += " " + params["name"]
	}
	fmt.Fprintln(w, line)
	h := gomail.Header{Header: e.Header}
	for _, k := range []string{"From", "To", "Subject"} {
		if h.Has(k) {
			v, err := h.Text(k)
			if err != nil {
				return fmt.Errorf("%s: %s: %v", path, k, err)
			}
			fmt.Fprintf(w, "%s %s: %s\n", path, k, v)
		}
	}
	if mr := e.MultipartReader(); mr != nil {
		for i := 1; ; i++ {
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %v", path, err)
			}
			if err := printEntity(w, p, fmt.Sprintf("%s.%d", path, i)); err != nil {
				return err
			}
		}
	}
	body, err := io.ReadAll(e.Body)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if !strings.HasPrefix(mt, "text/") && mt != "application/json" && mt != "application/pgp-encrypted" {
		fmt.Fprintf(w, "%s (%d bytes)\n", path, len(body))
		return nil
	}
	for _, l := range strings.Split(strings.TrimRight(string(body), "\r\n"), "\n") {
		fmt.Fprintf(w, "%s| %s\n", path, strings.TrimRight(l, "\r"))
	}
	return nil
}

// pgpsplit SIGNED PART SIG writes the signed part of a multipart/signed
// entity (RFC 3156 §5) to PART exactly as it was signed (the bytes between
// the first delimiter line and the CRLF before the second, CRLF line
// endings kept) and its transfer-decoded signature part to SIG, so that
// gpg --verify SIG PART checks the signature independently of ccdir.
func cmdPGPSplit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: pgpsplit SIGNED PART SIG")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	e, err := message.Read(bytes.NewReader(data))
	ts.Check(err)
	mt, params, err := e.Header.ContentType()
	ts.Check(err)
	if mt != "multipart/signed" || params["protocol"] != "application/pgp-signature" || !strings.HasPrefix(params["micalg"], "pgp-") {
		ts.Fatalf("%s is %s %v, want multipart/signed with protocol application/pgp-signature and a pgp- micalg", args[0], mt, params)
	}
	delim := []byte("\r\n--" + params["boundary"])
	first := bytes.Index(data, delim)
	if first < 0 {
		ts.Fatalf("no CRLF-delimited boundary in %s", args[0])
	}
	start := first + len(delim)
	if !bytes.HasPrefix(data[start:], []byte("\r\n")) {
		ts.Fatalf("first delimiter line is not followed by CRLF")
	}
	start += 2
	n := bytes.Index(data[start:], delim)
	if n < 0 {
		ts.Fatalf("no second delimiter in %s", args[0])
	}
	part := data[start : start+n]
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), part, 0o600))
	mr := e.MultipartReader()
	if _, err := mr.NextPart(); err != nil {
		ts.Fatalf("first part: %v", err)
	}
	sig, err := mr.NextPart()
	if err != nil {
		ts.Fatalf("signature part: %v", err)
	}
	if st, _, _ := sig.Header.ContentType(); st != "application/pgp-signature" {
		ts.Fatalf("second part is %s, want application/pgp-signature", st)
	}
	b, err := io.ReadAll(sig.Body)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), b, 0o600))
}

// cmdEvSplit splits evidence as ccdir log --evidence prints it (ccdir
// evidence v1), read here by its documented layout alone, into the armored
// signature and the signed data, for gpg --verify SIG DATA: evsplit
// EVIDENCE SIG DATA.
func cmdEvSplit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: evsplit EVIDENCE SIG DATA")
	}
	ev, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	head, body, ok := bytes.Cut(ev, []byte("\n\n"))
	if !ok {
		ts.Fatalf("%s: no blank line after the header", args[0])
	}
	lines := strings.Split(string(head), "\n")
	var ns, nc int
	if len(lines) != 4 || lines[0] != "ccdir evidence v1" || !strings.HasPrefix(lines[1], "form: ") {
		ts.Fatalf("%s: header %q", args[0], head)
	}
	if _, err := fmt.Sscanf(lines[2], "signature: %d", &ns); err != nil {
		ts.Fatalf("%s: %q: %v", args[0], lines[2], err)
	}
	if _, err := fmt.Sscanf(lines[3], "content: %d", &nc); err != nil {
		ts.Fatalf("%s: %q: %v", args[0], lines[3], err)
	}
	if len(body) != ns+nc {
		ts.Fatalf("%s: %d bytes after the header, want %d + %d", args[0], len(body), ns, nc)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), body[:ns], 0o600))
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), body[ns:], 0o600))
}

// scriptTB lets smtptest.NewServer run inside a script: failures fail the
// script and cleanups run when it ends. Only these methods may be called.
type scriptTB struct {
	testing.TB
	ts *testscript.TestScript
}

func (t scriptTB) Helper()                   {}
func (t scriptTB) Fatal(args ...any)         { t.ts.Fatalf("%s", fmt.Sprint(args...)) }
func (t scriptTB) Fatalf(f string, a ...any) { t.ts.Fatalf(f, a...) }
func (t scriptTB) Cleanup(f func())          { t.ts.Defer(f) }

// scriptSink is an smtptest sink on 127.0.0.1 in the test process, with
// rules a script changes as it goes.
type scriptSink struct {
	srv *smtptest.Server

	mu         sync.Mutex
	refuse     map[string][2]int // recipient -> {code, first N attempts (0: all)}
	refuseText map[string]string // recipient -> the refusal's text, if not the usual
	drop       map[string]int    // recipient -> hang up in DATA on the first N attempts
	holdAfter  int               // hold the RCPT after this many accepted messages; -1: never
	isHeld     bool
	held       chan struct{} // closed when an RCPT is held
	release    chan struct{} // closed to let held RCPTs go on
}

func (s *scriptSink) rcpt(to string, attempt int) *smtp.SMTPError {
	s.mu.Lock()
	hold := s.holdAfter >= 0 && s.srv.Received() >= s.holdAfter
	if hold && !s.isHeld {
		s.isHeld = true
		close(s.held)
	}
	release := s.release
	r, refused := s.refuse[to]
	text := s.refuseText[to]
	s.mu.Unlock()
	if hold {
		select {
		case <-release:
		case <-time.After(time.Minute):
		}
	}
	if !refused || (r[1] != 0 && attempt > r[1]) {
		return nil
	}
	if r[0] >= 500 {
		if text == "" {
			text = "<" + to + ">: no such user here"
		}
		return &smtp.SMTPError{Code: r[0], EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: text}
	}
	if text == "" {
		text = "<" + to + ">: mailbox busy, try again later"
	}
	return &smtp.SMTPError{Code: r[0], EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: text}
}

func (s *scriptSink) dropAt(to string, attempt int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return attempt <= s.drop[to]
}

// sink runs an SMTP sink (pkg/outbox/smtptest) on 127.0.0.1 in the test
// process, so that the ccdir a script runs delivers to it:
//
//	sink start                 start it; $SINK_URL is its delivery.url
//	sink refuse EMAIL CODE N [TEXT]
//	                           answer RCPT for EMAIL with CODE (451, 550...) on its first N attempts (0: always),
//	                           with TEXT (a Go string literal: "\x1b[31m") instead of the usual text
//	sink drop EMAIL N          hang up in the middle of DATA on EMAIL's first N attempts
//	sink hold K                after K accepted messages, hold every further RCPT until release
//	sink waitheld              wait (at most 30 s) until an RCPT is held
//	sink release               let held RCPTs go on, and hold no more
//	sink count EMAIL N         fail unless N messages to EMAIL were accepted
//	sink attempts EMAIL N      fail unless EMAIL was given in N RCPT commands
//	sink total N               fail unless N messages were accepted in all
//	sink dropped N             fail unless N connections were dropped in DATA
//	sink once N                fail unless N recipients got mail, each exactly one message
//	sink counts                print "EMAIL N" for every recipient that got mail, sorted
func cmdSink(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: sink start|refuse|drop|hold|waitheld|release|count|attempts|total|dropped|once|counts ...")
	}
	st := stateOf(ts)
	s := st.sink
	if args[0] != "start" && s == nil {
		ts.Fatalf("sink %s: no sink started", args[0])
	}
	num := func(a string) int {
		n, err := strconv.Atoi(a)
		if err != nil {
			ts.Fatalf("sink %s: bad number %q", args[0], a)
		}
		return n
	}
	want := func(n int) {
		if len(args) != n {
			ts.Fatalf("sink %s: want %d arguments", args[0], n-1)
		}
	}
	check := func(what string, got, want int) {
		if got != want {
			ts.Fatalf("sink: %s is %d, want %d", what, got, want)
		}
	}
	switch args[0] {
	case "start":
		want(1)
		if s != nil {
			ts.Fatalf("sink already started")
		}
		s = &scriptSink{refuse: map[string][2]int{}, refuseText: map[string]string{}, drop: map[string]int{}, holdAfter: -1,
			held: make(chan struct{}), release: make(chan struct{})}
		s.srv = smtptest.NewServer(scriptTB{ts: ts}, smtptest.Options{Fail: s.rcpt, Drop: s.dropAt, DropAfterBytes: 1500})
		// Deferred after the server's Close, so it runs first: held
		// sessions end before the server waits for them.
		ts.Defer(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.holdAfter = -1
			select {
			case <-s.release:
			default:
				close(s.release)
			}
		})
		st.sink = s
		ts.Setenv("SINK_URL", s.srv.URL)
	case "refuse":
		if len(args) != 5 {
			want(4)
		}
		s.mu.Lock()
		s.refuse[args[1]] = [2]int{num(args[2]), num(args[3])}
		if len(args) == 5 {
			text, err := strconv.Unquote(args[4])
			if err != nil {
				ts.Fatalf("sink refuse: TEXT %s: %v", args[4], err)
			}
			s.refuseText[args[1]] = text
		}
		s.mu.Unlock()
	case "drop":
		want(3)
		s.mu.Lock()
		s.drop[args[1]] = num(args[2])
		s.mu.Unlock()
	case "hold":
		want(2)
		s.mu.Lock()
		s.holdAfter = num(args[1])
		s.mu.Unlock()
	case "waitheld":
		want(1)
		select {
		case <-s.held:
		case <-time.After(30 * time.Second):
			ts.Fatalf("sink: no RCPT held after 30s (%d messages accepted)", s.srv.Received())
		}
	case "release":
		want(1)
		s.mu.Lock()
		s.holdAfter = -1
		select {
		case <-s.release:
		default:
			close(s.release)
		}
		s.mu.Unlock()
	case "count":
		want(3)
		check("count of "+args[1], s.srv.Count(args[1]), num(args[2]))
	case "attempts":
		want(3)
		check("attempts of "+args[1], s.srv.Attempts(args[1]), num(args[2]))
	case "total":
		want(2)
		check("total", s.srv.Received(), num(args[1]))
	case "dropped":
		want(2)
		check("dropped", s.srv.Dropped(), num(args[1]))
	case "once":
		want(2)
		counts := s.srv.Counts()
		for e, n := range counts {
			if n != 1 {
				ts.Fatalf("sink: %s got %d messages, want 1", e, n)
			}
		}
		check("recipients", len(counts), num(args[1]))
	case "counts":
		want(1)
		counts := s.srv.Counts()
		emails := make([]string, 0, len(counts))
		for e := range counts {
			emails = append(emails, e)
		}
		sort.Strings(emails)
		for _, e := range emails {
			fmt.Fprintf(ts.Stdout(), "%s %d\n", e, counts[e])
		}
	default:
		ts.Fatalf("sink: unknown subcommand %q", args[0])
	}
}

// genkeys N TLD DOMAIN CSV KEYS writes an import file of N admin contacts
// of TLD (c001@DOMAIN, ...) and a bundle of their public keys, each a
// fresh Ed25519/Cv25519 key dated a day before $CCDIR_TESTONLY_NOW (or
// now): quicker than gpg for many recipients.
func cmdGenKeys(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 5 {
		ts.Fatalf("usage: genkeys N TLD DOMAIN CSV KEYS")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		ts.Fatalf("bad count %q", args[0])
	}
	now := time.Now()
	if v := ts.Getenv("CCDIR_TESTONLY_NOW"); v != "" {
		now, err = time.Parse(time.RFC3339, v)
		ts.Check(err)
	}
	var csv, bundle bytes.Buffer
	csv.WriteString("tld,org,name,email,phones,role,languages,timezone,24x7\n")
	for i := 1; i <= n; i++ {
		name, email := fmt.Sprintf("Contact %03d", i), fmt.Sprintf("c%03d@%s", i, args[2])
		sec, err := keys.Generate(name, email, keys.AlgoEd25519, now.Add(-24*time.Hour), nil)
		ts.Check(err)
		armored, err := sec.Public().Armored()
		ts.Check(err)
		bundle.Write(armored)
		fmt.Fprintf(&csv, "%s,Org %s,%s,%s,+351 21 234 5678,admin,,,no\n", args[1], args[1], name, email)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[3]), csv.Bytes(), 0o600))
	ts.Check(os.WriteFile(ts.MkAbs(args[4]), bundle.Bytes(), 0o600))
}

// dblock DB QUERY waits (at most 60 s) until QUERY, which counts rows,
// gives a number above 0 while the test process holds DB's write lock;
// it prints that number and keeps the lock, so that nothing another
// process writes can change it, until the script ends or dblock DB off.
// dblock -exclusive DB QUERY holds an exclusive lock instead (SQLite's
// locking_mode EXCLUSIVE): nobody else can even read the database.
// dblock -read DB QUERY holds only a read transaction: others write, but
// what they commit stays in the WAL file (no checkpoint can pass a reader,
// and the last connection to close is not theirs).
func cmdDBLock(ts *testscript.TestScript, neg bool, args []string) {
	st := stateOf(ts)
	mode := ""
	if len(args) > 0 && (args[0] == "-exclusive" || args[0] == "-read") {
		mode, args = args[0], args[1:]
	}
	if neg || len(args) != 2 {
		ts.Fatalf("usage: dblock [-exclusive|-read] DB QUERY | dblock DB off")
	}
	if args[1] == "off" {
		if st.lockTx == nil {
			ts.Fatalf("dblock: no lock held")
		}
		st.lockTx.Rollback()
		st.lockDB.Close()
		st.lockTx, st.lockDB = nil, nil
		return
	}
	if st.lockTx != nil {
		ts.Fatalf("dblock: a lock is already held")
	}
	dsn := "file:" + ts.MkAbs(args[0]) + map[string]string{
		// No busy timeout: SQLite's busy handler sleeps up to 100 ms a
		// try, long enough to miss a writer's gap between two
		// transactions (digest_kill.txtar's batches); the loop below
		// retries at once instead.
		"":           "?_busy_timeout=0&_txlock=immediate",
		"-exclusive": "?_busy_timeout=10000&_txlock=exclusive&_locking_mode=EXCLUSIVE",
		"-read":      "?_busy_timeout=10000",
	}[mode]
	db, err := sql.Open("sqlite3", dsn)
	ts.Check(err)
	db.SetMaxOpenConns(1)
	deadline := time.Now().Add(60 * time.Second)
	for {
		tx, err := db.Begin()
		if err != nil && mode == "" && isBusy(err) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Microsecond)
			continue
		}
		if err != nil {
			db.Close()
			ts.Fatalf("dblock: %v", err)
		}
		var n int64
		err = tx.QueryRow(args[1]).Scan(&n)
		if err != nil && !strings.Contains(err.Error(), "no such table") {
			tx.Rollback()
			db.Close()
			ts.Fatalf("dblock: %q: %v", args[1], err)
		}
		if err == nil && n > 0 {
			st.lockDB, st.lockTx = db, tx
			ts.Defer(func() {
				if st.lockTx != nil {
					st.lockTx.Rollback()
					st.lockDB.Close()
				}
			})
			fmt.Fprintf(ts.Stdout(), "%d\n", n)
			return
		}
		tx.Rollback()
		if time.Now().After(deadline) {
			db.Close()
			ts.Fatalf("dblock: %q still 0 after 60s", args[1])
		}
		time.Sleep(time.Millisecond)
	}
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// mimepart FILE PATH OUT writes the transfer-decoded body of the entity
// at PATH (numbered as mime prints them: 1 is the message, 1.2 its second
// part) to OUT.
func cmdMIMEPart(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: mimepart FILE PATH OUT")
	}
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	e, err := message.Read(f)
	ts.Check(err)
	steps := strings.Split(args[1], ".")
	if steps[0] != "1" {
		ts.Fatalf("mimepart: path %q does not start with 1", args[1])
	}
	for _, st := range steps[1:] {
		n, err := strconv.Atoi(st)
		if err != nil || n < 1 {
			ts.Fatalf("mimepart: bad path %q", args[1])
		}
		mr := e.MultipartReader()
		if mr == nil {
			ts.Fatalf("mimepart: %s: not multipart before step %d", args[1], n)
		}
		for i := 1; i <= n; i++ {
			if e, err = mr.NextPart(); err != nil {
				ts.Fatalf("mimepart: %s: part %d: %v", args[1], i, err)
			}
		}
	}
	b, err := io.ReadAll(e.Body)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), b, 0o600))
}

// maildir DIR EMAIL [OUT] finds the one message in the maildir DIR (new
// and cur) whose header names <EMAIL> and copies it to OUT; it fails if
// there is none or more than one. ! maildir DIR EMAIL succeeds if there
// is none.
func cmdMaildir(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || len(args) > 3 || (neg && len(args) != 2) {
		ts.Fatalf("usage: maildir DIR EMAIL [OUT]")
	}
	var found []string
	for _, sub := range []string{"new", "cur"} {
		files, err := filepath.Glob(filepath.Join(ts.MkAbs(args[0]), sub, "*"))
		ts.Check(err)
		for _, f := range files {
			b, err := os.ReadFile(f)
			ts.Check(err)
			head, _, _ := bytes.Cut(b, []byte("\r\n\r\n"))
			if bytes.Contains(head, []byte("<"+args[1]+">")) {
				found = append(found, f)
			}
		}
	}
	switch {
	case neg && len(found) > 0:
		ts.Fatalf("maildir: %d messages to %s, want none", len(found), args[1])
	case neg:
		return
	case len(found) != 1:
		ts.Fatalf("maildir: %d messages to %s, want 1", len(found), args[1])
	}
	if len(args) == 3 {
		b, err := os.ReadFile(found[0])
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(args[2]), b, 0o600))
	}
}

// flock FILE takes an exclusive flock on FILE (as ccdir does on
// HOME/digest.lock) and holds it until the script ends or flock FILE off.
func cmdFlock(ts *testscript.TestScript, neg bool, args []string) {
	st := stateOf(ts)
	if neg || len(args) < 1 || len(args) > 2 || (len(args) == 2 && args[1] != "off") {
		ts.Fatalf("usage: flock FILE [off]")
	}
	if len(args) == 2 {
		if st.flock == nil {
			ts.Fatalf("flock: no lock held")
		}
		st.flock.Close()
		st.flock = nil
		return
	}
	if st.flock != nil {
		ts.Fatalf("flock: a lock is already held")
	}
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_CREATE|os.O_RDWR, 0o600)
	ts.Check(err)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		ts.Fatalf("flock %s: %v", args[0], err)
	}
	st.flock = f
	ts.Defer(func() {
		if st.flock != nil {
			st.flock.Close()
		}
	})
}

// freeport VAR sets $VAR to 127.0.0.1:PORT, a TCP port free a moment ago,
// for a server the script starts next.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	addr := l.Addr().String()
	ts.Check(l.Close())
	ts.Setenv(args[0], addr)
}

// waitport ADDR waits (at most 30 s) until something accepts connections
// on ADDR, a TCP host:port or unix:PATH.
func cmdWaitPort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitport ADDR|unix:PATH")
	}
	network, addr := "tcp", args[0]
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", ts.MkAbs(p)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			// Read the greeting first: a server that wrote it to a closed
			// connection would log a reset.
			c.SetReadDeadline(time.Now().Add(time.Second))
			c.Read(make([]byte, 512))
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitport %s: %v", args[0], err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// greeted are the connections greet keeps open, per script, for hangup.
var greeted = struct {
	sync.Mutex
	conns map[*testscript.TestScript][]net.Conn
}{conns: map[*testscript.TestScript][]net.Conn{}}

// cmdGreet connects to ADDR from the local address FROM (any of 127/8),
// prints the first line the server sends (waiting at most 5 s; nothing
// if none came) and keeps the connection open until hangup or the end
// of the script.
func cmdGreet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: greet ADDR FROM")
	}
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(args[1])}}
	c, err := d.Dial("tcp", args[0])
	if err != nil {
		ts.Fatalf("greet: %v", err)
	}
	ts.Defer(func() { c.Close() })
	greeted.Lock()
	greeted.conns[ts] = append(greeted.conns[ts], c)
	greeted.Unlock()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.SetReadDeadline(time.Time{})
	fmt.Fprintf(ts.Stdout(), "%s", line)
}

// cmdHangup closes the connections greet opened.
func cmdHangup(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: hangup")
	}
	greeted.Lock()
	defer greeted.Unlock()
	for _, c := range greeted.conns[ts] {
		c.Close()
	}
	delete(greeted.conns, ts)
}

// smtpStatus formats a reply of go-smtp's client as "CODE X.Y.Z TEXT",
// or "ok" for a success whose text the client does not return.
func smtpStatus(err error) string {
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &se):
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
	default:
		return "error " + err.Error()
	}
}

// smtpsend [-size] ADDR FROM TO[,TO...] FILE sends FILE over SMTP to ADDR
// with go-smtp's client and prints each step's reply:
//
//	mail: ok | mail: CODE X.Y.Z TEXT
//	rcpt TO: ok | rcpt TO: CODE X.Y.Z TEXT
//	data: 250 TEXT | data: CODE X.Y.Z TEXT
//
// FROM may be "" for a bounce (MAIL FROM:<>). -size declares the message
// size in MAIL FROM (SIZE=). It stops after a refused MAIL, or when every
// RCPT was refused. The command itself fails only on a broken connection.
func cmdSMTPSend(ts *testscript.TestScript, neg bool, args []string) {
	size := len(args) > 0 && args[0] == "-size"
	if size {
		args = args[1:]
	}
	if neg || len(args) != 4 {
		ts.Fatalf("usage: smtpsend [-size] ADDR FROM TO[,TO...] FILE")
	}
	c, err := smtp.Dial(args[0])
	ts.Check(err)
	defer c.Close()
	ts.Check(c.Hello("client.test"))
	sendOne(ts, c, false, size, args[1], strings.Split(args[2], ","), args[3])
	c.Quit()
}

// lmtpsend SOCKET FROM TO[,TO...] FILE sends FILE over LMTP to the unix
// socket SOCKET and prints each step's reply as smtpsend does, the end of
// DATA once per accepted recipient: "data TO: 250 TEXT".
func cmdLMTPSend(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: lmtpsend SOCKET FROM TO[,TO...] FILE")
	}
	conn, err := net.DialTimeout("unix", ts.MkAbs(args[0]), 5*time.Second)
	ts.Check(err)
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	ts.Check(c.Hello("client.test"))
	sendOne(ts, c, true, false, args[1], strings.Split(args[2], ","), args[3])
	c.Quit()
}

func sendOne(ts *testscript.TestScript, c *smtp.Client, lmtp, size bool, from string, to []string, file string) {
	data, err := os.ReadFile(ts.MkAbs(file))
	ts.Check(err)
	out := ts.Stdout()
	var opts *smtp.MailOptions
	if size {
		opts = &smtp.MailOptions{Size: int64(len(data))}
	}
	err = c.Mail(from, opts)
	fmt.Fprintf(out, "mail: %s\n", smtpStatus(err))
	if err != nil {
		return
	}
	var accepted []string
	for _, rcpt := range to {
		err := c.Rcpt(rcpt, nil)
		fmt.Fprintf(out, "rcpt %s: %s\n", rcpt, smtpStatus(err))
		if err == nil {
			accepted = append(accepted, rcpt)
		}
	}
	if len(accepted) == 0 {
		return
	}
	w, err := c.Data()
	if err != nil {
		fmt.Fprintf(out, "data: %s\n", smtpStatus(err))
		return
	}
	if _, err := w.Write(data); err != nil {
		ts.Fatalf("smtpsend: writing the message: %v", err)
	}
	if !lmtp {
		resp, err := w.CloseWithResponse()
		if err == nil {
			fmt.Fprintf(out, "data: 250 %s\n", resp.StatusText)
		} else {
			fmt.Fprintf(out, "data: %s\n", smtpStatus(err))
		}
		return
	}
	resps, err := w.CloseWithLMTPResponse()
	var lerr smtp.LMTPDataError
	if err != nil && !errors.As(err, &lerr) {
		ts.Fatalf("lmtpsend: %v", err)
	}
	for _, rcpt := range accepted {
		switch {
		case resps[rcpt] != nil:
			fmt.Fprintf(out, "data %s: 250 %s\n", rcpt, resps[rcpt].StatusText)
		case lerr[rcpt] != nil:
			fmt.Fprintf(out, "data %s: %s\n", rcpt, smtpStatus(lerr[rcpt]))
		default:
			fmt.Fprintf(out, "data %s: no reply\n", rcpt)
		}
	}
}

// mkmail builds the mails a member's client sends, with CRLF line endings
// exactly as RFC 3156 wants them:
//
//	mkmail part TEXT OUT                 a text/plain entity of TEXT (UTF-8): the part to sign
//	mkmail text FROM TO BODY OUT         a text/plain mail whose body is BODY (clear-signed or armored inline)
//	mkmail signed FROM TO PART SIG OUT   multipart/signed (RFC 3156 §5) of PART and the armored detached SIG
//	mkmail encrypted FROM TO ASC OUT     multipart/encrypted (RFC 3156 §4) of the armored message ASC
//	mkmail big FROM TO MIB OUT           a text/plain mail of MIB MiB
//
// Each mail has From FROM, To TO, a Date of now and the Message-ID
// <NAME@ccdir.test>, NAME being OUT's base name without its extension, so
// a reply can be found by its In-Reply-To.
func cmdMkMail(ts *testscript.TestScript, neg bool, args []string) {
	usage := func() { ts.Fatalf("usage: mkmail part|text|signed|encrypted|big ...") }
	if neg || len(args) < 3 {
		usage()
	}
	read := func(name string) string {
		b, err := os.ReadFile(ts.MkAbs(name))
		ts.Check(err)
		return string(b)
	}
	crlf := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
	}
	write := func(out string, b []byte) { ts.Check(os.WriteFile(ts.MkAbs(out), b, 0o600)) }
	if args[0] == "part" {
		if len(args) != 3 {
			usage()
		}
		write(args[2], []byte("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"+crlf(read(args[1]))))
		return
	}
	n := map[string]int{"text": 5, "signed": 6, "encrypted": 5, "big": 5}[args[0]]
	if n == 0 || len(args) != n {
		usage()
	}
	out := args[n-1]
	id := strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: ccdir request %s\r\nDate: %s\r\nMessage-ID: <%s@ccdir.test>\r\nMIME-Version: 1.0\r\n",
		args[1], args[2], id, time.Now().Format(time.RFC1123Z), id)
	switch args[0] {
	case "text":
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
		b.WriteString(crlf(read(args[3])))
	case "signed":
		sig := read(args[4])
		micalg, err := micalgOf(sig)
		ts.Check(err)
		const bd = "sig-ccdir-test-2f8e"
		fmt.Fprintf(&b, "Content-Type: multipart/signed; micalg=%s; protocol=\"application/pgp-signature\"; boundary=\"%s\"\r\n\r\n", micalg, bd)
		b.WriteString("This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n")
		b.WriteString("--" + bd + "\r\n" + read(args[3]) + "\r\n--" + bd + "\r\n")
		b.WriteString("Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n")
		b.WriteString("Content-Description: OpenPGP digital signature\r\n")
		b.WriteString("Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n")
		b.WriteString(crlf(strings.TrimRight(sig, "\r\n")) + "\r\n--" + bd + "--\r\n")
	case "encrypted":
		const bd = "enc-ccdir-test-6c1d"
		fmt.Fprintf(&b, "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"%s\"\r\n\r\n", bd)
		b.WriteString("This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n")
		b.WriteString("--" + bd + "\r\nContent-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n")
		b.WriteString("--" + bd + "\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n")
		b.WriteString("Content-Description: OpenPGP encrypted message\r\nContent-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n")
		b.WriteString(crlf(strings.TrimRight(read(args[3]), "\r\n")) + "\r\n--" + bd + "--\r\n")
	case "big":
		mib, err := strconv.Atoi(args[3])
		if err != nil || mib < 1 || mib > 1024 {
			ts.Fatalf("mkmail big: bad size %q", args[3])
		}
		b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
		line := strings.Repeat("x", 1022) + "\r\n"
		for b.Len() < mib<<20 {
			b.WriteString(line)
		}
	}
	write(out, b.Bytes())
}

// micalgOf names the hash of an armored detached signature as RFC 3156's
// micalg parameter does (pgp-sha256, pgp-sha512, ...).
func micalgOf(armored string) (string, error) {
	blk, err := armor.Decode(strings.NewReader(armored))
	if err != nil {
		return "", err
	}
	p, err := packet.Read(blk.Body)
	if err != nil {
		return "", err
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return "", fmt.Errorf("not a signature packet: %T", p)
	}
	names := map[crypto.Hash]string{crypto.SHA256: "pgp-sha256", crypto.SHA384: "pgp-sha384",
		crypto.SHA512: "pgp-sha512", crypto.SHA224: "pgp-sha224", crypto.SHA3_256: "pgp-sha3-256", crypto.SHA3_512: "pgp-sha3-512"}
	if n, ok := names[sig.Hash]; ok {
		return n, nil
	}
	return "", fmt.Errorf("unexpected signature hash %v", sig.Hash)
}

// mailtake DIR REGEXP OUT moves the one message of the maildir DIR (new
// and cur) whose header matches REGEXP (multi-line mode) out of DIR, to
// OUT; it fails if none or more than one match. ! mailtake DIR REGEXP
// succeeds if none matches. Use it when a contact gets several messages
// (a reply and a change notice), e.g. mailtake dir/mail '^In-Reply-To: <req1@' reply.eml.
func cmdMailTake(ts *testscript.TestScript, neg bool, args []string) {
	if (neg && len(args) != 2) || (!neg && len(args) != 3) {
		ts.Fatalf("usage: mailtake DIR REGEXP OUT")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	var found []string
	for _, sub := range []string{"new", "cur"} {
		files, err := filepath.Glob(filepath.Join(ts.MkAbs(args[0]), sub, "*"))
		ts.Check(err)
		for _, f := range files {
			b, err := os.ReadFile(f)
			ts.Check(err)
			head, _, _ := bytes.Cut(b, []byte("\r\n\r\n"))
			if re.Match(bytes.ReplaceAll(head, []byte("\r\n"), []byte("\n"))) {
				found = append(found, f)
			}
		}
	}
	switch {
	case neg && len(found) > 0:
		ts.Fatalf("mailtake: %d messages match %q, want none", len(found), args[1])
	case neg:
		return
	case len(found) != 1:
		ts.Fatalf("mailtake: %d messages match %q, want 1", len(found), args[1])
	}
	b, err := os.ReadFile(found[0])
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), b, 0o600))
	ts.Check(os.Remove(found[0]))
}

// sigterm WORD sends SIGTERM to every background command of the script
// with WORD among its arguments (e.g. sigterm serve); wait NAME then
// collects its exit status and output.
func cmdSigterm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sigterm WORD")
	}
	n := 0
	for _, c := range ts.BackgroundCmds() {
		if c.Process != nil && slices.Contains(c.Args[1:], args[0]) {
			ts.Check(c.Process.Signal(syscall.SIGTERM))
			n++
		}
	}
	if n == 0 {
		ts.Fatalf("sigterm: no background command with %q", args[0])
	}
}

// crlf IN OUT copies IN to OUT with CRLF line endings, e.g. to undo the
// LF endings of a maildir file before pgpsplit checks a signature made
// over the canonical CRLF form.
func cmdCRLF(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: crlf IN OUT")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), b, 0o600))
}

// TestSecondSignalKills: the first SIGTERM cancels the command's context;
// a second one kills a command that does not stop (here one that ignores
// its context), instead of being swallowed too.
func TestSecondSignalKills(t *testing.T) {
	if os.Getenv("CCDIR_TESTONLY_SIGNAL_CHILD") != "" {
		ctx, stop := interruptContext()
		defer stop()
		fmt.Println("ready")
		<-ctx.Done()
		fmt.Println("cancelled")
		time.Sleep(30 * time.Second) // a command that does not stop
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondSignalKills$")
	cmd.Env = append(os.Environ(), "CCDIR_TESTONLY_SIGNAL_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	r := bufio.NewReader(out)
	if line, err := r.ReadString('\n'); line != "ready\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if line, err := r.ReadString('\n'); line != "cancelled\n" {
		t.Fatalf("child after the first SIGTERM: %q, %v", line, err)
	}
	time.Sleep(100 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { io.Copy(io.Discard, r); done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("child ended with %v, want killed by SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a second SIGTERM did not kill the command")
	}
}
