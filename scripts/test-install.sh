#!/usr/bin/env bash
# Tests scripts/install.sh: installs into temporary DESTDIRs (PREFIX
# /opt/ccdir, then the default /usr/local) and checks the tree, the
# binary's build info against git, the completion files, the man pages
# (rendered by man -l when man is installed), and that scripts/deps.sh
# refuses a Go older than go.mod's go line, saying what to do.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() {
	passed=$((passed + 1))
	echo "ok: $*"
}
fail() {
	failed=$((failed + 1))
	echo "FAIL: $*" >&2
}
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi
}

# 1. A staged install with another PREFIX.
stage=$tmp/stage
DESTDIR=$stage PREFIX=/opt/ccdir scripts/install.sh >"$tmp/install.out"
p=$stage/opt/ccdir
check "only PREFIX is written under DESTDIR" test "$(cd "$stage" && find . -mindepth 1 -maxdepth 2 | sort | tr '\n' ' ')" = "./opt ./opt/ccdir "
check "the binary, mode 0755" test "$(stat -c %a "$p/bin/ccdir")" = 755
for f in share/bash-completion/completions/ccdir share/zsh/site-functions/_ccdir \
	share/fish/vendor_completions.d/ccdir.fish share/man/man1/ccdir.1 \
	share/man/man1/ccdir-contact-add.1 share/man/man1/ccdir-version.1 share/doc/ccdir/README.md; do
	check "$f, mode 0644" test "$(stat -c %a "$p/$f" 2>/dev/null)" = 644
done
pages=$(find "$p/share/man/man1" -name 'ccdir*.1' | wc -l)
want=$(CCDIR_HOME=$tmp/nohome "$p/bin/ccdir" man "$tmp/man1" | sed -n 's/^wrote \([0-9]*\) .*/\1/p')
check "a man page per command ($pages)" test "$pages" = "$want" -a "$pages" -gt 40
for f in scripts/examples/*; do
	check "example $(basename "$f") in share/doc/ccdir/examples" test -f "$p/share/doc/ccdir/examples/$(basename "$f")"
done
check "the examples run PREFIX/bin/ccdir" bash -c "! grep -rq /usr/local/bin/ccdir '$p/share/doc/ccdir/examples' && { ! grep -rq /usr/local/bin/ccdir scripts/examples || grep -rq /opt/ccdir/bin/ccdir '$p/share/doc/ccdir/examples'; }"

# 2. The binary: trimmed paths, and the build info git gives.
check "built with -trimpath" bash -c "go version -m '$p/bin/ccdir' | grep -q -- '-trimpath=true'"
check "no build path in the binary" bash -c "! grep -q -F '$PWD' '$p/bin/ccdir'"
v=$(CCDIR_HOME=$tmp/nohome "$p/bin/ccdir" version --json)
field() { sed -n "s/^  \"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" <<<"$v"; }
check "version names go-crypto $(field go_crypto)" test "$(field go_crypto)" = "$(sed -n 's|^\s*github.com/ProtonMail/go-crypto \(v\S*\)$|\1|p' go.mod)"
check "version names the Go that built it" test "$(field go)" = "$(go env GOVERSION)"
check "--version prints what version prints" test "$(CCDIR_HOME=$tmp/nohome "$p/bin/ccdir" --version)" = "$(CCDIR_HOME=$tmp/nohome "$p/bin/ccdir" version)"
if [ -d "$(git rev-parse --show-toplevel 2>/dev/null)/.git" ]; then
	check "commit is git's HEAD" test "$(field commit)" = "$(git rev-parse HEAD)"
	check "date is HEAD's commit time" test "$(field date)" = "$(TZ=UTC git show -s --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd HEAD)"
	dirty=false
	[ -z "$(git status --porcelain)" ] || dirty=true
	check "modified is $dirty, as git status says" test "$(field modified)" = "$dirty"
else
	# A git worktree or submodule (.git is a file) or a tarball: the go
	# command stamps no VCS info there, and version says so.
	check "no git checkout: commit unknown" test "$(field commit)" = unknown
	echo "note: not a git checkout with a .git folder (a worktree?): no commit to compare"
fi

# 3. Completion files that the shells accept.
check "bash completion parses and completes ccdir" bash -c "source '$p/share/bash-completion/completions/ccdir' && complete -p ccdir"
if command -v zsh >/dev/null; then check "zsh completion parses" zsh -n "$p/share/zsh/site-functions/_ccdir"; fi
if command -v fish >/dev/null; then check "fish completion parses" fish -n "$p/share/fish/vendor_completions.d/ccdir.fish"; fi

# 4. Man pages that man renders, with their examples.
if command -v man >/dev/null; then
	out=$(MANWIDTH=100 man -l "$p/share/man/man1/ccdir-contact-add.1" 2>&1)
	check "man -l renders ccdir-contact-add(1) with its EXAMPLE" bash -c 'grep -q "^EXAMPLE" <<<"$1" && grep -q "ccdir contact add pt --name \"Ana Sousa\"" <<<"$1"' _ "$out"
else
	echo "note: man is not installed: pages not rendered"
fi

# 5. The default PREFIX, over an earlier install; a relative PREFIX is refused.
DESTDIR=$tmp/stage2 scripts/install.sh >/dev/null
DESTDIR=$tmp/stage2 scripts/install.sh >/dev/null
check "default PREFIX /usr/local, installed twice" test -x "$tmp/stage2/usr/local/bin/ccdir" -a -f "$tmp/stage2/usr/local/share/man/man1/ccdir.1"
check "a relative PREFIX is refused (exit 2)" bash -c "DESTDIR='$tmp/stage3' PREFIX=usr scripts/install.sh; test \$? = 2 && test ! -e '$tmp/stage3'"

# 6. deps.sh refuses a Go older than go.mod's go line, and says what to do.
mkdir -p "$tmp/oldgo"
printf '#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && echo go1.19.8 && exit 0\nexit 1\n' >"$tmp/oldgo/go"
chmod +x "$tmp/oldgo/go"
set +e
msg=$(PATH=$tmp/oldgo:$PATH scripts/deps.sh build 2>&1)
rc=$?
set -e
check "deps.sh refuses Go 1.19 (exit 1)" test "$rc" = 1
check "deps.sh says which Go is needed and how to get it" bash -c 'grep -q "is Go 1.19.8; ccdir needs Go $(sed -n "s/^go //p" go.mod) or newer" <<<"$1" && grep -qE "apt-get install|go.dev/doc/install" <<<"$1"' _ "$msg"

echo "test-install: $passed passed, $failed failed"
[ "$failed" = 0 ]
