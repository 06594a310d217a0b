package outbox

import (
	"errors"
	"strings"
	"testing"
)

func TestNewTransportURLs(t *testing.T) {
	for _, tc := range []struct {
		url, password string
		want          string // String(), or "error: substring"
	}{
		{"smtp://mail.example", "", "smtp://mail.example:587"},
		{"smtp://ccdir@mail.example", "pw", "smtp://ccdir@mail.example:587"},
		{"smtp://mail.example:25?starttls=off", "", "smtp://mail.example:25?starttls=off"},
		{"smtps://ccdir@mail.example", "pw", "smtps://ccdir@mail.example:465"},
		{"smtp://[::1]:2525", "", "smtp://[::1]:2525"},
		{"maildir:/var/mail/ccdir", "", "maildir:/var/mail/ccdir"},
		{"maildir:///var/mail/ccdir", "", "maildir:/var/mail/ccdir"},
		{"sendmail:/usr/sbin/sendmail", "", "sendmail:/usr/sbin/sendmail"},
		{"smtp://ccdir:hunter2@mail.example", "", "error: password"},
		{"smtps://ccdir:hunter2@mail.example", "", "error: password_file"},
		{"smtp://ccdir@mail.example", "", "error: no password"},
		{"smtp://mail.example", "pw", "error: names no user"},
		{"smtp://ccdir@mail.example?starttls=off", "pw", "error: only sent over TLS"},
		{"smtps://mail.example?starttls=off", "", "error: unknown parameter"},
		{"smtp://mail.example/path", "", "error: no path"},
		{"smtp://", "", "error: no host"},
		{"lmtp://mail.example", "", "error: smtp://[user@]host"},
		{"/var/mail", "", "error: no scheme"},
		{"sendmail:", "", "error: no path"},
		{"sendmail:sendmail", "", "error: absolute"},
		// A password with '#', '?' or '/' in it ends the authority early:
		// such URLs are refused without being quoted.
		{"smtp://user:hun#ter2@mail.example:587", "", "error: cannot parse it"},
		{"smtp://user:12#hunter2@mail.example", "", "error: cannot parse it"},
		{"smtp://user:12?hunter2@mail.example", "", "error: cannot parse it"},
		{"smtp://user:hun/ter2@mail.example", "", "error: cannot parse it"},
		{"user:hunter2@mail.example", "", "error: unknown scheme \"user\""},
	} {
		if err := CheckURL(tc.url); err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "ter2")) {
			t.Errorf("CheckURL(%q): the error shows the password: %v", tc.url, err)
		} else if err != nil && !strings.HasPrefix(tc.want, "error:") {
			t.Errorf("CheckURL(%q) = %v, NewTransport takes it", tc.url, err)
		}
		tr, err := NewTransport(tc.url, TransportOptions{Password: tc.password})
		if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
			if !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), want) {
				t.Errorf("NewTransport(%q) = %v; want an error with %q", tc.url, err, want)
			}
			if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "ter2")) {
				t.Errorf("NewTransport(%q): the error shows the password: %v", tc.url, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("NewTransport(%q) = %v", tc.url, err)
			continue
		}
		if got := tr.String(); got != tc.want || strings.Contains(got, tc.password+"@") && tc.password != "" {
			t.Errorf("NewTransport(%q).String() = %q, want %q", tc.url, got, tc.want)
		}
	}
}

func TestDeliveryErrorText(t *testing.T) {
	e := &DeliveryError{Code: 550, Enhanced: "5.1.1", Msg: "No such user"}
	if e.Error() != "550 5.1.1 No such user" || IsTemporary(e) {
		t.Errorf("%q temporary=%v", e.Error(), IsTemporary(e))
	}
	if !IsTemporary(&DeliveryError{Temporary: true, Code: 451}) || IsTemporary(errors.New("x")) || IsTemporary(nil) {
		t.Error("IsTemporary misclassifies")
	}
}
