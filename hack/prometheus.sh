#!/usr/bin/env bash
# Prints the directory holding Prometheus' `prometheus` and `promtool` of
# PROMETHEUS_VERSION, building them first if either is missing.
#
#   hack/prometheus.sh        e.g. ~/.cache/bitcoin-operator/tools/prometheus-v0.316.0
#
# The alert rules are checked and unit-tested with promtool, and test/prometheus and
# `make demo` run a real Prometheus server. Both are built from the Go module proxy
# (github.com/prometheus/prometheus, whose Go module versions are v0.3xx.y for
# Prometheus 3.x), into a cache outside the repository keyed by version. `go install
# pkg@version` works for this module (its go.mod has no replace directive), so no
# tools module is needed. The server is built without its web UI's assets, which
# are not Go code: its HTTP API, which the tests use, needs none.
set -euo pipefail

PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}
dir=${PROMETHEUS_DIR:-${TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bitcoin-operator/tools}/prometheus-$PROMETHEUS_VERSION}
if [ -x "$dir/prometheus" ] && [ -x "$dir/promtool" ]; then
  echo "$dir"
  exit 0
fi

echo "prometheus: building prometheus and promtool $PROMETHEUS_VERSION; the first build takes about 12 minutes of CPU (6 on two idle cores)" >&2
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# One go install for both: they share most packages. remove_all_sd leaves out every
# service discovery but file and HTTP (the cloud SDKs are most of the build: 22 minutes
# of CPU with them, 12 without); the tests and the demo scrape a static target.
GOBIN="$tmp" GOFLAGS="${GOFLAGS:-} -buildvcs=false" go install -trimpath -tags remove_all_sd -ldflags "-s -w" \
  "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
mv -f "$tmp/prometheus" "$tmp/promtool" "$dir/"
echo "$dir"
