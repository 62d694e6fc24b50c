#!/bin/sh
# sync.sh rebuilds this package from the Go release's crypto/tls:
#   1. copy $GOROOT/src/crypto/tls/*.go (no tests, no generate_cert.go);
#   2. point the imports of std-internal packages at the shims in internal/
#      (and golang.org/x/sys/cpu for internal/cpu): the "imports" step;
#   3. apply wstap.patch, the renegotiation patch (PATCH.md lists its hunks).
# Usage: sh sync.sh [GOROOT]   (run from this directory)
# TestForkMatchesGoSource runs steps 1-3 into a temporary directory and fails
# when the result differs from the committed files.
set -eu
goroot=${1:-$(go env GOROOT)}
dst=${DST:-.}
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
if [ "${NOPATCH:-}" = "" ]; then
	patch -s -d "$dst" -p1 <"$(dirname "$0")/wstap.patch"
fi
