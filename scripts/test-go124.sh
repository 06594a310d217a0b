#!/usr/bin/env bash
# Builds and tests ccdir with the oldest Go that go.mod allows, the one
# Debian 13 ships (golang-1.24-go): go vet, go build and every test
# (without -race), so that a change needing a newer Go fails here, not on
# a user's machine. The Go comes from Debian 13's own package, fetched
# with apt-get download into a private apt state and unpacked into a cache
# folder (CCDIR_GO124_DIR, default ~/.cache/ccdir/go1.24): nothing of the
# system's apt configuration or packages changes. GOTOOLCHAIN=local: that
# Go, never one it would fetch.
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' go.mod)
case $want in
1.24 | 1.24.*) ;;
*)
	echo "scripts/test-go124.sh: go.mod says go $want, not 1.24: update this script (and docs/ARCHITECTURE.md, Build)" >&2
	exit 1
	;;
esac

dir=${CCDIR_GO124_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ccdir/go1.24}
goroot=$dir/root/usr/lib/go-1.24
if ! GOTOOLCHAIN=local "$goroot/bin/go" version >/dev/null 2>&1; then
	if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
		echo "scripts/test-go124.sh: skipped: no apt-get/dpkg-deb to fetch Debian 13's Go 1.24 (set CCDIR_GO124_DIR to a folder holding root/usr/lib/go-1.24)" >&2
		exit 0
	fi
	echo "scripts/test-go124.sh: fetching Debian 13's golang-1.24-go into $dir" >&2
	rm -rf "$dir"
	mkdir -p "$dir/lists/partial" "$dir/debs" "$dir/root"
	echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main' >"$dir/sources.list"
	apt=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$dir/lists"
		-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root)
	apt-get "${apt[@]}" update -qq
	(cd "$dir/debs" && apt-get "${apt[@]}" download -qq golang-1.24-go golang-1.24-src)
	for d in "$dir"/debs/*.deb; do dpkg-deb -x "$d" "$dir/root"; done
	rm -rf "$dir/debs" "$dir/lists"
fi

export PATH=$goroot/bin:$PATH GOTOOLCHAIN=local
echo "scripts/test-go124.sh: $(go version)"
go vet ./...
go build -o /dev/null ./cmd/ccdir
go test -count=1 -p 1 -timeout 30m ./...
echo "scripts/test-go124.sh: ccdir builds, vets and passes its tests with $(go env GOVERSION)"
