package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/digest"
)

// checkOptions are check's flags: what the member knows from outside the
// digest.
type checkOptions struct {
	pin  string // --pin
	last string // --last SERIAL:HEAD[:FPR]
	sig  string // --sig FILE, for a directory.json
	gpg  bool   // --gpg: decrypt with the member's gpg
}

func newCheckCmd(g *globals) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check FILE --pin FINGERPRINT [--last SERIAL:HEAD[:FPR]] [--gpg] [--sig FILE]",
		Short: "Check a received digest's directory.json as a member: signed by the pinned key's chain, extending the head you saw",
		Long: `Check a digest you received, without a ccdir home: FILE is the digest as
your mail program saved it (.eml) after decrypting it, or as gpg decrypts its
encrypted part; with --gpg, the digest still encrypted, which your own gpg
(GNUPGHOME) decrypts. FILE may also be a digest's directory.json, with its
signature directory.json.asc beside it (or named by --sig).

check reads the key chain the digest carries from the key you pinned (--pin:
the directory key's fingerprint as you got it out of band), refusing to
follow it past a revoked key (each link must be the ledger's directory.rekey
entry, signed by the old key and by the new); checks that directory.json is
signed by the chain's last key, the directory's key now; recomputes the hash of every ledger entry the digest carries,
which must chain from the previous digest's head to the new head; and, with
--last (the serial and head of the digest you checked last), that the new
head extends it: no fork (another history at a serial you saw), no rollback
or replay (a serial below yours), no entries missing. It prints
"ok serial N head H (extends S:H)" and "next: --pin FPR --last N:H:FPR":
pass those flags next time. The FPR in --last is the key that signed the
digest you checked (optional): this digest's chain must have that key in
force at that serial, so a digest by a key the directory has replaced since
(its chain cut short, a revocation left out) is refused. When the chain
moved past your pinned key, next's --pin is the new key: re-pin.

What check covers: directory.json and its signature (directory.json.asc)
only, not the mail's text or other attachments. What it cannot see: a
digest by an old key, its chain cut short before a rekey you have not seen
yet (your --last is older than the rekey) and its later entries forged;
check the next digests, and ask the operator when the key changes.

Without --last there is nothing to compare with: check says so on stderr, and
checks the digest against itself and the pinned key only.

EXIT STATUS
  0 ok, 1 error (the check could not run: a file missing, gpg failed),
  2 usage, 3 the digest does not hold (the line names what)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), o, g, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.pin, "pin", "", "the directory key's fingerprint, known from outside the digest (required)")
	f.StringVar(&o.last, "last", "", "SERIAL:HEAD[:FPR] of the digest you checked last (FPR: its signer), which this one must extend")
	f.StringVar(&o.sig, "sig", "", "the signature of a directory.json FILE (default FILE.asc)")
	f.BoolVar(&o.gpg, "gpg", false, "decrypt an encrypted digest with gpg (your GNUPGHOME)")
	return cmd
}

func runCheck(ctx context.Context, o checkOptions, g *globals, file string) error {
	if o.pin == "" {
		return usagef("--pin FINGERPRINT is required: the directory key you trust, as you got it out of band")
	}
	var last *directory.Head
	var lastSigner string
	if o.last != "" {
		head := o.last
		if i := strings.Index(head, ":"); i >= 0 {
			if j := strings.Index(head[i+1:], ":"); j >= 0 {
				head, lastSigner = head[:i+1+j], strings.ToUpper(strings.ReplaceAll(head[i+2+j:], " ", ""))
				if len(lastSigner) != 40 && len(lastSigner) != 64 || !isHex(lastSigner) {
					return usagef("--last wants SERIAL:HASH[:FINGERPRINT], the fingerprint in hex, as check printed it")
				}
			}
		}
		h, err := parseHead("--last", head)
		if err != nil {
			return err
		}
		last = &h
	}
	data, sig, err := checkInput(ctx, o, file)
	if err != nil {
		return checkFinding(err)
	}
	res, err := digest.Check(data, sig, digest.CheckOptions{Pin: o.pin, Last: last, LastSigner: lastSigner, Now: g.now()})
	if err != nil {
		return checkFinding(err)
	}
	if last == nil {
		g.warnf("no --last: nothing to compare with; the digest says it extends %d:%s", res.Extends.Serial, res.Extends.Hash)
	}
	pin := strings.ToUpper(strings.ReplaceAll(o.pin, " ", ""))
	if res.Signer != pin {
		pin = res.Signer // the chain moved past the pinned key: re-pin
	}
	nextLast := fmt.Sprintf("%d:%s:%s", res.Serial, res.Head, res.Signer)
	if g.json {
		return g.printJSON(map[string]any{"ok": true, "serial": res.Serial, "head": res.Head,
			"extends": map[string]any{"serial": res.Extends.Serial, "head": res.Extends.Hash, "yours": last != nil},
			"entries": res.Entries, "key": res.Signer, "covers": "directory.json",
			"next": map[string]any{"pin": pin, "last": nextLast}})
	}
	g.printf("ok serial %d head %s (extends %d:%s)\n", res.Serial, res.Head, res.Extends.Serial, res.Extends.Hash)
	g.printf("signed by directory key %s: directory.json holds (not the mail's text)\n", keys.GroupFingerprint(res.Signer))
	g.printf("next: --pin %s --last %s\n", pin, nextLast)
	return nil
}

// checkFinding makes a finding of digest.Check an exit-3 error with its
// hint; other errors pass.
func checkFinding(err error) error {
	var ce *digest.CheckError
	if !errors.As(err, &ce) {
		return err
	}
	ve := &directory.VerifyError{Reason: ce.Reason}
	if ce.Hint != "" {
		return withHint(ve, "%s", ce.Hint)
	}
	return ve
}

// checkInput reads directory.json and its signature from file: a
// directory.json (the signature beside it), or a digest message,
// decrypted by gpg with --gpg.
func checkInput(ctx context.Context, o checkOptions, file string) (data, sig []byte, err error) {
	b, err := readCapped(file, digest.MaxDigestBytes)
	if err != nil {
		return nil, nil, err
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		sigFile := o.sig
		if sigFile == "" {
			sigFile = file + ".asc"
		}
		sig, err := readCapped(sigFile, keys.MaxSignatureBytes)
		if err != nil {
			return nil, nil, withHint(err, "pass the signature attached to the digest beside it (directory.json.asc), or name it with --sig")
		}
		return b, sig, nil
	}
	data, sig, err = digest.DigestFiles(b)
	var enc *digest.EncryptedError
	if !errors.As(err, &enc) {
		return data, sig, err
	}
	if !o.gpg {
		return nil, nil, withHint(errors.New("the digest is still encrypted"),
			"decrypt it first, or pass --gpg to have your gpg decrypt it: ccdir check --gpg %s --pin …", file)
	}
	dec, err := gpgDecrypt(ctx, enc.Armored)
	if err != nil {
		return nil, nil, err
	}
	data, sig, err = digest.DigestFiles(dec)
	if errors.As(err, &enc) {
		return nil, nil, &digest.CheckError{Reason: "the decrypted digest is encrypted again"}
	}
	return data, sig, err
}

// gpgDecrypt decrypts an OpenPGP message with the member's gpg (its
// GNUPGHOME, its agent for the passphrase).
func gpgDecrypt(ctx context.Context, armored []byte) ([]byte, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "gpg", "--batch", "--quiet", "--decrypt")
	cmd.Stdin = bytes.NewReader(armored)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return nil, withHint(fmt.Errorf("gpg could not decrypt the digest: %v: %s", err, msg),
			"the digest is encrypted to your key: run check where your gpg holds it (GNUPGHOME)")
	}
	return out.Bytes(), nil
}

// parseHead reads the SERIAL:HASH of a head given with flag.
func parseHead(flag, s string) (directory.Head, error) {
	serialText, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	serial, err := strconv.ParseInt(serialText, 10, 64)
	if !ok || err != nil || serial < 1 || len(hash) != 64 || !isHex(hash) {
		return directory.Head{}, usagef("%s wants SERIAL:HASH, e.g. 42:%s", flag, strings.Repeat("0", 64))
	}
	return directory.Head{Serial: serial, Hash: strings.ToLower(hash)}, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
