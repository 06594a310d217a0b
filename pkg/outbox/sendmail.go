package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/text/transform"
)

// exTempFail is sendmail's exit status for "try again later" (sysexits.h).
const exTempFail = 75

type sendmailTransport struct {
	path    string
	timeout time.Duration
}

func (t *sendmailTransport) String() string { return "sendmail:" + t.path }

// NewSession checks that the program exists and is executable.
func (t *sendmailTransport) NewSession(ctx context.Context) (Session, error) {
	fi, err := os.Stat(t.path)
	if err != nil {
		return nil, &DeliveryError{Msg: err.Error(), Err: err}
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, &DeliveryError{Msg: t.path + " is not an executable file"}
	}
	return sendmailSession{t}, nil
}

type sendmailSession struct{ t *sendmailTransport }

func (sendmailSession) Close() error { return nil }

// Send runs PATH -i -f FROM -- TO with the message, LF line endings, on
// standard input. Only the two validated addresses come from the message.
func (s sendmailSession) Send(ctx context.Context, m *Message) error {
	if err := CheckAddress(m.From); err != nil {
		return &DeliveryError{Msg: "sender: " + err.Error()}
	}
	if err := CheckAddress(m.To); err != nil {
		return &DeliveryError{Msg: "recipient: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, s.t.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.t.path, "-i", "-f", m.From, "--", m.To)
	cmd.Stdin = lfReader(m)
	stderr := &capWriter{max: 4 << 10}
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	killGroup(cmd) // a timeout also stops what sendmail started
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return &DeliveryError{Temporary: true, Msg: fmt.Sprintf("%s did not finish within %v", s.t.path, s.t.timeout), Err: ctx.Err()}
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		// Could not start it (fork failed, file gone): try again later.
		return &DeliveryError{Temporary: true, Msg: err.Error(), Err: errors.Join(err, ErrConnectionLost)}
	}
	msg := firstLine(stderr.String())
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &DeliveryError{Temporary: true, Msg: joinMsg(fmt.Sprintf("%s killed by %v", s.t.path, ws.Signal()), msg), Err: err}
	}
	code := ee.ExitCode()
	return &DeliveryError{
		Temporary: code == exTempFail,
		Msg:       joinMsg(fmt.Sprintf("%s exited with status %d", s.t.path, code), msg),
		Err:       err,
	}
}

func joinMsg(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// capWriter keeps the first max bytes written to it.
type capWriter struct {
	buf bytes.Buffer
	max int
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (w *capWriter) String() string { return w.buf.String() }

// lfReader reads m as it goes on the wire (Data, Shared, Tail) with CRLF
// line endings turned into LF, the local convention of sendmail and
// maildir. A CRLF split between two parts is turned too.
func lfReader(m *Message) io.Reader {
	parts := m.Parts()
	rs := make([]io.Reader, len(parts))
	for i, p := range parts {
		rs[i] = bytes.NewReader(p)
	}
	return transform.NewReader(io.MultiReader(rs...), crlfToLF{})
}

// crlfToLF is a transform.Transformer that drops the CR of every CRLF;
// other CRs are kept.
type crlfToLF struct{ transform.NopResetter }

func (crlfToLF) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		// Copy up to the next CR.
		run := bytes.IndexByte(src[nSrc:], '\r')
		if run < 0 {
			run = len(src) - nSrc
		}
		n := copy(dst[nDst:], src[nSrc:nSrc+run])
		nDst += n
		nSrc += n
		if n < run {
			return nDst, nSrc, transform.ErrShortDst
		}
		if nSrc == len(src) {
			break
		}
		// src[nSrc] is a CR: drop it before LF, keep it otherwise.
		switch {
		case nSrc+1 == len(src) && !atEOF:
			return nDst, nSrc, transform.ErrShortSrc // is the next byte LF?
		case nSrc+1 < len(src) && src[nSrc+1] == '\n':
			nSrc++
		case nDst == len(dst):
			return nDst, nSrc, transform.ErrShortDst
		default:
			dst[nDst] = '\r'
			nDst++
			nSrc++
		}
	}
	return nDst, nSrc, nil
}
