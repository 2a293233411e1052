#!/usr/bin/env bash
# Prints the directory holding the Kubernetes binaries of KUBE_VERSION, building
# those that are missing first.
#
#   hack/kube-assets.sh                       etcd and kube-apiserver (envtest)
#   hack/kube-assets.sh etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok
#
# The directory is setup-envtest's own cache layout, so assets that setup-envtest
# already downloaded are reused and binaries built here serve setup-envtest too.
# It lives outside the repository, keyed by version, and survives across runs.
# Binaries are built from the Go module proxy: setup-envtest's release host is not
# reachable from this project's machines.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-1.37.2}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${KUBE_ASSETS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest/k8s/${KUBE_VERSION}-linux-amd64}
[ $# -gt 0 ] || set -- etcd kube-apiserver

mkdir -p "$dir"
missing=()
for bin in "$@"; do
  [ -x "$dir/$bin" ] || missing+=("$bin")
done
[ ${#missing[@]} -gt 0 ] || { echo "$dir"; exit 0; }

log() { echo "kube-assets: $*" >&2; }
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# One `go build` for every missing Kubernetes binary: they share most packages.
pkgs=()
for bin in "${missing[@]}"; do
  case $bin in
    etcd) pkgs+=(go.etcd.io/etcd/server/v3) ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl) pkgs+=("k8s.io/kubernetes/cmd/$bin") ;;
    kwok) ;;
    *) log "unknown binary $bin"; exit 2 ;;
  esac
done
if [ ${#pkgs[@]} -gt 0 ]; then
  log "building ${pkgs[*]} (Kubernetes v$KUBE_VERSION); the first build takes about 15 minutes"
  minor=${KUBE_VERSION#*.}; minor=${minor%%.*}
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  (cd "$root/hack/tools/kube" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}")
  # go build names the etcd server's main package after its path: .../server/v3.
  [ ! -e "$tmp/server" ] || mv "$tmp/server" "$tmp/etcd"
fi
if [[ " ${missing[*]} " == *" kwok "* ]]; then
  log "building kwok $KWOK_VERSION"
  GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
fi
for bin in "${missing[@]}"; do
  mv -f "$tmp/$bin" "$dir/$bin"
done
echo "$dir"
