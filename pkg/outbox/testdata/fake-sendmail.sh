#!/bin/sh
# A stand-in for /usr/sbin/sendmail: records its arguments (one per line)
# and its standard input in $FAKE_SENDMAIL_DIR, prints $FAKE_SENDMAIL_STDERR
# to standard error and exits with $FAKE_SENDMAIL_EXIT (default 0).
set -eu
dir=${FAKE_SENDMAIL_DIR:?}
n=$(ls "$dir" | grep -c '\.args$' || true)
n=$((n + 1))
for a in "$@"; do printf '%s\n' "$a"; done > "$dir/$n.args"
cat > "$dir/$n.stdin"
if [ -n "${FAKE_SENDMAIL_STDERR:-}" ]; then printf '%s\n' "$FAKE_SENDMAIL_STDERR" >&2; fi
if [ "${FAKE_SENDMAIL_SLEEP:-0}" != 0 ]; then sleep "$FAKE_SENDMAIL_SLEEP"; fi
exit "${FAKE_SENDMAIL_EXIT:-0}"
