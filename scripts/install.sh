#!/usr/bin/env bash
# Builds ccdir and installs it, as every Unix installer does:
#
#   scripts/install.sh                          # into /usr/local (needs root)
#   PREFIX=$HOME/.local scripts/install.sh      # for one user
#   DESTDIR=/tmp/stage scripts/install.sh       # staged, for a package
#
# PREFIX (default /usr/local) is where ccdir will live; DESTDIR (default
# empty) is prepended to every path written, so a package build stages the
# tree without touching the system. Installed:
#
#   PREFIX/bin/ccdir                                      the binary
#   PREFIX/share/man/man1/ccdir*.1                        a man page per command
#   PREFIX/share/bash-completion/completions/ccdir        bash completion
#   PREFIX/share/zsh/site-functions/_ccdir                zsh completion
#   PREFIX/share/fish/vendor_completions.d/ccdir.fish     fish completion
#   PREFIX/share/doc/ccdir/examples/                      cron, systemd and Postfix examples
#
# The examples are copied, never activated: no unit is enabled, no cron
# file or Postfix configuration is written. Their /usr/local/bin/ccdir is
# rewritten to PREFIX/bin/ccdir.
#
# The build is go build -trimpath (no build paths in the binary) with the
# build info Go records: in a git checkout, ccdir version names the commit
# and its date. Run it as the user who builds (root needs Go on its PATH:
# sudo env PATH="$PATH" scripts/install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
case $PREFIX in
/*) ;;
*)
	echo "scripts/install.sh: PREFIX must be an absolute path, not $PREFIX" >&2
	exit 2
	;;
esac
PREFIX=${PREFIX%/}

scripts/deps.sh build # gcc for cgo (SQLite), and a Go that is new enough

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# -buildvcs=auto: the commit and its date when this is a git checkout,
# whatever GOFLAGS says; nothing (ccdir version says "unknown") elsewhere.
go build -trimpath -buildvcs=auto -o "$work/ccdir" ./cmd/ccdir
# No home or configuration of the user's is read for these.
export CCDIR_HOME=$work/nohome CCDIR_CONFIG=
"$work/ccdir" man "$work/man1" >/dev/null
"$work/ccdir" completion bash >"$work/ccdir.bash"
"$work/ccdir" completion zsh >"$work/_ccdir"
"$work/ccdir" completion fish >"$work/ccdir.fish"

root=$DESTDIR$PREFIX
install -d -m 0755 "$root/bin" "$root/share/man/man1" \
	"$root/share/bash-completion/completions" "$root/share/zsh/site-functions" \
	"$root/share/fish/vendor_completions.d" "$root/share/doc/ccdir/examples"
install -m 0755 "$work/ccdir" "$root/bin/ccdir"
install -m 0644 "$work"/man1/*.1 "$root/share/man/man1/"
install -m 0644 "$work/ccdir.bash" "$root/share/bash-completion/completions/ccdir"
install -m 0644 "$work/_ccdir" "$root/share/zsh/site-functions/_ccdir"
install -m 0644 "$work/ccdir.fish" "$root/share/fish/vendor_completions.d/ccdir.fish"
for f in scripts/examples/*; do
	[ -f "$f" ] || continue
	sed "s|/usr/local/bin/ccdir|$PREFIX/bin/ccdir|g" "$f" >"$work/example"
	install -m 0644 "$work/example" "$root/share/doc/ccdir/examples/$(basename "$f")"
done
install -m 0644 README.md "$root/share/doc/ccdir/README.md"

pages=$(ls "$work"/man1/*.1 | wc -l)
echo "installed $PREFIX/bin/ccdir, $pages man pages, bash/zsh/fish completion and the examples${DESTDIR:+ under $DESTDIR}"
"$root/bin/ccdir" version | sed 's/^/  /'
echo "next: man ccdir; the examples in $PREFIX/share/doc/ccdir/examples (nothing was enabled)"
