package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/mailcmd"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/receive"
	"github.com/ccdir/ccdir/pkg/relay"
	"github.com/ccdir/ccdir/pkg/smtpd"
)

//go:generate go run . config reference --output ../../docs/configuration.md

// configKeys is every configuration key ccdir reads: the one place that
// says its default, its type and check, the flag that sets it, and what
// it means. It feeds viper's defaults, the validation of every value
// before a command runs, the typed accessors the commands read
// (g.text, g.number, g.boolean, g.duration, g.list, configGet), ccdir
// config show and docs/configuration.md. A default that a package also
// applies to its zero value is taken from that package's constant.
var configKeys = []configKey{
	{name: "directory.name", typ: textType, help: "The directory's name, written by init. Informational: the signed ledger holds the name that counts."},
	{name: "directory.address", typ: textType, help: "The directory's mail address, written by init. Informational: the signed ledger holds the address that counts."},
	{name: "directory.list_address", typ: textType, help: "The alert list's address, written by init. Informational: the signed ledger holds the address that counts."},
	{name: "key.algo", typ: algoType, help: "The directory key's algorithm, written by init. Informational."},
	{name: "key.lifetime", def: "2y", typ: lifetimeType,
		help: "How long the directory key is valid: `init` makes it expire this long after its creation, and `ccdir key update-uids --renew` sets its expiry to this long from then (the same key, new self-signatures). `2y` (years of 365 days), `90d`, or `0` for a key that never expires. Before it expires, `ccdir report` tells the operator (within the largest of `keys.remind_days`), and `key check` and `verify` say when it does; an expired key signs nothing until renewed."},
	{name: "key.passphrase_file", typ: fileType, flag: "passphrase-file", env: []string{"CCDIR_PASSPHRASE_FILE"},
		help: "File holding the directory key's passphrase, for its owner only (mode 0600): one that group or others may read or write is refused. Empty: the key has no passphrase."},
	{name: "rollover.overlap", def: "60d", typ: daysType,
		help: "After `ccdir rekey`, how long mail encrypted to the directory's earlier key is still accepted (its secret key is kept as `keys/directory-FINGERPRINT.sec.asc`, 0600), and replies and digests say that the key changed and carry the earlier key beside the new one. After it, such mail is refused saying so, and the earlier secret key is no longer read (ccdir does not delete it: move it offline or delete it). A key revoked by `rekey --revoke-old` opens no mail at all."},
	{name: "limits.security_contacts", def: strconv.Itoa(directory.DefaultMaxSecurityContacts), typ: intType(1, 100),
		help: "Security contacts per ccTLD; admins do not count."},
	{name: "delivery.url", typ: urlType,
		help: "Where outgoing mail goes: `" + strings.ReplaceAll(outbox.URLForms, ", ", "`, `") + "`. `smtp://` requires STARTTLS (`?starttls=off` for a local relay, then no AUTH); the password comes from `delivery.password_file`. Empty: `maildir:HOME/mail`, so nothing leaves the machine."},
	{name: "delivery.password_file", typ: fileType,
		help: "File holding the SMTP password (never in the URL), for its owner only (mode 0600): one that group or others may read or write is refused."},
	{name: "delivery.connections", def: strconv.Itoa(outbox.DefaultConnections), typ: intType(1, 64),
		help: "Parallel SMTP connections. Each message goes as one `BDAT` chunk when the server offers CHUNKING (RFC 3030, as Postfix 3.4+ does), else with `DATA`."},
	{name: "delivery.message_timeout", def: durationText(outbox.DefaultMessageTimeout), typ: durationType,
		help: "The longest the delivery of one message over SMTP may take, connecting included (for the first message of a connection), however slowly the server answers each command, plus one second for every 64 KiB of the message (a floor rate, so a large message to a server that reads it steadily is not cut; a write that stalls is cut by the per-command timeout); past it the connection is dropped and the message stays queued for a retry (when it comes after the end of the data, the error says the message may have arrived)."},
	{name: "delivery.retry_for", def: durationText(outbox.DefaultRetryFor), typ: durationType,
		help: "How long temporary failures (4xx) are retried before a message is marked failed."},
	{name: "digest.interval", def: "monthly", typ: intervalType,
		help: "How often `ccdir digest send` sends a digest: `monthly`, `weekly`, `daily` or a number of days."},
	{name: "digest.attach", def: strings.Join(export.AttachmentNames, ","), typ: attachType,
		help: "Attachments of a digest, separated by commas; `none` for none. `json` is directory.json, with the ledger entries since the last digest and the directory key chain, and its signature directory.json.asc: what members check with `ccdir check` (or gpg and the README's check.py)."},
	{name: "digest.subject", def: digest.DefaultSubject, typ: textType,
		help: "The digest's neutral outer Subject; the real one travels encrypted."},
	{name: "commands.window", def: durationText(inbound.DefaultWindow), typ: durationType,
		help: "How old a command's signature may be."},
	{name: "commands.skew", def: durationText(inbound.DefaultSkew), typ: durationType,
		help: "How far in the future a command's signature may be dated."},
	{name: "commands.replies_per_hour", def: strconv.Itoa(mailcmd.DefaultRepliesPerHour), typ: intType(1, 10000),
		help: "Replies one contact gets per hour; over the cap the commands still run, unanswered. The answers to a contact's refused mail (no DIRECTORY line, a stale signature, a post the list cannot relay) are capped at the same number per hour, counted apart."},
	{name: "commands.changes_per_day", def: strconv.Itoa(mailcmd.DefaultChangesPerDay), typ: intType(1, 10000),
		help: "Changes the signed mails of one contact may make or ask for in 24 hours: ledger entries and pending key and email changes (KEY-ROTATE signed by the old key alone, SET EMAIL; a VETO is never counted); a change past the cap is refused (the sender is told) and nothing of its mail is kept."},
	{name: "commands.max_evidence", def: strconv.Itoa(mailcmd.DefaultMaxEvidence), typ: intType(4<<10, 16<<20),
		help: "Bytes of evidence (the signed content and its signature) kept with each change made by mail; a change from a mail whose evidence is larger is refused, and the sender told."},
	{name: "serve.smtp", typ: listenType(false), flag: "smtp",
		help: "SMTP address `ccdir serve` listens on (`host:port`)."},
	{name: "serve.lmtp", typ: listenType(true), flag: "lmtp",
		help: "LMTP address `ccdir serve` listens on (`host:port` or `unix:PATH`, mode 0660)."},
	{name: "serve.max_message_bytes", def: strconv.Itoa(inbound.DefaultMaxMessageBytes), typ: intType(1<<10, 1<<30),
		help: "Larger incoming mail is refused at the SMTP level."},
	{name: "serve.tls_cert", typ: fileType, help: "PEM certificate for STARTTLS in `ccdir serve`; with `serve.tls_key`."},
	{name: "serve.tls_key", typ: fileType, help: "PEM private key for STARTTLS in `ccdir serve`; with `serve.tls_cert`."},
	{name: "serve.require_tls", def: "true", typ: boolType,
		help: "With a certificate (`serve.tls_cert`), refuse `MAIL` before `STARTTLS` over SMTP (`530 5.7.0`), so no mail crosses the network in clear. Not for LMTP. Set it to false only for an MTA on the same host that relays over plain SMTP."},
	{name: "serve.max_connections", def: strconv.Itoa(smtpd.DefaultMaxConnections), typ: intType(1, 10000),
		help: "Connections `ccdir serve` keeps open at a time, per listener. One more is answered `421` and closed at once. The MTA (`serve.mta`) has as many again of its own on SMTP, so other clients cannot lock it out."},
	{name: "serve.max_connections_per_ip", def: strconv.Itoa(smtpd.DefaultMaxConnectionsPerIP), typ: intType(1, 10000),
		help: "SMTP connections from one IPv4 address or IPv6 /64 network at a time; one more is answered `421` and closed at once. Not for LMTP, nor for `serve.mta`."},
	{name: "serve.mta", typ: prefixListType,
		help: "IP addresses or networks (CIDR) of the MTA that relays mail to `ccdir serve` over SMTP, separated by commas: they have no per-address connection limit, and connection slots of their own (`serve.max_connections`)."},
	{name: "serve.memory_budget", def: strconv.Itoa(smtpd.DefaultMemoryBudget), typ: intType(1<<20, 1<<40),
		help: "Bytes of incoming messages `ccdir serve` holds in memory at a time, over all connections (each message is checked whole, in memory); at least `serve.max_message_bytes` and 1 MiB more, a reserve that only the first 64 KiB of a message may take, so that command mails are taken while large messages hold the rest. A message holds the bytes that have arrived, not its declared `SIZE`; one source (an IPv4 address or IPv6 /64; not `serve.mta`, nor LMTP) a quarter of the budget at most, or one message of `serve.max_message_bytes` if that is more. A message it has no room for is answered `452 4.3.1` (the sender retries later): at `MAIL` when its declared `SIZE` does not fit now, else as soon as it outgrows the room. Checking a message parses and decodes it in memory: the peak resident memory of `serve` grows by about 4–5 times this budget (`scripts/bench/memory.sh`: 64 messages of 10 MiB at once, about 200 MB with the default)."},
	{name: "serve.session_timeout", def: durationText(smtpd.DefaultSessionTimeout), typ: durationType,
		help: "The longest one SMTP or LMTP connection lasts, however busy the client keeps it (the per-command timeouts are re-armed by every command, `NOOP` included)."},
	{name: "list.tag", typ: textType, help: "Subject tag of the alert list's copies. Empty: `[NAME]`, the directory's name."},
	{name: "list.default_tlp", def: relay.DefaultTLP, typ: tlpType,
		help: "TLP label of a post that names none."},
	{name: "list.copy_to_sender", def: "true", typ: boolType, help: "Whether the author of a post gets a copy too."},
	{name: "list.keep_message_id", def: "false", typ: boolType, help: "Whether copies keep the post's Message-ID: only one in its signed (protected) headers; a post without one gets a Message-ID of the directory's own, the same in every copy."},
	{name: "list.archive", def: "false", typ: boolType, help: "Whether posts are kept; if false, nothing of an alert's content is kept."},
	{name: "list.posts_per_minute", def: strconv.Itoa(relay.DefaultPostsPerMinute), typ: intType(1, 1000),
		help: "Posts of one author relayed in any minute; a post over the cap is relayed to nobody, and its author is told (once an hour at most)."},
	{name: "list.posts_per_hour", def: strconv.Itoa(relay.DefaultPostsPerHour), typ: intType(1, 10000),
		help: "Posts of one author relayed in any hour; a post over the cap is relayed to nobody, and its author is told (once an hour at most)."},
	{name: "list.retention", def: daysText(relay.DefaultRetention), typ: daysType,
		help: "How long the list keeps an alert's metadata (author, label, time, recipients, acknowledgements, and its archive if kept): the daily `ccdir outbox flush` deletes older alerts, except one whose copies still wait in the outbox. A pruned alert is gone from `ccdir alerts`, ACK and ACKS."},
	{name: "operator.name", typ: operatorNameType, env: []string{"CCDIR_OPERATOR"},
		help: "Who is at the CLI: every ledger entry the operator makes names them (actor `operator:NAME`, shown by `ccdir log`). Several operators sharing a home each set `CCDIR_OPERATOR` (or `CCDIR_OPERATOR_NAME`) in their own shell, which wins over the config file. Empty: the login name. The rules of names apply (no control or invisible characters; runs of spaces become one), at most " + strconv.Itoa(directory.MaxOperatorName) + " characters. Entries made before names were recorded say `operator` and still verify."},
	{name: "operator.address", typ: emailType,
		help: "The operator's own mail address: where the directory's mail for the operator goes (`ccdir report`), always encrypted to `operator.key` and signed by the directory key, never plain. Set by `init --operator-email` or `key import --operator --email`. Never one of the directory's addresses nor a contact's: a contact with it is refused."},
	{name: "operator.key", typ: fingerprintType,
		help: "The fingerprint of the operator's OpenPGP key, kept in `HOME/keys/operator.pub.asc` (minimal form, as a contact's key is kept). Set by `init --operator-key` or `key import --operator`, which write both. A fingerprint, not a path: `config show` says which key mail to the operator is encrypted to, and a key file swapped in the home is refused, not used. Never the directory's key nor a contact's (nor one sharing a subkey with them)."},
	{name: "ping.interval", def: daysText(liveness.DefaultInterval), typ: daysType,
		help: "`ccdir ping send` challenges a contact whose last answer to a reachability check (at its current address and key) is older than this, or who never answered one; the digest's reachability section shows a confirmation older than this as stale."},
	{name: "ping.valid", def: daysText(liveness.DefaultValid), typ: daysType,
		help: "How long the token of a reachability check may be answered with `PONG`; after it the contact is stale."},
	{name: "ping.remind", def: daysText(liveness.DefaultRemind), typ: daysType,
		help: "A reachability check unanswered after this long gets one reminder, with the same token."},
	{name: "ping.escalate", def: "true", typ: boolType,
		help: "Whether a check that expires unanswered is told to the admin contacts of the contact's ccTLDs (once per silence: not again until the contact has answered)."},
	{name: "ping.retention", def: daysText(liveness.DefaultRetention), typ: daysType,
		help: "How long a reachability check is kept once its token has expired (each names a contact's address), and a key-expiry reminder once the expiry has passed: the daily `ccdir outbox flush` deletes older ones. What a contact's state is read from is kept however old: its last answer (its \"last confirmed\", which also decides which bounces count) and, while it has not answered since, the first check it left unanswered and the one that was escalated; an open check is never deleted. A contact who left the directory keeps nothing older."},
	{name: "keys.remind_days", def: daysListText(liveness.DefaultRemindDays), typ: daysListType,
		help: "Days before a contact's key expires at which `ccdir ping send` mails its owner an encrypted, signed reminder naming the key, its expiry and how to refresh it (`KEY-REFRESH`), once per threshold and key expiry: a rerun sends nothing twice, a key refreshed with a later expiry starts over, and a run that finds two thresholds reached sends one reminder, for the nearest. An expired key gets none (nothing can be encrypted to it); `ping send` lists it."},
	{name: "changes.delay", def: durationText(liveness.DefaultDelay), typ: durationType,
		help: "How long a guarded change of a contact's key or email waits before it takes effect: a key change by a mail signed by the old key alone, an email change by mail, or either made by the operator without `--confirmed`. It is announced at once to the contact's old address and key, its new ones and its ccTLDs' other contacts, with its change id; a signed `VETO` of the id by the old key or an admin contact of the ccTLD, or `ccdir pending cancel`, stops it; `ccdir pending approve` applies it earlier; else the daily `ccdir ping send` or `ccdir digest send` applies it when due, as a ledger entry of the operator who runs it."},
	{name: "inbound.retention", def: daysText(receive.DefaultInboundRetention), typ: daysType,
		help: "How long the inbound log keeps a row (one per message to the directory's addresses, with its envelope sender): `ccdir outbox flush` deletes older rows."},
	{name: "bounces.address", typ: addressType,
		help: "The bounce address: every message goes out with the envelope sender `LOCAL+TAG@DOMAIN` of it (TAG: the message's id and a MAC under the outbox key), and a delivery status notification sent there marks the message it names bounced. Route it (with any `+TAG`) to `ccdir serve` or `ccdir process` like the directory's address. Empty: `LOCAL-bounces@DOMAIN` of the directory's address, which no contact may have; another address should be one no contact has."},
	{name: "bounces.limit", def: strconv.Itoa(outbox.DefaultBounceLimit), typ: intType(1, 100),
		help: "Bounces in a row that make a contact unreachable: messages to its current address that were sent and bounced, with no message delivered without a bounce between them, counting only bounces that came after its last `PONG`. A new address starts again at nought. Shown by `coverage`, `digest status` and `ping status` (which then exits 4); a bounce never changes the signed directory."},
	{name: "bounces.retention", def: daysText(outbox.DefaultBounceRetention), typ: daysType,
		help: "How long a bounce (the bounced message's recipient and the remote server's diagnostic) is kept once it no longer counts, that is once a later message to the address was delivered: the daily `ccdir outbox flush` deletes older ones. A bounce of a run still going, which `bounces.limit` judges a contact by, is never deleted."},
}

// configKey is one row of configKeys.
type configKey struct {
	name string     // the key, as in config.yaml: section.name
	def  string     // the default, as it would be written in config.yaml
	typ  configType // what values it takes
	flag string     // the flag that sets it, if any (on the commands that have it)
	env  []string   // environment variables read after CCDIR_SECTION_NAME
	help string     // what it means; Markdown, one paragraph
}

// envVars are the environment variables that set k, in the order they
// are read: the first one that is set and not empty wins.
func (k *configKey) envVars() []string {
	return append([]string{envName(k.name)}, k.env...)
}

// envName is the environment variable of a key: CCDIR_, then the key in
// upper case with dots as underscores.
func envName(key string) string {
	return "CCDIR_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// configType is a kind of value: its name in the docs, its check, and how
// a valid value is shown.
type configType struct {
	name string
	// parse checks s (trimmed) and returns the value the accessors give;
	// its error says what is wanted ("want ...").
	parse func(s string) (any, error)
	// show is how config show prints a valid value (default: as given).
	show func(v any) string
	// list says a YAML list is taken, as the items separated by commas.
	list bool
	// redact says the value may hold a password, never to be printed.
	redact bool
}

var (
	textType = configType{name: "text", parse: func(s string) (any, error) {
		if strings.ContainsAny(s, "\r\n") {
			return nil, errors.New("want one line")
		}
		return s, nil
	}}
	fileType    = configType{name: "file", parse: textType.parse}
	addressType = configType{name: "address", parse: func(s string) (any, error) {
		if s == "" {
			return s, nil
		}
		if err := outbox.CheckAddress(s); err != nil {
			return nil, err
		}
		return s, nil
	}}
	boolType = configType{name: "bool", parse: func(s string) (any, error) {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, errors.New("want true or false")
		}
		return b, nil
	}, show: func(v any) string { return strconv.FormatBool(v.(bool)) }}
	durationType = configType{name: "duration", parse: func(s string) (any, error) {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, errors.New("want a duration such as 72h or 10m")
		}
		return d, nil
	}, show: func(v any) string { return durationText(v.(time.Duration)) }}
	urlType = configType{name: "url", parse: func(s string) (any, error) {
		if s == "" {
			return "", nil
		}
		if err := outbox.CheckURL(s); err != nil {
			if strings.Contains(err.Error(), "contains a password") {
				return nil, errors.New("want no password in the URL: put it in delivery.password_file")
			}
			return nil, errors.New("want a URL: " + outbox.URLForms)
		}
		return s, nil
	}, show: func(v any) string { return redactURL(v.(string)) }, redact: true}
	intervalType = configType{name: "monthly, weekly, daily or N days", parse: func(s string) (any, error) {
		i, err := digest.ParseInterval(s)
		if err != nil {
			return nil, errors.New("want monthly, weekly, daily or a number of days from 1 to 366")
		}
		return i, nil
	}}
	attachType = configType{name: "list of " + strings.Join(export.AttachmentNames, ", ") + "; or none", parse: func(s string) (any, error) {
		// Empty means the default; none means no attachments.
		if s == "" {
			return []string(nil), nil
		}
		names := []string{}
		for _, n := range strings.Split(s, ",") {
			n = strings.TrimSpace(n)
			if n == "" || n == "none" {
				continue
			}
			known := false
			for _, a := range export.AttachmentNames {
				known = known || n == a
			}
			if !known {
				return nil, fmt.Errorf("want a list of %s, or none (%q is none of them)", strings.Join(export.AttachmentNames, ", "), n)
			}
			names = append(names, n)
		}
		return names, nil
	}, show: func(v any) string {
		if names := v.([]string); names != nil && len(names) == 0 {
			return "none"
		}
		return strings.Join(v.([]string), ",")
	}, list: true}
	tlpType = configType{name: "CLEAR, GREEN, AMBER, AMBER+STRICT or RED", parse: func(s string) (any, error) {
		if s == "" {
			return "", nil
		}
		tlp := relay.NormalizeTLP(s)
		if tlp == "" {
			return nil, errors.New("not a TLP label: want CLEAR, GREEN, AMBER, AMBER+STRICT or RED")
		}
		return tlp, nil
	}, show: func(v any) string { return v.(string) }}
	emailType = configType{name: "mail address", parse: func(s string) (any, error) {
		if s == "" {
			return "", nil
		}
		e, err := directory.NormalizeEmail(s)
		if err != nil {
			return nil, errors.New("want a mail address such as ops@secretariat.example")
		}
		return e, nil
	}}
	operatorNameType = configType{name: "name", parse: func(s string) (any, error) {
		if s == "" {
			return "", nil
		}
		n, err := directory.NormalizeOperatorName(s)
		var fe *directory.FieldError
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("want a name of at most %d characters (this one %v)", directory.MaxOperatorName, fe.Err)
		}
		if err != nil {
			return nil, err
		}
		return n, nil
	}}
	fingerprintType = configType{name: "OpenPGP fingerprint", parse: func(s string) (any, error) {
		f := strings.ToUpper(strings.ReplaceAll(s, " ", ""))
		if f == "" {
			return "", nil
		}
		if len(f) != 40 && len(f) != 64 || strings.Trim(f, "0123456789ABCDEF") != "" {
			return nil, errors.New("want a key fingerprint of 40 or 64 hex digits")
		}
		return f, nil
	}}
	algoType = configType{name: "ed25519, rsa3072 or rsa4096", parse: func(s string) (any, error) {
		if s == "" {
			return "", nil
		}
		a, err := keys.ParseAlgo(s)
		if err != nil {
			return nil, fmt.Errorf("want %s, %s or %s", keys.AlgoEd25519, keys.AlgoRSA3072, keys.AlgoRSA4096)
		}
		return string(a), nil
	}}
)

// prefixListType is a list of IP addresses and networks (CIDR), given
// as prefixes: 192.0.2.1 is 192.0.2.1/32, and an IPv4-mapped one is the
// IPv4 prefix (::ffff:192.0.2.0/120 is 192.0.2.0/24).
var prefixListType = configType{name: "list of IP addresses or networks", parse: func(s string) (any, error) {
	var out []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return nil, fmt.Errorf("want IP addresses or networks such as 192.0.2.1 or 2001:db8::/32 (%q is neither)", item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			// The server compares client addresses unmapped: an
			// IPv4-mapped network is the IPv4 network it maps.
			if p.Bits() < 96 {
				return nil, fmt.Errorf("want an IPv4-mapped network (::ffff:a.b.c.d/N) of /96 or longer, or the IPv4 network itself (%q also covers addresses that are not IPv4)", item)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked().String())
	}
	return out, nil
}, show: func(v any) string { return strings.Join(v.([]string), ",") }, list: true}

// lifetimeType is the directory key's lifetime (key.lifetime): years
// (2y, of 365 days each), days (90d), or 0 for none; at most 50 years.
var lifetimeType = configType{name: "lifetime (2y, 90d, or 0: never expires)", parse: func(s string) (any, error) {
	const bad = "want a lifetime such as 2y or 90d (at most 50y), or 0 for a key that never expires"
	s = strings.TrimSpace(s)
	if s == "0" || s == "never" {
		return time.Duration(0), nil
	}
	unit := 24 * time.Hour
	n, ok := strings.CutSuffix(s, "d")
	if y, isY := strings.CutSuffix(s, "y"); isY {
		n, ok, unit = y, true, 365*24*time.Hour
	}
	v, err := strconv.Atoi(n)
	if !ok || err != nil || v < 1 || time.Duration(v)*unit > 50*365*24*time.Hour {
		return nil, errors.New(bad)
	}
	return time.Duration(v) * unit, nil
}, show: func(v any) string { return lifetimeText(v.(time.Duration)) }}

// lifetimeText writes a key lifetime as key.lifetime takes it.
func lifetimeText(d time.Duration) string {
	const year = 365 * 24 * time.Hour
	switch {
	case d == 0:
		return "0"
	case d%year == 0:
		return strconv.Itoa(int(d/year)) + "y"
	}
	return daysText(d)
}

// daysListType is a list of numbers of days, 1 to 3660 (keys.remind_days).
var daysListType = configType{name: "list of numbers of days", parse: func(s string) (any, error) {
	out := []int{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSuffix(strings.TrimSpace(f), "d")
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 3660 {
			return nil, fmt.Errorf("want a list of numbers of days from 1 to 3660, such as 60,30,7 (%q is not one)", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("want a list of numbers of days from 1 to 3660, such as 60,30,7")
	}
	return out, nil
}, show: func(v any) string { return daysListText(v.([]int)) }, list: true}

func daysListText(d []int) string {
	s := make([]string, len(d))
	for i, n := range d {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// intType is a whole number from lo to hi.
func intType(lo, hi int) configType {
	return configType{name: fmt.Sprintf("number, %d to %d", lo, hi), parse: func(s string) (any, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("want a number from %d to %d", lo, hi)
		}
		return n, nil
	}, show: func(v any) string { return strconv.Itoa(v.(int)) }}
}

// listenType is a TCP address host:port, or with unix also unix:PATH.
func listenType(unix bool) configType {
	name, want := "host:port or systemd:NAME", "want host:port or systemd:NAME"
	if unix {
		name, want = "host:port, unix:PATH or systemd:NAME", "want host:port, unix:PATH or systemd:NAME"
	}
	return configType{name: name, parse: func(s string) (any, error) {
		if s == "" {
			return "", nil
		}
		if fdName, ok := strings.CutPrefix(s, systemdPrefix); ok {
			// sd_listen_fds(3): a FileDescriptorName is at most 255
			// printable characters, no colon.
			if fdName == "" || len(fdName) > 255 || strings.ContainsFunc(fdName, func(r rune) bool { return r <= ' ' || r > '~' || r == ':' }) {
				return nil, errors.New(want)
			}
			return s, nil
		}
		if path, ok := strings.CutPrefix(s, "unix:"); ok && unix {
			if path == "" {
				return nil, errors.New(want)
			}
			return s, nil
		}
		_, port, err := net.SplitHostPort(s)
		if err != nil || strings.HasPrefix(s, "unix:") || strings.Contains(port, "/") {
			return nil, errors.New(want)
		}
		return s, nil
	}}
}

// daysType is a duration written in days (90d) or as a Go duration
// (72h, 10m).
var daysType = configType{name: "duration (days: 90d, or 72h)", parse: func(s string) (any, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d < 1 || d > 3660 {
			return nil, errors.New("want a duration such as 90d or 72h")
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return nil, errors.New("want a duration such as 90d or 72h")
	}
	return d, nil
}, show: func(v any) string { return daysText(v.(time.Duration)) }}

// daysText writes d in days when it is whole days, else as durationText.
func daysText(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return durationText(d)
}

// durationText writes d as it would be written in config.yaml: 72h, 10m,
// 1h30m.
func durationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// hiddenValue stands for a value that may hold a password and cannot be
// shown with it hidden.
const hiddenValue = "(not shown: it does not parse, and may hold a password)"

// redactURL hides a password in a URL (one that validation refuses, but
// config show must not print it even then). A URL that does not parse,
// or parses with a '#', or an '@' after its host or in place of one
// ("user:secret@host" parses as scheme "user"), is not shown at all:
// where its password is cannot be told.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || strings.Contains(s, "#") || strings.Contains(u.RawQuery+u.Opaque, "@") {
		// A password with '#' or '?' in it ends the authority early: the
		// rest of it would show in the fragment or the query.
		return hiddenValue
	}
	return u.Redacted()
}

// Where a value comes from.
const (
	fromDefault = "default"
	fromFile    = "config file"
	fromEnv     = "environment"
	fromFlag    = "flag"
)

// configSource is where a value comes from: the default, a config file
// (name is its path), an environment variable (its name) or a flag
// (--name).
type configSource struct {
	kind string
	name string
}

func (s configSource) String() string {
	if s.kind == fromDefault {
		return s.kind
	}
	return s.kind + " " + s.name
}

// configValue is the effective value of a key.
type configValue struct {
	key    *configKey
	raw    string // as given, trimmed
	value  any    // as configType.parse returned it
	source configSource
}

// shown is the value as config show prints it.
func (v configValue) shown() string {
	if v.key.typ.show != nil {
		return v.key.typ.show(v.value)
	}
	return v.raw
}

// setConfigDefaults gives viper the defaults and the environment and flag
// bindings of the table.
func (g *globals) setConfigDefaults(cmd *cobra.Command) error {
	v := g.v
	// Every key is bound to its own variables (envVars), not through
	// viper's AutomaticEnv: that would read a variable named after a
	// section (CCDIR_OPERATOR, operator.name's) as the whole section
	// and hide every key in it.
	for i := range configKeys {
		k := &configKeys[i]
		v.SetDefault(k.name, k.def)
		if err := v.BindEnv(append([]string{k.name}, k.envVars()...)...); err != nil {
			return err
		}
		if k.flag == "" {
			continue
		}
		if f := cmd.Flags().Lookup(k.flag); f != nil {
			if err := v.BindPFlag(k.name, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// readsNoConfig are the commands that read no configuration key: a bad
// value stops them not, it is only warned of. ccdir verify is what an
// auditor runs on a copy of a home, whatever its config.yaml says.
var readsNoConfig = map[string]bool{"ccdir verify": true}

// loadConfig checks every key's effective value and keeps them for the
// accessors. A value of the wrong type is an error naming the key, the
// value and where it came from, with a hint how to fix it. Keys ccdir
// does not know, most often typos, are warned of. inFile says whether a
// config file was read.
func (g *globals) loadConfig(cmd *cobra.Command, inFile bool) error {
	known := map[string]bool{}
	g.config = map[string]configValue{}
	for i := range configKeys {
		k := &configKeys[i]
		known[k.name] = true
		src := g.configSource(cmd, k, inFile)
		raw, err := scalarText(g.v.Get(k.name), k.typ.list)
		shown := fmt.Sprint(g.v.Get(k.name))
		if k.typ.redact {
			shown = hiddenValue
		}
		var val any
		if err == nil {
			raw = strings.TrimSpace(raw)
			if shown = raw; k.typ.redact {
				shown = redactURL(raw)
			}
			val, err = k.typ.parse(raw)
		}
		if err != nil && readsNoConfig[cmd.CommandPath()] {
			// Warned of, and the default taken: this command reads no key.
			g.warnf("%s is %s: %v (from %s; ignored: %s reads no configuration)", k.name, strconv.Quote(shown), err, src, cmd.CommandPath())
			raw, src = k.def, configSource{kind: fromDefault}
			val, err = k.typ.parse(raw)
		}
		if err != nil {
			return withHint(fmt.Errorf("%s is %q: %v (from %s)", k.name, shown, err, src), "%s", fixHint(k, src))
		}
		g.config[k.name] = configValue{key: k, raw: raw, value: val, source: src}
	}
	if inFile {
		for _, k := range g.v.AllKeys() {
			if !known[k] {
				g.warnf("%s: unknown configuration key %s (ignored)", g.configFile, strconv.Quote(k))
			}
		}
	}
	return nil
}

// configSource says where viper took k's value from: a changed flag wins
// over the environment, which wins over the config file.
func (g *globals) configSource(cmd *cobra.Command, k *configKey, inFile bool) configSource {
	if k.flag != "" {
		if f := cmd.Flags().Lookup(k.flag); f != nil && f.Changed {
			return configSource{fromFlag, "--" + k.flag}
		}
	}
	for _, e := range k.envVars() {
		if os.Getenv(e) != "" {
			return configSource{fromEnv, e}
		}
	}
	if inFile && g.v.InConfig(k.name) {
		return configSource{fromFile, g.configFile}
	}
	return configSource{kind: fromDefault}
}

// fixHint says where to fix k's value.
func fixHint(k *configKey, src configSource) string {
	switch src.kind {
	case fromFile:
		return fmt.Sprintf("fix it in %s or in %s", src.name, envName(k.name))
	case fromEnv:
		return fmt.Sprintf("fix or unset %s", src.name)
	case fromFlag:
		return fmt.Sprintf("fix %s", src.name)
	}
	return fmt.Sprintf("set %s in the config file or in %s", k.name, envName(k.name))
}

// scalarText is a value from viper as text. A section, or a list where a
// single value belongs, is an error; a list of single values is taken as
// their text separated by commas if list is true.
func scalarText(x any, list bool) (string, error) {
	switch x := x.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case []any:
		if !list {
			return "", errors.New("want a single value, not a list")
		}
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := scalarText(e, false)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		return "", errors.New("want a single value, not a section")
	}
	return "", fmt.Errorf("want a single value, not %T", x)
}

// isDefault says whether key has its default value, from no source.
func (g *globals) isDefault(key string) bool {
	v, ok := g.config[key]
	if !ok {
		panic("ccdir: configuration key " + key + " is not in configKeys")
	}
	return v.source.kind == fromDefault
}

// configGet is the checked value of key. It panics if the key is not in
// configKeys or holds another type: a mistake in the code, which
// TestConfigAccessors finds.
func configGet[T any](g *globals, key string) T {
	v, ok := g.config[key]
	if !ok {
		panic("ccdir: configuration key " + key + " is not in configKeys")
	}
	x, ok := v.value.(T)
	if !ok {
		panic(fmt.Sprintf("ccdir: configuration key %s holds %T", key, v.value))
	}
	return x
}

// text is the value of a text, file, url or enumeration key.
func (g *globals) text(key string) string { return configGet[string](g, key) }

// number is the value of a number key.
func (g *globals) number(key string) int { return configGet[int](g, key) }

// boolean is the value of a bool key.
func (g *globals) boolean(key string) bool { return configGet[bool](g, key) }

// duration is the value of a duration key.
func (g *globals) duration(key string) time.Duration { return configGet[time.Duration](g, key) }

// numbers is the value of a list of numbers (keys.remind_days).
func (g *globals) numbers(key string) []int { return configGet[[]int](g, key) }

// list is the value of a list key: nil if empty (the default applies),
// empty for none.
func (g *globals) list(key string) []string { return configGet[[]string](g, key) }

// configHelp is a paragraph for a command's help naming the keys that
// start with one of prefixes, with their defaults.
func configHelp(prefixes ...string) string {
	words := []string{"Config:"}
	for i := range configKeys {
		k := &configKeys[i]
		for _, p := range prefixes {
			if strings.HasPrefix(k.name, p) {
				w := k.name
				if k.def != "" {
					w += " (" + k.def + ")"
				}
				words = append(words, w+",")
			}
		}
	}
	words[len(words)-1] = strings.TrimSuffix(words[len(words)-1], ",") + ";"
	words = append(words, strings.Fields("ccdir config show prints their values, docs/configuration.md says what they mean.")...)
	var b strings.Builder
	line := 0
	for i, w := range words {
		if i > 0 && line+1+len(w) > 76 {
			b.WriteByte('\n')
			line = 0
		} else if i > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()
}

// configValues are the effective values, sorted by key.
func (g *globals) configValues() []configValue {
	out := make([]configValue, 0, len(g.config))
	for _, v := range g.config {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key.name < out[j].key.name })
	return out
}
