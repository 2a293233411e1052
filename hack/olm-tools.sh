#!/usr/bin/env bash
# Prints the directory holding Operator Lifecycle Manager's `olm` and `catalog`
# and operator-registry's `opm`, building them first if any is missing.
#
#   hack/olm-tools.sh          the directory of olm, catalog and opm
#   hack/olm-tools.sh --crds   OLM's CustomResourceDefinitions (deploy/chart/crds)
#
# The versions are those hack/tools/olm/go.mod requires; the binaries are cached
# outside the repository under a directory named after both, so a version bump
# builds afresh and nothing stale is reused.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
module="$root/hack/tools/olm"
olm_mod=github.com/operator-framework/operator-lifecycle-manager
opm_mod=github.com/operator-framework/operator-registry

if [ "${1:-}" = "--crds" ]; then
  (cd "$module" && go mod download "$olm_mod")
  echo "$(cd "$module" && go list -m -f '{{.Dir}}' "$olm_mod")/deploy/chart/crds"
  exit 0
fi

versions=$(cd "$module" && go list -m -f '{{.Version}}' "$olm_mod" "$opm_mod")
olm_version=$(sed -n 1p <<<"$versions")
opm_version=$(sed -n 2p <<<"$versions")
cache=${TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bitcoin-operator/tools}
dir="$cache/olm-$olm_version-opm-$opm_version"

if [ -x "$dir/olm" ] && [ -x "$dir/catalog" ] && [ -x "$dir/opm" ]; then
  echo "$dir"
  exit 0
fi

mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "olm-tools: building olm and catalog $olm_version, opm $opm_version; the first build takes about 5 minutes" >&2
# One `go build` for the three: they share most packages. containers_image_openpgp
# verifies image signatures in Go instead of with the gpgme C library; without cgo,
# opm's deprecated SQLite catalogs do not work, and this project uses only
# file-based ones.
# The version variables make `opm version` and `olm --version` tell what they are.
ldflags="-s -w -X $opm_mod/cmd/opm/version.opmVersion=$opm_version -X $olm_mod/pkg/version.OLMVersion=${olm_version#v}"
(cd "$module" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" \
  -tags "json1 netgo osusergo containers_image_openpgp" -o "$tmp/" \
  "$olm_mod/cmd/olm" "$olm_mod/cmd/catalog" "$opm_mod/cmd/opm")
mv -f "$tmp/olm" "$tmp/catalog" "$tmp/opm" "$dir/"
echo "$dir"
