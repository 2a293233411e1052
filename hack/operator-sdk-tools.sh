#!/usr/bin/env bash
# Prints the directory holding operator-sdk and scorecard-test of the version that
# hack/tools/operator-sdk/go.mod requires, building them first if either is missing.
#
#   hack/operator-sdk-tools.sh        -> ~/.cache/bitcoin-operator/tools/operator-sdk-v1.33.0
#
# Both come from hack/tools/operator-sdk, whose go.mod pins the version; the
# directory lives outside the repository, keyed by version, like kube-assets.sh's.
# scorecard-test is the runner inside the scorecard's test image: built here, it
# runs the bundle tests without a cluster or a container runtime (make scorecard-local).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mod=$root/hack/tools/operator-sdk
# Two of the pins in operator-sdk's replace block have no entry in the checksum database.
export GONOSUMDB=k8s.io/kube-openapi,sigs.k8s.io/kubebuilder
# The version is the one hack/tools/operator-sdk/go.mod requires: the cache key is the
# version that is actually built.
OPERATOR_SDK_VERSION=$(cd "$mod" && go list -m -f '{{.Version}}' github.com/operator-framework/operator-sdk)
dir=${OPERATOR_SDK_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bitcoin-operator/tools/operator-sdk-$OPERATOR_SDK_VERSION}

if [ -x "$dir/operator-sdk" ] && [ -x "$dir/scorecard-test" ]; then
  echo "$dir"
  exit 0
fi

echo "operator-sdk-tools: building operator-sdk and scorecard-test $OPERATOR_SDK_VERSION; the first build takes a few minutes" >&2
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The same values as operator-sdk's release build: generate bundle stamps
# Version into the bundle's builder annotations, and ImageVersion is the
# scorecard-test image tag that `operator-sdk scorecard` runs.
pkg=github.com/operator-framework/operator-sdk/internal/version
ldflags="-s -w -X $pkg.Version=$OPERATOR_SDK_VERSION -X $pkg.GitVersion=$OPERATOR_SDK_VERSION"
ldflags+=" -X $pkg.ImageVersion=$OPERATOR_SDK_VERSION -X $pkg.KubernetesVersion=v1.27.0"
# One `go build` for both: they share most packages.
(cd "$mod" && CGO_ENABLED=0 \
  go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
    github.com/operator-framework/operator-sdk/cmd/operator-sdk \
    github.com/operator-framework/operator-sdk/images/scorecard-test)
mv -f "$tmp/operator-sdk" "$tmp/scorecard-test" "$dir/"
echo "$dir"
