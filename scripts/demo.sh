#!/usr/bin/env bash
# The ccdir demo: builds ccdir, makes a demo home (demo/home) with 20 sample
# ccTLDs and their contacts, whose OpenPGP keys are generated on the spot by
# GnuPG in a throw-away keyring (demo/gnupg) — TEST DATA ONLY: the people,
# addresses and keys are invented. Then it runs verify, coverage, a signed
# export that gpg --verify accepts, and sends the encrypted digest into a
# maildir (demo/home/mail); gpg decrypts one message and checks its
# signature.
#
# Nothing leaves this machine. Run it again to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/deps.sh

demo=$root/demo
rm -rf "$demo"
mkdir -p "$demo"
export CCDIR_HOME=$demo/home
export GNUPGHOME=$demo/gnupg
mkdir -m 700 "$GNUPGHOME"
trap 'gpgconf --kill all >/dev/null 2>&1 || true' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "build"
run go build -o "$demo/ccdir" ./cmd/ccdir
ccdir=$demo/ccdir

say "create the directory (demo key without passphrase)"
run "$ccdir" init --name "TLD-OPS demo directory" --address ccdir@tldops.example \
	--list-address alerts@tldops.example --no-passphrase

say "generate test-only keys for the sample contacts (gpg, ed25519/cv25519)"
# tld|org|name|email|phones|role|languages|timezone|24x7
contacts=$(cat <<'DATA'
pt|Associação DNS.PT|Ana Sousa|ana.sousa@dns-pt.example|emergency:+351 912 345 678;+351 21 234 5678|security|pt;en|Europe/Lisbon|yes
pt|Associação DNS.PT|João Conceição|joao@dns-pt.example|+351 21 234 5679|admin|pt;en;es|Europe/Lisbon|no
br|NIC.br|Luíza Gonçalves|csirt@nic-br.example|emergency:+55 11 96123-4567;+55 11 2345-6789|security|pt-BR;en|America/Sao_Paulo|yes
nl|SIDN|Pieter de Vries|security@sidn.example|+31 10 123 4567|security|nl;en|Europe/Amsterdam|yes
jp|JPRS|佐藤 花子|security@jprs.example|+81 3-1234-5678|security|ja;en|Asia/Tokyo|yes
de|DENIC eG|Jürgen Weiß|cert@denic.example|+49 30 123456|security|de;en|Europe/Berlin|yes
uk|Nominet UK|Olivia Hughes|security@nominet.example|+44 121 234 5678|security|en|Europe/London|yes
fr|Afnic|Élodie Marchand|cert@afnic.example|+33 1 23 45 67 89|security|fr;en|Europe/Paris|no
ca|CIRA|Liam Tremblay|security@cira.example|+1 506-234-5678|security|en;fr|America/Toronto|yes
cl|NIC Chile|Camila Muñoz|seguridad@nic-cl.example|+56 2 2123 4567|security|es;en|America/Santiago|no
mx|NIC México|Diego Hernández|seguridad@nic-mx.example|+52 222 123 4567|security|es;en|America/Mexico_City|yes
za|ZA Central Registry|Thandiwe Nkosi|security@zacr.example|+27 10 123 4567|security|en;zu|Africa/Johannesburg|yes
ke|KeNIC|Wanjiru Kamau|security@kenic.example|+254 20 2012345|security|en;sw|Africa/Nairobi|no
in|NIXI|Priya Raghunathan|security@nixi.example|+91 81234 56789|security|en;hi;ta|Asia/Kolkata|yes
cn|CNNIC|王伟|security@cnnic.example|+86 10 1234 5678|security|zh;en|Asia/Shanghai|yes
ru|Coordination Center for TLD RU|Иван Петров|security@cctld-ru.example|+7 912 345-67-89|security|ru;en|Europe/Moscow|yes
рф|Coordination Center for TLD RU|Иван Петров|security@cctld-ru.example|+7 912 345-67-89|security|ru;en|Europe/Moscow|yes
ch|SWITCH|Lukas Meier|cert@switch.example|+41 21 234 56 78|security|de;fr;en|Europe/Zurich|yes
se|Internetstiftelsen|Astrid Lindqvist|security@iis.example|+46 8 12 34 56|security|sv;en|Europe/Stockholm|no
nz|InternetNZ|Aroha Ngata|security@internetnz.example|+64 3 234 5678|security|en;mi|Pacific/Auckland|yes
au|auDA|Jack Wilson|security@auda.example|+61 2 1234 5678|security|en|Australia/Sydney|yes
eg|National Telecom Regulatory Authority|أحمد حسن|security@ntra-eg.example|+20 2 34567890|security|ar;en|Africa/Cairo|no
sa|SaudiNIC|فاطمة العتيبي|security@saudinic.example|+966 11 234 5678|security|ar;en|Asia/Riyadh|yes
DATA
)
csv=$demo/contacts.csv
echo "tld,org,name,email,phones,role,languages,timezone,24x7" >"$csv"
declare -A made=()
while IFS='|' read -r tld org name email phones role langs tz always; do
	printf '"%s","%s","%s","%s","%s","%s","%s","%s","%s"\n' "$tld" "$org" "$name" "$email" "$phones" "$role" "$langs" "$tz" "$always" >>"$csv"
	if [ -z "${made[$email]:-}" ]; then
		gpg --batch --quiet --passphrase '' --quick-gen-key "$name <$email>" future-default default 2y 2>/dev/null
		made[$email]=1
	fi
done <<<"$contacts"
gpg --batch --armor --export >"$demo/contacts-keys.asc"
echo "made ${#made[@]} test keys into $demo/contacts-keys.asc"

say "import the contacts and their keys (one signed ledger entry per change)"
run "$ccdir" import "$csv" --keys "$demo/contacts-keys.asc"

say "a contact added by hand, without a key yet"
run "$ccdir" contact add be --name "Sophie Peeters" --email security@dnsbelgium.example --phone "+32 12 34 56 78" --lang nl,fr,en --tz Europe/Brussels ||
	echo "(refused as expected, and nothing changed: .be is not a member yet)"
run "$ccdir" member add be --org "DNS Belgium"
run "$ccdir" contact add be --name "Sophie Peeters" --email security@dnsbelgium.example --phone "+32 12 34 56 78" --lang nl,fr,en --tz Europe/Brussels

say "the directory"
run "$ccdir" member list
run "$ccdir" member show pt

say "verify: replay the ledger, check every hash and signature"
run "$ccdir" verify

say "coverage of the delegated ccTLDs (first lines)"
"$ccdir" coverage >"$demo/coverage.txt"
head -n 8 "$demo/coverage.txt"

say "keys that need attention"
run "$ccdir" key check

say "signed export, checked by GnuPG with the directory key"
run "$ccdir" export --format json --sign -o "$demo/directory.json"
"$ccdir" pubkey >"$demo/directory-key.asc"
gpg --batch --quiet --import "$demo/directory-key.asc"
run gpg --batch --verify "$demo/directory.json.asc" "$demo/directory.json"

say "send the digest: one encrypted, signed PGP/MIME mail per contact, into the maildir"
run "$ccdir" digest send
run "$ccdir" digest status
echo "a second run in the same month sends nothing:"
run "$ccdir" digest send

say "open one digest as its recipient would: gpg decrypts it and checks the signature"
msg=$(grep -l "^To: .*ana.sousa@dns-pt.example" "$CCDIR_HOME"/mail/new/* | head -n 1)
echo "message: $msg"
sed -n '1,/^$/p' "$msg"
gpg --batch --decrypt "$msg" >"$demo/digest.eml" 2>"$demo/gpg-decrypt.txt"
cat "$demo/gpg-decrypt.txt"
# The decrypted entity is multipart/signed (RFC 3156): check the signature
# over its first part with gpg too.
"$ccdir" pubkey >/dev/null
python3 - "$demo/digest.eml" "$demo" <<'PY'
import re, sys
data = open(sys.argv[1], 'rb').read()
boundary = re.search(rb'boundary="([^"]+)"', data).group(1)
parts = data.split(b'--' + boundary)
signed = parts[1][2:-2]                      # without the CRLFs around the boundary
sig = parts[2].split(b'\r\n\r\n', 1)[1]
open(sys.argv[2] + '/digest-part1', 'wb').write(signed)
open(sys.argv[2] + '/digest-part1.asc', 'wb').write(sig)
PY
run gpg --batch --verify "$demo/digest-part1.asc" "$demo/digest-part1"
echo "the first lines of the digest (quoted-printable decoded):"
python3 - "$demo/digest-part1" <<'PY'
import email, sys
from email import policy
m = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=policy.default)
print("Subject (protected):", m['Subject'])
body = next(p for p in m.walk() if p.get_content_type() == 'text/plain')
print("\n".join(body.get_content().splitlines()[:24]))
print("attachments:", ", ".join(p.get_filename() for p in m.walk() if p.get_filename()))
PY

say "done"
echo "demo home: $CCDIR_HOME   (try: CCDIR_HOME=$CCDIR_HOME $ccdir log)"
