#!/bin/sh
# sync.sh rebuilds this package from the Go release's crypto/tls:
#   1. copy $GOROOT/src/crypto/tls/*.go (no tests, no generate_cert.go);
#   2. point the imports of std-internal packages at the shims in internal/
#      (and golang.org/x/sys/cpu for internal/cpu): the "imports" step;
#   3. apply wstap.patch, the renegotiation patch (PATCH.md lists its hunks).
#
#   sh sync.sh [GOROOT]         rewrite this directory (steps 1-3)
#   DST=dir sh sync.sh          write to dir instead
#   sh sync.sh -diff [GOROOT]   print wstap.patch: steps 1-2 against the
#                               files here (after editing them)
#
# TestForkMatchesGoSource runs steps 1-3 into a temporary directory and fails
# when the result differs from the committed files.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mode=sync
if [ "${1:-}" = "-diff" ]; then
	mode=diff
	shift
fi
goroot=${1:-$(go env GOROOT)}
dst=${DST:-$here}
if [ $mode = diff ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	mkdir "$tmp/a" "$tmp/b"
	cp "$here"/*.go "$tmp/b/"
	dst=$tmp/a
fi
shim=github.com/wstap/wstap/internal/renegtls/gotls/internal
for f in "$goroot"/src/crypto/tls/*.go; do
	case $f in *_test.go | */generate_cert.go) continue ;; esac
	sed -e "s#\"crypto/internal/boring\"#\"$shim/boring\"#" \
		-e "/fipsaes \"crypto\/internal\/fips140\/aes\"/d" \
		-e 's#aes\.(\*fipsaes\.Block)#aes#' \
		-e "s#\"crypto/internal/fips140/aes/gcm\"#\"$shim/gcm\"#" \
		-e "s#\"crypto/internal/fips140/tls12\"#\"$shim/tls12\"#" \
		-e "s#\"crypto/internal/fips140/tls13\"#\"$shim/tls13\"#" \
		-e "s#\"crypto/tls/internal/fips140tls\"#\"$shim/fips140tls\"#" \
		-e "s#\"internal/godebug\"#\"$shim/godebug\"#" \
		-e "s#\"internal/byteorder\"#\"$shim/byteorder\"#" \
		-e 's#"internal/cpu"#"golang.org/x/sys/cpu"#' \
		"$f" >"$dst/$(basename "$f")"
done
gofmt -w "$dst"/*.go
if [ $mode = diff ]; then
	cd "$tmp"
	for f in b/*.go; do
		n=$(basename "$f")
		[ -e "a/$n" ] || : >"a/$n"
		diff -u --label "a/$n" --label "b/$n" "a/$n" "b/$n" || true
	done
	exit 0
fi
patch -s -d "$dst" -p1 <"$here/wstap.patch"
