package receive

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ccdir/ccdir/pkg/outbox"
)

// dsnTo is a Postfix-like report of a failure to rcpt, sent to addr.
func dsnTo(addr, rcpt, action, status string) string {
	return fmt.Sprintf("From: MAILER-DAEMON@mx.example (Mail Delivery System)\r\nTo: %s\r\n"+
		"Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"+
		"--B\r\nContent-Type: text/plain\r\n\r\nIt failed.\r\n\r\n"+
		"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"+
		"Final-Recipient: rfc822; %s\r\nAction: %s\r\nStatus: %s\r\nDiagnostic-Code: smtp; 550 %s user unknown\r\n\r\n--B--\r\n",
		addr, rcpt, action, status, status)
}

// TestReceiveBounce: a report to a message's tagged bounce address marks
// it bounced; forged tags, delays, non-reports and a second report are
// taken (nil: 250) and change nothing; nothing is ever queued in answer.
func TestReceiveBounce(t *testing.T) {
	w := newWorld(t)
	w.ob.Bounce = bounceAddr
	if _, err := w.ob.Enqueue(w.ctx, outbox.Message{Kind: outbox.KindReply, Ref: "r1", From: dirAddr, To: anaAddr,
		Data: []byte("From: " + dirAddr + "\r\nTo: " + anaAddr + "\r\nSubject: x\r\n\r\nhello\r\n")}); err != nil {
		t.Fatal(err)
	}
	w.delivered(anaAddr)
	rows, _ := w.ob.List(w.ctx, outbox.Filter{})
	if len(rows) != 1 || !strings.HasPrefix(rows[0].From, "ccdir-bounces+") {
		t.Fatalf("rows %+v", rows)
	}
	tagged := rows[0].From
	status := func() outbox.Status {
		rows, _ := w.ob.List(w.ctx, outbox.Filter{})
		if len(rows) != 1 {
			t.Fatalf("%d rows in the outbox: something was queued", len(rows))
		}
		return rows[0].Status
	}
	at := strings.Index(tagged, "@")
	forged := tagged[:at-4] + "beef" + tagged[at:]
	for _, tc := range []struct{ name, to, msg, log string }{
		{"forged tag", forged, dsnTo(forged, anaAddr, "failed", "5.1.1"), "ignored bounce"},
		{"untagged", bounceAddr, dsnTo(bounceAddr, anaAddr, "failed", "5.1.1"), "ignored bounce"},
		{"delayed", tagged, dsnTo(tagged, anaAddr, "delayed", "4.4.1"), "not a failure"},
		{"delivered", tagged, dsnTo(tagged, anaAddr, "delivered", "2.0.0"), "not a failure"},
		{"auto-reply", tagged, "From: " + anaAddr + "\r\nSubject: Out of office\r\n\r\nAway.\r\n", "not a delivery status notification"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.logs.Reset()
			if err := w.rc.Receive(w.ctx, Envelope{From: "", To: []string{tc.to}}, strings.NewReader(tc.msg)); err != nil {
				t.Fatalf("Receive = %v, want nil", err)
			}
			if st := status(); st != outbox.Sent {
				t.Fatalf("status %s, want sent", st)
			}
			if !strings.Contains(w.logs.String(), tc.log) || strings.Count(w.logs.String(), "\n") != 1 {
				t.Fatalf("log %q, want one line with %q", w.logs.String(), tc.log)
			}
		})
	}
	w.logs.Reset()
	if err := w.rc.Receive(w.ctx, Envelope{To: []string{tagged}}, strings.NewReader(dsnTo(tagged, anaAddr, "failed", "5.1.1"))); err != nil {
		t.Fatal(err)
	}
	if st := status(); st != outbox.Bounced {
		t.Fatalf("status %s, want bounced; log %s", st, w.logs)
	}
	if !strings.Contains(w.logs.String(), "bounced: \"5.1.1 smtp; 550 5.1.1 user unknown") {
		t.Errorf("log %q", w.logs)
	}
	w.logs.Reset()
	if err := w.rc.Receive(w.ctx, Envelope{To: []string{tagged}}, strings.NewReader(dsnTo(tagged, anaAddr, "failed", "5.2.2"))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.logs.String(), "bounced already") {
		t.Errorf("log %q", w.logs)
	}
}
