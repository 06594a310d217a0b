package inbound

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

var update = flag.Bool("update", false, "regenerate testdata/corpus (TestGenerateCorpus)")

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

const corpusDir = "testdata/corpus"

// corpusCase is one generated corpus file.
type corpusCase struct {
	name   string
	expect string // accept, refuse, drop
	reason string // substring of the Refusal's Reason (or of Accepted.Form for accept)
	extra  []string
	build  func(w *world, label string) []byte
}

const cmds = "DIRECTORY " + dirAddr + "\nSHOW pt\nWHOAMI\n\n-- \nAna\n"

func corpusCases() []corpusCase {
	at := corpusNow.Add(-time.Hour)
	return []corpusCase{
		// Accepted forms.
		{name: "accept-clearsigned", expect: "accept", reason: FormInlineClear,
			extra: []string{"X-Corpus-Signer: ana@dns.pt"},
			build: func(w *world, l string) []byte {
				body := "Unsigned text before the block is ignored.\n\n" + clearsigned(w.t, w.ana, cmds, at, l) + "\nUnsigned footer.\n"
				return textMail(headers("ana@dns.pt", l), body)
			}},
		// Anyone on the path can add parts beside the signed ones (a
		// 64 KiB attachment here); the evidence a change keeps holds the
		// signed part only.
		{name: "accept-unsigned-attachment", expect: "accept", reason: FormInlineClear,
			extra: []string{"X-Corpus-Signer: ana@dns.pt", "X-Corpus-Max-Evidence: 2048"},
			build: func(w *world, l string) []byte {
				const b = "outer-added-3c9e"
				junk := strings.Repeat(strings.Repeat("QUFB", 19)+"\r\n", 880)
				return []byte(headers("ana@dns.pt", l) + `Content-Type: multipart/mixed; boundary="` + b + `"` + "\r\n\r\n" +
					"--" + b + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + clearsigned(w.t, w.ana, cmds, at, l) + "\r\n--" + b + "\r\n" +
					"Content-Type: application/octet-stream; name=\"added.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + junk +
					"--" + b + "--\r\n")
			}},
		{name: "accept-pgpmime-signed", expect: "accept", reason: FormPGPMIMESigned,
			extra: []string{"X-Corpus-Signer: ana@dns.pt"},
			build: func(w *world, l string) []byte {
				inner := textEntity(cmds)
				return signedMail(headers("ana@dns.pt", l), inner, detached(w.t, w.ana, inner, at, l))
			}},
		{name: "accept-pgpmime-signed-protected-to", expect: "accept", reason: FormPGPMIMESigned,
			extra: []string{"X-Corpus-Signer: bruno@dns.pt"},
			build: func(w *world, l string) []byte {
				key, _ := w.ana.pub(w.t).Armored()
				inner := mixedEntity("KEY-ROTATE\n", "newkey.asc", string(key),
					"From: <bruno@dns.pt>", "To: ccTLD directory <"+dirAddr+">", "Subject: rotate")
				return signedMail(headers("bruno@dns.pt", l), inner, detached(w.t, w.bruno, inner, at, l))
			}},
		{name: "accept-pgpmime-encrypted-combined", expect: "accept", reason: FormPGPMIMEEncrypted,
			extra: []string{"X-Corpus-Signer: ana@dns.pt"},
			build: func(w *world, l string) []byte {
				inner := textEntity(cmds, "Subject: the real subject")
				return encryptedMail(headers("ana@dns.pt", l), w.encrypted(w.ana, inner, at, l))
			}},
		{name: "accept-pgpmime-encrypted-nested", expect: "accept", reason: FormPGPMIMEEncrypted,
			extra: []string{"X-Corpus-Signer: ana@dns.pt"},
			build: func(w *world, l string) []byte {
				inner := textEntity(cmds)
				signed := signedMail("", inner, detached(w.t, w.ana, inner, at, l))
				return encryptedMail(headers("ana@dns.pt", l), w.encrypted(nil, signed, at, l))
			}},
		{name: "accept-inline-encrypted", expect: "accept", reason: FormInlineEncrypted,
			extra: []string{"X-Corpus-Signer: ana@dns.pt"},
			build: func(w *world, l string) []byte {
				return textMail(headers("ana@dns.pt", l), w.encrypted(w.ana, []byte(cmds), at, l))
			}},
		{name: "accept-exchange-mangled", expect: "accept", reason: FormPGPMIMEEncrypted,
			extra: []string{"X-Corpus-Signer: ana@dns.pt"},
			build: func(w *world, l string) []byte {
				return mangledMail(headers("ana@dns.pt", l), w.encrypted(w.ana, textEntity(cmds), at, l))
			}},
		{name: "accept-alternative-html", expect: "accept", reason: FormInlineClear,
			extra: []string{"X-Corpus-Signer: ana@dns.pt"},
			build: func(w *world, l string) []byte {
				cs := clearsigned(w.t, w.ana, cmds, at, l)
				const b = "alt-b"
				return []byte(headers("ana@dns.pt", l) + `Content-Type: multipart/alternative; boundary="` + b + `"` + "\r\n\r\n" +
					"--" + b + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + cs + "\r\n" +
					"--" + b + "\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><pre>DIRECTORY other@evil.example</pre></body></html>\r\n" +
					"--" + b + "--\r\n")
			}},
		{name: "accept-forged-from", expect: "accept", reason: FormInlineClear,
			extra: []string{"X-Corpus-Signer: bruno@dns.pt"},
			build: func(w *world, l string) []byte {
				// From and Return-Path say Ana; Bruno signed: Bruno it is.
				return textMail(headers("ana@dns.pt", l), clearsigned(w.t, w.bruno, cmds, at, l))
			}},
		{name: "accept-2000-lines", expect: "accept", reason: FormInlineClear,
			extra: []string{"X-Corpus-Signer: ana@dns.pt", "X-Corpus-Lines: 2001"},
			build: func(w *world, l string) []byte {
				text := "DIRECTORY " + dirAddr + "\n" + strings.Repeat("SHOW pt\n", 2000)
				return textMail(headers("ana@dns.pt", l), clearsigned(w.t, w.ana, text, at, l))
			}},
		{name: "accept-quote-after-block", expect: "accept", reason: FormInlineClear,
			extra: []string{"X-Corpus-Signer: ana@dns.pt"},
			build: func(w *world, l string) []byte {
				text := "DIRECTORY " + dirAddr + "\nSHOW pt\n> On 31 May 2025 the directory wrote:\n> SHOW de\n"
				return textMail(headers("ana@dns.pt", l), clearsigned(w.t, w.ana, text, at, l))
			}},
		// TLP:RED posts that crossed SMTP in clear: inbound takes them (they
		// are well signed), the relay refuses them (pkg/relay's corpus test).
		{name: "accept-list-red-clearsigned", expect: "accept", reason: FormInlineClear,
			extra: []string{"X-Corpus-Signer: ana@dns.pt", "X-Corpus-To: " + listAddr},
			build: func(w *world, l string) []byte {
				text := "DIRECTORY " + listAddr + "\nTLP:RED\nTO: pt, de\n\nOur resolvers are under attack.\n"
				return textMail(strings.Replace(headers("ana@dns.pt", l), "To: <"+dirAddr+">", "To: <"+listAddr+">", 1),
					clearsigned(w.t, w.ana, text, at, l))
			}},
		{name: "accept-list-red-pgpmime-signed", expect: "accept", reason: FormPGPMIMESigned,
			extra: []string{"X-Corpus-Signer: ana@dns.pt", "X-Corpus-To: " + listAddr},
			build: func(w *world, l string) []byte {
				inner := textEntity("DIRECTORY "+listAddr+"\nTLP:RED\nTO: pt, de\n\nOur resolvers are under attack.\n", "To: <"+listAddr+">", "Subject: TLP:RED resolvers")
				return signedMail(strings.Replace(headers("ana@dns.pt", l), "To: <"+dirAddr+">", "To: <"+listAddr+">", 1),
					inner, detached(w.t, w.ana, inner, at, l))
			}},
		{name: "accept-header-injection", expect: "accept", reason: FormInlineClear,
			extra: []string{"X-Corpus-Signer: ana@dns.pt"},
			build: func(w *world, l string) []byte {
				hdr := strings.Join([]string{
					"Return-Path: <ana@dns.pt>",
					"From: =?utf-8?q?Ana=0D=0ABcc:_victim@example.net?= <ana@dns.pt>",
					"To: <" + dirAddr + ">",
					"Subject: =?utf-8?q?hello=0D=0ABcc:_victim@example.net=0D=0A=0D=0Abody?=",
					"Message-ID: <x@y>\r\n\tBcc: victim@example.net",
					"MIME-Version: 1.0",
				}, "\r\n") + "\r\n"
				return textMail(hdr, clearsigned(w.t, w.ana, cmds, at, l))
			}},
		{name: "accept-outer-subject-not-signed", expect: "accept", reason: FormPGPMIMESigned,
			extra: []string{"X-Corpus-Signer: ana@dns.pt", "X-Corpus-Subject-Signed: no"},
			build: func(w *world, l string) []byte {
				// The outer Subject is set on the way; nothing signed
				// carries one: answers must not echo it (issue 10, #18).
				inner := textEntity(cmds)
				hdr := strings.Replace(headers("ana@dns.pt", l), "Subject: commands", "Subject: URGENT wire money", 1)
				return signedMail(hdr, inner, detached(w.t, w.ana, inner, at, l))
			}},
		{name: "accept-protected-subject", expect: "accept", reason: FormPGPMIMESigned,
			extra: []string{"X-Corpus-Signer: ana@dns.pt", "X-Corpus-Subject-Signed: yes"},
			build: func(w *world, l string) []byte {
				inner := textEntity(cmds, "Subject: my entry")
				hdr := strings.Replace(headers("ana@dns.pt", l), "Subject: commands", "Subject: URGENT wire money", 1)
				return signedMail(hdr, inner, detached(w.t, w.ana, inner, at, l))
			}},
		{name: "accept-clearsigned-ascii-latin1-label", expect: "accept", reason: FormInlineClear,
			extra: []string{"X-Corpus-Signer: ana@dns.pt"},
			build: func(w *world, l string) []byte {
				// ASCII reads the same under any ASCII-compatible label.
				cs := clearsigned(w.t, w.ana, cmds, at, l)
				return []byte(headers("ana@dns.pt", l) + "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + cs)
			}},

		// Refused.
		{name: "refuse-clearsigned-charset-relabelled", expect: "refuse", reason: "declares charset \"iso-8859-1\"",
			build: func(w *world, l string) []byte {
				// Signed as UTF-8 (as OpenPGP text is), relabelled Latin-1
				// on the way: read as Latin-1, "João" would be "JoÃ£o".
				text := "DIRECTORY " + dirAddr + "\nSET NAME Ana João\n"
				cs := clearsigned(w.t, w.ana, text, at, l)
				return []byte(headers("ana@dns.pt", l) + "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + cs)
			}},
		{name: "refuse-clearsigned-not-utf8", expect: "refuse", reason: "not UTF-8",
			build: func(w *world, l string) []byte {
				// Latin-1 bytes signed: what they say depends on the
				// unsigned label (Latin-1, Latin-2, KOI8-R…).
				text := "DIRECTORY " + dirAddr + "\nSET NAME Ana Concei\xe7\xe3o\n"
				cs := clearsigned(w.t, w.ana, text, at, l)
				return []byte(headers("ana@dns.pt", l) + "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + cs)
			}},
		{name: "refuse-unsigned", expect: "refuse", reason: "not signed",
			extra: []string{"X-Corpus-Told: no"},
			build: func(w *world, l string) []byte {
				return textMail(headers("ana@dns.pt", l), cmds)
			}},
		{name: "refuse-unregistered-key", expect: "refuse", reason: "the signature cannot be accepted",
			extra: []string{"X-Corpus-Told: no"},
			build: func(w *world, l string) []byte {
				return textMail(headers("mallory@evil.example", l), clearsigned(w.t, w.mallory, cmds, at, l))
			}},
		{name: "refuse-inactive-member", expect: "refuse", reason: "the signature cannot be accepted",
			build: func(w *world, l string) []byte {
				return textMail(headers("li@cnnic.cn", l), clearsigned(w.t, w.li, cmds, at, l))
			}},
		{name: "refuse-unregistered-encrypted", expect: "refuse", reason: "the signature cannot be accepted",
			build: func(w *world, l string) []byte {
				return encryptedMail(headers("mallory@evil.example", l), w.encrypted(w.mallory, textEntity(cmds), at, l))
			}},
		{name: "refuse-bad-signature", expect: "refuse", reason: "the signature cannot be accepted",
			extra: []string{"X-Corpus-Told: no"},
			build: func(w *world, l string) []byte {
				cs := clearsigned(w.t, w.ana, cmds, at, l)
				return textMail(headers("ana@dns.pt", l), strings.Replace(cs, "SHOW pt", "SHOW pu", 1))
			}},
		{name: "refuse-bad-signature-pgpmime", expect: "refuse", reason: "the signature cannot be accepted",
			extra: []string{"X-Corpus-Told: no"},
			build: func(w *world, l string) []byte {
				inner := textEntity(cmds)
				sig := detached(w.t, w.ana, inner, at, l)
				return signedMail(headers("ana@dns.pt", l), bytes.Replace(inner, []byte("WHOAMI"), []byte("WHOAMJ"), 1), sig)
			}},
		// Several signatures in one block: each is checked on its own
		// (go-crypto takes the block as good when any one verifies).
		{name: "accept-pgpmime-signed-bad-then-good", expect: "accept", reason: FormPGPMIMESigned,
			extra: []string{"X-Corpus-Signer: ana@dns.pt"},
			build: func(w *world, l string) []byte {
				inner := textEntity(cmds)
				sigs := armorSigs(w.t, sigPacket(w.t, w.bruno, []byte("other"), at, l+" bruno", false), sigPacket(w.t, w.ana, inner, at, l, false))
				return signedMail(headers("ana@dns.pt", l), inner, sigs)
			}},
		{name: "refuse-pgpmime-signed-bad-and-unregistered", expect: "refuse", reason: "the signature cannot be accepted",
			build: func(w *world, l string) []byte {
				inner := textEntity(cmds)
				sigs := armorSigs(w.t, sigPacket(w.t, w.ana, []byte("other"), at, l, false), sigPacket(w.t, w.mallory, inner, at, l+" mallory", false))
				return signedMail(headers("ana@dns.pt", l), inner, sigs)
			}},
		{name: "refuse-clearsigned-too-many-signatures", expect: "refuse", reason: "the signature cannot be accepted",
			build: func(w *world, l string) []byte {
				cs, _ := clearsign.Decode([]byte(clearsigned(w.t, w.ana, cmds, at, l)))
				var sigs [][]byte
				for i := range 5 {
					sigs = append(sigs, sigPacket(w.t, w.ana, cs.Bytes, at.Add(time.Duration(i)*time.Second), l, true))
				}
				return textMail(headers("ana@dns.pt", l), multiClearsigned(w.t, cmds, sigs...))
			}},
		{name: "refuse-replay", expect: "refuse", reason: "already used",
			extra: []string{"X-Corpus-Told: no", "X-Corpus-Setup: seen"},
			build: func(w *world, l string) []byte {
				return textMail(headers("ana@dns.pt", l), clearsigned(w.t, w.ana, cmds, at, l))
			}},
		{name: "refuse-stale", expect: "refuse", reason: "older than 72h",
			extra: []string{"X-Corpus-Told: yes"},
			build: func(w *world, l string) []byte {
				return textMail(headers("ana@dns.pt", l), clearsigned(w.t, w.ana, cmds, corpusNow.Add(-4*24*time.Hour), l))
			}},
		{name: "refuse-future", expect: "refuse", reason: "the signature cannot be accepted",
			extra: []string{"X-Corpus-Told: yes"},
			build: func(w *world, l string) []byte {
				return textMail(headers("ana@dns.pt", l), clearsigned(w.t, w.ana, cmds, corpusNow.Add(time.Hour), l))
			}},
		{name: "refuse-future-encrypted", expect: "refuse", reason: "the signature cannot be accepted",
			build: func(w *world, l string) []byte {
				return encryptedMail(headers("ana@dns.pt", l), w.encrypted(w.ana, textEntity(cmds), corpusNow.Add(time.Hour), l))
			}},
		{name: "refuse-other-directory", expect: "refuse", reason: "does not name this directory",
			extra: []string{"X-Corpus-Told: yes"},
			build: func(w *world, l string) []byte {
				text := strings.Replace(cmds, dirAddr, "directory@other.example", 1)
				return textMail(headers("ana@dns.pt", l), clearsigned(w.t, w.ana, text, at, l))
			}},
		{name: "refuse-unbound", expect: "refuse", reason: "does not name this directory",
			extra: []string{"X-Corpus-Told: yes"},
			build: func(w *world, l string) []byte {
				// The DIRECTORY line is outside the command lines, and the
				// unsigned text around the block names us: neither counts.
				text := "SHOW pt\n\nDIRECTORY " + dirAddr + "\n"
				return textMail(headers("ana@dns.pt", l), "DIRECTORY "+dirAddr+"\n\n"+clearsigned(w.t, w.ana, text, at, l))
			}},
		{name: "refuse-directory-after-quote", expect: "refuse", reason: "does not name this directory",
			build: func(w *world, l string) []byte {
				// The command block ends at the quoted line: the DIRECTORY
				// line after it is not a command line, for the binding
				// check as for mailcmd.Parse.
				text := "SHOW pt\n> SHOW de\nDIRECTORY " + dirAddr + "\n"
				return textMail(headers("ana@dns.pt", l), clearsigned(w.t, w.ana, text, at, l))
			}},
		{name: "refuse-list-directory-after-quote", expect: "refuse", reason: "does not name this directory",
			extra: []string{"X-Corpus-To: " + listAddr},
			build: func(w *world, l string) []byte {
				// The same for a post to the list.
				text := "TLP:GREEN\n> [TLP:GREEN] an earlier alert\nDIRECTORY " + listAddr + "\n\nOur resolvers are fine.\n"
				return textMail(strings.Replace(headers("ana@dns.pt", l), "To: <"+dirAddr+">", "To: <"+listAddr+">", 1),
					clearsigned(w.t, w.ana, text, at, l))
			}},
		{name: "refuse-unbound-outer-to", expect: "refuse", reason: "does not name this directory",
			build: func(w *world, l string) []byte {
				// Only the outer (unsigned) To names us.
				inner := textEntity("SHOW pt\n", "To: <directory@other.example>")
				return signedMail(headers("ana@dns.pt", l), inner, detached(w.t, w.ana, inner, at, l))
			}},
		{name: "refuse-key-expired-since-signing", expect: "refuse", reason: "signing key is not usable now",
			extra: []string{"X-Corpus-Told: no"},
			build: func(w *world, l string) []byte {
				return textMail(headers("eva@nic.de", l), clearsigned(w.t, w.eva, cmds, corpusNow.Add(-48*time.Hour), l))
			}},
		{name: "refuse-encrypted-unsigned", expect: "refuse", reason: "not signed",
			build: func(w *world, l string) []byte {
				return encryptedMail(headers("ana@dns.pt", l), w.encrypted(nil, textEntity(cmds), at, l))
			}},
		{name: "refuse-compression-bomb", expect: "refuse", reason: "once decompressed",
			extra: []string{"X-Corpus-Max-Heap: 67108864"},
			build: func(w *world, l string) []byte {
				return encryptedMail(headers("ana@dns.pt", l), w.bomb(l))
			}},
		{name: "refuse-mime-1000-deep", expect: "refuse", reason: "nested deeper than 20",
			build: func(w *world, l string) []byte {
				var b strings.Builder
				b.WriteString(headers("ana@dns.pt", l))
				for i := range 1000 {
					fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
				}
				b.WriteString("Content-Type: text/plain\r\n\r\n" + crlf(cmds))
				for i := 999; i >= 0; i-- {
					fmt.Fprintf(&b, "\r\n--b%d--\r\n", i)
				}
				return []byte(b.String())
			}},
		{name: "refuse-too-many-parts", expect: "refuse", reason: "more than 100 MIME parts",
			build: func(w *world, l string) []byte {
				var b strings.Builder
				b.WriteString(headers("ana@dns.pt", l) + "Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n")
				for range 150 {
					b.WriteString("--p\r\nContent-Type: text/plain\r\n\r\nx\r\n")
				}
				b.WriteString("--p--\r\n")
				return []byte(b.String())
			}},
		{name: "refuse-12mib", expect: "refuse", reason: "message too large",
			extra: []string{"X-Corpus-Pad-To: 12582912"},
			build: func(w *world, l string) []byte {
				return textMail(headers("ana@dns.pt", l), clearsigned(w.t, w.ana, cmds, at, l))
			}},
		{name: "refuse-huge-header", expect: "refuse", reason: "header",
			build: func(w *world, l string) []byte {
				return textMail(headers("ana@dns.pt", l, "X-Junk: "+strings.Repeat("a", 300<<10)), cmds)
			}},
		{name: "refuse-malformed-mime", expect: "refuse", reason: "malformed",
			build: func(w *world, l string) []byte {
				return []byte(headers("ana@dns.pt", l) + "Content-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nbroken header without colon\r\n\r\n")
			}},

		// Nobody left in the dark, and no oracle: the same mistake (no
		// DIRECTORY line) is told to a registered signer whose signature
		// verifies, and to nobody when the signature is forged, made by
		// a stranger in a member's name, or the mail is automatic or
		// claims to be our own.
		{name: "refuse-unbound-forged", expect: "refuse", reason: "the signature cannot be accepted",
			extra: []string{"X-Corpus-Told: no"},
			build: func(w *world, l string) []byte {
				cs := clearsigned(w.t, w.ana, "SHOW pt\nWHOAMI\n", at, l)
				return textMail(headers("ana@dns.pt", l), strings.Replace(cs, "SHOW pt", "SHOW de", 1))
			}},
		{name: "refuse-unbound-stranger", expect: "refuse", reason: "the signature cannot be accepted",
			extra: []string{"X-Corpus-Told: no"},
			build: func(w *world, l string) []byte {
				// Mallory's key, Ana's name and address everywhere outside it.
				return textMail(headers("ana@dns.pt", l), clearsigned(w.t, w.mallory, "SHOW pt\nWHOAMI\n", at, l))
			}},
		{name: "refuse-unbound-expired-key", expect: "refuse", reason: "signing key is not usable now",
			extra: []string{"X-Corpus-Told: no"},
			build: func(w *world, l string) []byte {
				return textMail(headers("eva@nic.de", l), clearsigned(w.t, w.eva, "SHOW pt\n", corpusNow.Add(-48*time.Hour), l))
			}},
		{name: "drop-auto-reply-unbound", expect: "drop", reason: "Auto-Submitted",
			extra: []string{"X-Corpus-Told: no"},
			build: func(w *world, l string) []byte {
				return textMail(headers("ana@dns.pt", l, "Auto-Submitted: auto-generated"), clearsigned(w.t, w.ana, "SHOW pt\n", at, l))
			}},
		{name: "drop-own-from-signed-unbound", expect: "drop", reason: "own address",
			extra: []string{"X-Corpus-Told: no"},
			build: func(w *world, l string) []byte {
				// Signed by Ana, but the From header is ours: a reply of
				// ours quoting her, come back.
				return textMail(strings.Replace(headers("ana@dns.pt", l), "From: ", "From: <"+dirAddr+">, ", 1), clearsigned(w.t, w.ana, "SHOW pt\n", at, l))
			}},

		// Dropped: mail loops.
		{name: "drop-bounce", expect: "drop", reason: "bounce",
			build: func(w *world, l string) []byte {
				return textMail(strings.Replace(headers("ana@dns.pt", l), "Return-Path: <ana@dns.pt>", "Return-Path: <>", 1),
					"Delivery failed.\n")
			}},
		{name: "drop-auto-reply", expect: "drop", reason: "Auto-Submitted",
			build: func(w *world, l string) []byte {
				return textMail(headers("ana@dns.pt", l, "Auto-Submitted: auto-replied"), clearsigned(w.t, w.ana, cmds, at, l))
			}},
		{name: "drop-precedence-bulk", expect: "drop", reason: "Precedence",
			build: func(w *world, l string) []byte {
				return textMail(headers("ana@dns.pt", l, "Precedence: bulk"), clearsigned(w.t, w.ana, cmds, at, l))
			}},
		{name: "drop-own-address", expect: "drop", reason: "own address",
			build: func(w *world, l string) []byte {
				return textMail(headers(dirAddr, l), "Our own reply.\n")
			}},
		{name: "drop-x-loop", expect: "drop", reason: "X-Loop",
			build: func(w *world, l string) []byte {
				return textMail(headers("ana@dns.pt", l, "X-Loop: "+dirAddr), clearsigned(w.t, w.ana, cmds, at, l))
			}},
	}
}

// bomb is an encrypted OpenPGP message of a few kilobytes: a compressed
// packet holding a compressed packet holding 1 GiB of zeros.
func (w *world) bomb(label string) string {
	w.t.Helper()
	var inner bytes.Buffer
	c1, err := packet.SerializeCompressed(nopCloser{&inner}, packet.CompressionZLIB, &packet.CompressionConfig{Level: flate.BestCompression})
	if err != nil {
		w.t.Fatal(err)
	}
	lit, err := packet.SerializeLiteral(c1, true, "", 0)
	if err != nil {
		w.t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range 1 << 10 {
		lit.Write(zeros)
	}
	lit.Close()
	c1.Close()
	var outer bytes.Buffer
	c2, err := packet.SerializeCompressed(nopCloser{&outer}, packet.CompressionZLIB, &packet.CompressionConfig{Level: flate.BestCompression})
	if err != nil {
		w.t.Fatal(err)
	}
	c2.Write(inner.Bytes())
	c2.Close()

	cfg := signCfg(label, corpusNow)
	key := make([]byte, 32)
	io.ReadFull(cfg.Rand, key)
	var msg bytes.Buffer
	sub := w.dir.Public().Entity().Subkeys[0].PublicKey
	if err := packet.SerializeEncryptedKey(&msg, sub, packet.CipherAES256, key, cfg); err != nil {
		w.t.Fatal(err)
	}
	ct, err := packet.SerializeSymmetricallyEncrypted(&msg, packet.CipherAES256, false, packet.CipherSuite{}, key, cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	ct.Write(outer.Bytes())
	ct.Close()
	var b bytes.Buffer
	aw, _ := armor.Encode(&b, "PGP MESSAGE", nil)
	aw.Write(msg.Bytes())
	aw.Close()
	return crlf(b.String()) + "\r\n"
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// TestGenerateCorpus writes testdata/corpus with -update. Without it, it
// regenerates the cheap files in memory and requires them to equal the
// checked-in ones (the corpus is reproducible); the compression bomb takes
// seconds to build and is only compared with -update.
func TestGenerateCorpus(t *testing.T) {
	w := newWorld(t)
	for _, c := range corpusCases() {
		if c.name == "refuse-compression-bomb" && !*update {
			continue
		}
		hdr := []string{"X-Corpus-Expect: " + c.expect, "X-Corpus-Reason: " + c.reason}
		hdr = append(hdr, c.extra...)
		data := append([]byte(strings.Join(hdr, "\r\n")+"\r\n"), c.build(w, c.name)...)
		path := filepath.Join(corpusDir, c.name+".eml")
		if *update {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		old, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v (run go test -run TestGenerateCorpus -update)", path, err)
			continue
		}
		if !bytes.Equal(old, data) {
			t.Errorf("%s differs from what the generator makes now (run go test -run TestGenerateCorpus -update)", path)
		}
	}
}

// corpusMeta is a corpus file's X-Corpus-* header.
type corpusMeta struct {
	expect, reason, signer, setup string
	subjectSigned                 string // yes, no or "" (not checked)
	told                          string // yes, no or "" (not checked): is the signer of the refusal told (Refusal.Tellable)
	padTo, maxHeap, lines         int
	maxEvidence                   int // bytes of Accepted.Evidence at most
}

func readMeta(t *testing.T, data []byte) corpusMeta {
	t.Helper()
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(data))).ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) && len(h) == 0 {
		t.Fatalf("header: %v", err)
	}
	atoi := func(k string) int {
		if h.Get(k) == "" {
			return 0
		}
		n, err := strconv.Atoi(h.Get(k))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return n
	}
	m := corpusMeta{expect: h.Get("X-Corpus-Expect"), reason: h.Get("X-Corpus-Reason"),
		signer: h.Get("X-Corpus-Signer"), setup: h.Get("X-Corpus-Setup"), subjectSigned: h.Get("X-Corpus-Subject-Signed"), told: h.Get("X-Corpus-Told"),
		padTo: atoi("X-Corpus-Pad-To"), maxHeap: atoi("X-Corpus-Max-Heap"), lines: atoi("X-Corpus-Lines"),
		maxEvidence: atoi("X-Corpus-Max-Evidence")}
	if m.expect != "accept" && m.expect != "refuse" && m.expect != "drop" || m.reason == "" {
		t.Fatalf("X-Corpus-Expect %q / X-Corpus-Reason %q: want accept|refuse|drop and a reason", m.expect, m.reason)
	}
	return m
}

// envelopeOf takes the envelope sender from Return-Path, as an MTA pipe
// (Postfix pipe flag R) provides it; the recipient is the directory, or
// X-Corpus-To.
func envelopeOf(data []byte) Envelope {
	env := Envelope{From: "sender@example.net", To: []string{dirAddr}}
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(data))).ReadMIMEHeader()
	if rp, ok := h["Return-Path"]; ok && len(rp) > 0 {
		env.From = trimAddr(rp[0])
	}
	if to := h.Get("X-Corpus-To"); to != "" {
		env.To = []string{to}
	}
	return env
}

func corpusFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no corpus files match %s/*.eml", corpusDir)
	}
	return files
}

func TestCorpus(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for _, path := range corpusFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".eml"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			meta := readMeta(t, data)
			if meta.padTo > len(data) {
				data = pad(data, meta.padTo)
			}
			env := envelopeOf(data)
			if meta.setup == "seen" {
				acc, err := w.p.Process(ctx, env, bytes.NewReader(data))
				if err != nil {
					t.Fatalf("first delivery: %v", err)
				}
				markSeen(t, w, acc)
			}
			var acc *Accepted
			run := func() { acc, err = w.p.Process(ctx, env, bytes.NewReader(data)) }
			if meta.maxHeap > 0 {
				grew := peakHeapGrowth(run)
				t.Logf("live heap grew by at most %d MiB", grew>>20)
				if grew > uint64(meta.maxHeap) {
					t.Errorf("heap grew by %d bytes, limit %d", grew, meta.maxHeap)
				}
			} else {
				run()
			}
			checkOutcome(t, meta, acc, err)
			if acc != nil {
				checkAccepted(t, meta, acc, data)
			}
		})
	}
}

func checkOutcome(t *testing.T, meta corpusMeta, acc *Accepted, err error) {
	t.Helper()
	var ref *Refusal
	switch {
	case err != nil && !errors.As(err, &ref):
		t.Fatalf("internal error: %v", err)
	case meta.expect == "accept":
		if err != nil {
			t.Fatalf("refused: %v (detail: %s)", err, ref.Detail)
		}
		if acc.Form != meta.reason {
			t.Errorf("form %q, want %q", acc.Form, meta.reason)
		}
	case err == nil:
		t.Fatalf("accepted (form %s, signer %s), want %s: %s", acc.Form, acc.Contact.Email, meta.expect, meta.reason)
	case ref.Drop != (meta.expect == "drop"):
		t.Fatalf("Drop=%v: %v, want %s", ref.Drop, ref, meta.expect)
	case !strings.Contains(ref.Reason, meta.reason):
		t.Fatalf("reason %q (detail %s), want it to contain %q", ref.Reason, ref.Detail, meta.reason)
	}
	if meta.told != "" && ref != nil {
		if want := meta.told == "yes"; ref.Tellable() != want {
			t.Errorf("told %v (kind %v, signer %v: %s), want %v", ref.Tellable(), ref.Kind, ref.Signer != nil, ref.NotTold(), want)
		}
		if ref.Tellable() && (ref.Signer.Contact.Email != "ana@dns.pt" || strings.ContainsAny(ref.TellText(), "\r\n")) {
			t.Errorf("told %s: %q", ref.Signer.Contact.Email, ref.TellText())
		}
	}
	if ref != nil {
		if strings.ContainsAny(ref.Reason, "\r\n") {
			t.Errorf("reason has a line break: %q", ref.Reason)
		}
		for _, secret := range []string{"ana@", "bruno@", "eva@", "li@", "Sousa", "Costa"} {
			if strings.Contains(ref.Reason, secret) {
				t.Errorf("reason discloses directory data %q: %s", secret, ref.Reason)
			}
		}
	}
}

func checkAccepted(t *testing.T, meta corpusMeta, acc *Accepted, raw []byte) {
	t.Helper()
	if meta.signer != "" && acc.Contact.Email != meta.signer {
		t.Errorf("attributed to %s, want the signer %s", acc.Contact.Email, meta.signer)
	}
	if acc.Key == nil || acc.Contact.Key == nil || acc.Key.Fingerprint != acc.Contact.Key.Fingerprint {
		t.Errorf("Key does not match the contact's registered key")
	}
	if len(acc.Seen) != 64 {
		t.Errorf("Seen = %q", acc.Seen)
	}
	if want := envelopeOf(raw).To[0]; acc.To != want {
		t.Errorf("To = %q, want %q", acc.To, want)
	}
	if !bytes.Equal(acc.Raw, raw) {
		t.Errorf("Raw is not the message as received")
	}
	if !slices.ContainsFunc(strings.Split(acc.Text, "\n"), func(l string) bool { return strings.HasPrefix(l, "DIRECTORY ") || strings.HasPrefix(l, "KEY-ROTATE") }) {
		t.Errorf("Text lacks the commands:\n%s", acc.Text)
	}
	if strings.Contains(acc.Text, "\r") || strings.Contains(acc.Text, "Unsigned") {
		t.Errorf("Text has CR or unsigned text:\n%s", acc.Text)
	}
	for _, s := range []string{acc.Subject, acc.MessageID} {
		if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Errorf("control character in %q", s)
		}
	}
	if strings.Contains(acc.MessageID, "Bcc") {
		t.Errorf("MessageID %q", acc.MessageID)
	}
	switch meta.subjectSigned {
	case "no":
		if acc.SubjectSigned {
			t.Errorf("SubjectSigned for an outer Subject %q", acc.Subject)
		}
	case "yes":
		if !acc.SubjectSigned || strings.Contains(acc.Subject, "URGENT") {
			t.Errorf("Subject %q (signed %v), want the protected one", acc.Subject, acc.SubjectSigned)
		}
	}
	if meta.maxEvidence > 0 && len(acc.Evidence) > meta.maxEvidence {
		t.Errorf("evidence of %d bytes, want at most %d", len(acc.Evidence), meta.maxEvidence)
	}
	if err := VerifyEvidence(acc.Evidence, acc.Contact.Key.Armored, acc.SignedAt); err != nil {
		t.Errorf("evidence does not verify with the signer's key: %v", err)
	}
	if meta.lines > 0 {
		if n := len(strings.Split(strings.TrimRight(acc.Text, "\n"), "\n")); n != meta.lines {
			t.Errorf("Text has %d lines, want %d", n, meta.lines)
		}
	}
}

func markSeen(t testing.TB, w *world, acc *Accepted) {
	t.Helper()
	ctx := context.Background()
	tx, err := w.store.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := acc.MarkSeen(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// pad grows the message to n bytes with lines of text in its body.
func pad(data []byte, n int) []byte {
	out := bytes.NewBuffer(make([]byte, 0, n+100))
	out.Write(data)
	line := []byte(strings.Repeat("x", 76) + "\r\n")
	for out.Len() < n {
		out.Write(line)
	}
	return out.Bytes()
}

// peakHeapGrowth runs fn and returns how far the live heap rose above its
// level before, sampled every millisecond (runtime/metrics).
func peakHeapGrowth(fn func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak uint64
	var mu sync.Mutex
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			v := read()
			mu.Lock()
			peak = max(peak, v)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	}()
	fn()
	close(done)
	<-stopped
	if peak < base {
		return 0
	}
	return peak - base
}

// FuzzProcess feeds arbitrary messages to the pipeline: it must never
// panic, and must answer within bounded time and memory (the message size
// is capped by Config).
func FuzzProcess(f *testing.F) {
	for _, path := range corpusFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if strings.Contains(path, "compression-bomb") {
			// TestCorpus covers it; under coverage instrumentation each
			// mutation of it would inflate megabytes and slow fuzzing to a
			// crawl.
			continue
		}
		f.Add(data)
	}
	w := newWorld(f)
	w.p.Config.MaxMessageBytes = 1 << 20
	w.p.Config.MaxDecryptedBytes = 1 << 20
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		acc, err := w.p.Process(ctx, envelopeOf(data), bytes.NewReader(data))
		var ref *Refusal
		switch {
		case err == nil:
			if acc == nil || acc.Seen == "" {
				t.Fatalf("accepted without a replay id")
			}
		case errors.As(err, &ref):
			if ref.Reason == "" || strings.ContainsAny(ref.Reason, "\r\n") {
				t.Fatalf("bad refusal %q", ref.Reason)
			}
		default:
			t.Fatalf("internal error: %v", err)
		}
	})
}
