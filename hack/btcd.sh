#!/usr/bin/env bash
# Prints the path of the btcd binary of BTCD_VERSION, building it first if it is
# missing.
#
#   hack/btcd.sh        e.g. ~/.cache/bitcoin-operator/tools/btcd-v0.25.0/btcd
#
# btcd (github.com/btcsuite/btcd), a full Bitcoin node in Go, stands in for bitcoind
# in the real-node tests and the demo: bitcoind cannot be had on this project's
# machines, and btcd speaks the same P2P protocol. It is built from the Go module
# proxy through hack/tools/btcd, into a cache outside the repository keyed by version.
set -euo pipefail

BTCD_VERSION=${BTCD_VERSION:-v0.25.0}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${BTCD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bitcoin-operator/tools/btcd-$BTCD_VERSION}
[ -x "$dir/btcd" ] && { echo "$dir/btcd"; exit 0; }

# The version is pinned by hack/tools/btcd/go.mod: refuse to label another one.
pinned=$(cd "$root/hack/tools/btcd" && go list -m -f '{{.Version}}' github.com/btcsuite/btcd)
if [ "$pinned" != "$BTCD_VERSION" ]; then
  echo "btcd: hack/tools/btcd pins $pinned, not $BTCD_VERSION" >&2
  exit 2
fi
echo "btcd: building btcd $BTCD_VERSION" >&2
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$root/hack/tools/btcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/" github.com/btcsuite/btcd)
mv -f "$tmp/btcd" "$dir/btcd"
echo "$dir/btcd"
