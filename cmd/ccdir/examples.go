package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// examples is the Examples section of each command's --help and man page
// (cobra's Example field), keyed by command path, in one table so that a
// new command adds one row here and no command file needs touching.
// Every row is a real invocation, taken from the testscripts in
// testdata/script and the README's tour; "#" starts a comment, a line
// ending in "\" goes on. TestExamples checks that every command that does
// something has a row, and that each line starting with "ccdir " parses:
// the command exists, its flags exist, its arguments are accepted.
var examples = map[string]string{
	"ccdir": `
ccdir init --name "TLD-OPS contact directory" --address ccdir@example.org --passphrase-file ~/.ccdir-pass
ccdir member add pt --org "Associação DNS.PT"
ccdir contact add pt --name "Ana Sousa" --email ana@dns.pt --phone "+351 21 234 5678" --key ana.asc
ccdir verify
ccdir digest send        # for cron, daily: sends only when one is due
ccdir --version`,

	"ccdir init": `
ccdir init --name "TLD-OPS contact directory" --address ccdir@example.org \
      --list-address alerts@example.org --passphrase-file ~/.ccdir-pass
ccdir init --name "TLD-OPS directory" --address ccdir@tldops.example --no-passphrase \
      --operator-email ops@secretariat.example --operator-key ops.asc
ccdir init --name T --address ccdir@tldops.example --algo rsa3072 --passphrase-file pass`,

	"ccdir member add": `
ccdir member add pt --org "Associação DNS.PT"
ccdir member add рф --org "Coordination Center for TLD RU"   # or xn--p1ai
ccdir member add de --org DENIC --country DE`,
	"ccdir member update": `
ccdir member update pt --org "DNS.PT Associação"
ccdir member update se --status inactive`,
	"ccdir member remove": `
ccdir member remove de`,
	"ccdir member show": `
ccdir member show pt
ccdir member show рф --json`,
	"ccdir member list": `
ccdir member list
ccdir member list --json`,

	"ccdir contact add": `
ccdir contact add pt --name "Ana Sousa" --email ana@dns.pt \
      --emergency-phone "+351 912 345 678" --phone "+351 21 234 5678" \
      --lang pt,en --tz Europe/Lisbon --24x7 --key ana.asc
ccdir contact add pt --name "Bea Costa" --email bea@dns.pt --phone "+351 21 234 5679" --key bea.asc --role admin`,
	"ccdir contact update": `
ccdir contact update ana@dns.pt --add-role xn--p1ai:admin
ccdir contact update ana@dns.pt --phone "+351 21 234 0000"
ccdir contact update ana@dns.pt --email ana.sousa@dns.pt   # waits changes.delay: a pending change
ccdir contact update ana@dns.pt --key new.asc --replace \
      --confirmed "fingerprint read out by Ana, phone call to +351 21 234 5678"`,
	"ccdir contact remove": `
ccdir contact remove bruno@dns.pt`,
	"ccdir contact erase": `
ccdir contact erase ana@dns.pt --reason "GDPR art. 17 request 2026-42"
ccdir contact erase --scrub      # after an interrupted erase: vacuum the database again`,
	"ccdir contact show": `
ccdir contact show ana@dns.pt
ccdir contact show ana@dns.pt --json`,
	"ccdir contact list": `
ccdir contact list
ccdir contact list pt --json`,

	"ccdir key import": `
ccdir key import bundle.asc                # keys matched to contacts by email
ccdir key import beanew.asc --replace bea@dns.pt
ccdir key import ana.rev                   # a revocation certificate revokes the key it belongs to
ccdir key import --operator --email ops@secretariat.example ops.asc`,
	"ccdir key check": `
ccdir key check
ccdir key check --days 60 --json`,
	"ccdir key update-uids": `
ccdir key update-uids --passphrase-file ~/.ccdir-pass
ccdir key update-uids --renew --passphrase-file ~/.ccdir-pass   # a later expiry, the same key`,
	"ccdir key revoke-retired": `
ccdir key revoke-retired 0123456789ABCDEF0123456789ABCDEF01234567 --reason "the old key file was found on a stolen laptop"
ccdir key revoke-retired 0123456789ABCDEF0123456789ABCDEF01234567 --reason leaked --revocation-cert /media/safe/directory.rev.asc`,

	"ccdir pubkey": `
ccdir pubkey > directory-key.asc           # gpg --import it, then gpg --verify
ccdir pubkey --wkd /var/www/wkd            # Web Key Directory files for every address
ccdir pubkey --dane                        # OPENPGPKEY records (RFC 7929)`,
	"ccdir rekey": `
ccdir rekey --passphrase-file ~/.ccdir-pass
ccdir rekey --algo rsa3072 --passphrase-file ~/.ccdir-pass
ccdir rekey --revoke-old "the key file was copied off the server" --passphrase-file ~/.ccdir-pass`,

	"ccdir import": `
ccdir import contacts.csv --keys bundle.asc   # all or nothing
ccdir import contacts.csv
ccdir import directory.json --keys bundle.asc  # a JSON export, into a new home: lossless`,
	"ccdir backup": `
ccdir backup -o /var/backups/ccdir/$(date +%F).ccdir   # encrypted to operator.key
ccdir backup --keys-only -o /srv/replica/keys.ccdir    # beside Litestream: after init and every rekey`,
	"ccdir restore": `
ccdir restore backup.ccdir --home /srv/ccdir --secret-key ops.sec.asc --passphrase-file ops.pass
gpg -d backup.ccdir | ccdir restore - --home /srv/ccdir
ccdir restore keys.ccdir --home /srv/ccdir --db /tmp/litestream.db`,
	"ccdir export": `
ccdir export --format json --sign -o directory.json   # + directory.json.asc
ccdir export --format csv -o out.csv
ccdir export --format keys > bundle.asc`,
	"ccdir log": `
ccdir log --since 100
ccdir log --evidence 7 > 7.ev             # the evidence kept with entry 7, as stored
ccdir log --evidence 7 -o ev7.asc         # then: gpg --verify ev7.asc`,
	"ccdir verify": `
ccdir verify
ccdir verify --key 0123456789ABCDEF0123456789ABCDEF01234567 --head 42:9c0e4f
ccdir --home /srv/audit-copy verify --json`,
	"ccdir check": `
ccdir check --gpg digest.eml --pin 0123456789ABCDEF0123456789ABCDEF01234567
ccdir check --gpg digest.eml --pin 0123456789ABCDEF0123456789ABCDEF01234567 --last 41:9c0e4f
ccdir check directory.json --sig directory.json.asc --pin 0123456789ABCDEF0123456789ABCDEF01234567`,
	"ccdir coverage": `
ccdir coverage
ccdir coverage --all --json`,

	"ccdir digest preview": `
ccdir digest preview                 # the digest text as it would go out now
ccdir digest preview --to ana@dns.pt # the whole encrypted mail for one contact`,
	"ccdir digest send": `
ccdir digest send                    # for cron, daily: sends only when one is due
ccdir digest send --force --dry-run  # render and count, send nothing`,
	"ccdir digest status": `
ccdir digest status
ccdir digest status 1 --json`,

	"ccdir ping send": `
ccdir ping send                      # for cron, daily`,
	"ccdir ping status": `
ccdir ping status
ccdir ping status --stale --json`,

	"ccdir pending list": `
ccdir pending list
ccdir pending list --all --json`,
	"ccdir pending approve": `
ccdir pending approve chg-k3mf9a2qzx --confirmed "phoned Ana"`,
	"ccdir pending cancel": `
ccdir pending cancel chg-k3mf9a2qzx`,

	"ccdir report": `
ccdir report                         # for cron, weekly: mailed to the operator
ccdir report --dry-run --since 14d`,

	"ccdir outbox list": `
ccdir outbox list --status failed    # what could not be delivered, and why
ccdir outbox list --kind digest --json`,
	"ccdir outbox retry": `
ccdir outbox retry                   # every failed or deferred message
ccdir outbox retry 2`,
	"ccdir outbox flush": `
ccdir outbox flush                   # for cron, every 10 minutes`,

	"ccdir serve": `
ccdir serve --lmtp unix:/run/ccdir/lmtp.sock
ccdir serve --smtp 127.0.0.1:2525 --lmtp unix:/run/ccdir/lmtp.sock`,
	"ccdir process": `
ccdir process --from ana@dns.pt --to ccdir@example.org < message.eml
# Postfix master.cf: argv=/usr/local/bin/ccdir process --from ${sender} --to ${recipient}`,
	"ccdir alerts": `
ccdir alerts
ccdir alerts --id 3 --json`,

	"ccdir config show": `
ccdir config show
ccdir config show --changed          # only what differs from the defaults, like postconf -n
ccdir config show --json`,
	"ccdir config reference": `
ccdir config reference --output docs/configuration.md   # what go generate ./cmd/ccdir runs`,

	"ccdir version": `
ccdir version
ccdir version --json
ccdir --version`,
	"ccdir man": `
ccdir man /usr/local/share/man/man1   # what scripts/install.sh runs
ccdir man ./man1 && man -l man1/ccdir-contact-add.1`,
	"ccdir help": `
ccdir help contact add`,
	"ccdir completion bash": `
ccdir completion bash > /usr/local/share/bash-completion/completions/ccdir
source <(ccdir completion bash)`,
	"ccdir completion zsh": `
ccdir completion zsh > /usr/local/share/zsh/site-functions/_ccdir`,
	"ccdir completion fish": `
ccdir completion fish > /usr/local/share/fish/vendor_completions.d/ccdir.fish`,
	"ccdir completion powershell": `
ccdir completion powershell > ccdir.ps1`,
}

// installBuildCommands adds to root what installing and running ccdir as
// a program needs: the version command and --version flag, the hidden man
// command, and every command's Examples (the examples table). It runs
// after every other command is added, so that each gets its row.
func installBuildCommands(root *cobra.Command, g *globals) {
	root.AddCommand(newVersionCmd(g), newManCmd(g))
	setVersionFlag(root)
	// cobra adds help and completion at Execute; add them now so that
	// their help gets its examples too.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	setExamples(root)
}

// setExamples sets the Example of cmd and its descendants from the
// examples table, indented as cobra's help shows flags.
func setExamples(cmd *cobra.Command) {
	if ex, ok := examples[cmd.CommandPath()]; ok && cmd.Example == "" {
		lines := strings.Split(strings.TrimSpace(ex), "\n")
		for i, l := range lines {
			lines[i] = "  " + l
		}
		cmd.Example = strings.Join(lines, "\n")
	}
	for _, c := range cmd.Commands() {
		setExamples(c)
	}
}
