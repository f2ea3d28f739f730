#!/usr/bin/env bash
# Build the project's container images with buildah from our own release
# binaries, and check them. There is no Docker engine (and no registry to pull
# a base image from) on this machine, so the image is assembled from scratch
# the way images/*.Dockerfile describe it for a public CI: the binary, the
# shared libraries it links (glibc, libgcc: what distroless/cc carries), CA
# certificates, and a passwd entry for the non-root user. No shell.
#
# Usage: tests/images/build.sh            (needs root for buildah)
#
# Output: OCI layouts in ${CARGO_TARGET_DIR:-target}/images/<name>.
# Checks, per image: no .env file, no test data or sources, runs as 65532,
# the binary starts (--help) inside the image.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
OUT="$TARGET/images"
export BUILDAH_ISOLATION=chroot
BUILDAH=(buildah --storage-driver vfs)

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v buildah >/dev/null || die "buildah not installed (apt-get install buildah; tests/harness/install-deps.sh does)"
[[ $(id -u) -eq 0 ]] || die "buildah needs root here"

# name | cargo package | binaries | entrypoint binary | default command
IMAGES=(
  "fleet-operator|fleet-operator|fleet-operator|fleet-operator|run"
)
# The workload image: every [[bin]] of the workloads package.
workload_bins="$(grep -A1 '^\[\[bin\]\]' workloads/Cargo.toml | sed -n 's/^name = "\(.*\)"/\1/p' | tr '\n' ' ' | sed 's/ $//')"
if [[ -n "$workload_bins" ]]; then
  IMAGES+=("fleet-workloads|fleet-workloads|$workload_bins|fleet-webhook|")
fi

mkdir -p "$OUT"
for spec in "${IMAGES[@]}"; do
  IFS='|' read -r name package bins entry cmd <<<"$spec"
  log "cargo build --locked --release -p $package"
  cargo build --locked --release -p "$package" --bins

  ctr="$("${BUILDAH[@]}" from scratch)"
  root="$("${BUILDAH[@]}" mount "$ctr")"
  trap '"${BUILDAH[@]}" umount "$ctr" >/dev/null 2>&1 || true; "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT

  mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp"
  chmod 1777 "$root/tmp"
  libs=()
  for b in $bins; do
    install -m 0755 "$TARGET/release/$b" "$root/usr/local/bin/$b"
    while read -r lib; do libs+=("$lib"); done < <(ldd "$TARGET/release/$b" | grep -o '/[^ ]*' | sort -u)
  done
  # Name resolution through NSS (hosts: files dns) needs these at run time.
  for extra in /lib/x86_64-linux-gnu/libnss_dns.so.2 /lib/x86_64-linux-gnu/libnss_files.so.2 /lib/x86_64-linux-gnu/libresolv.so.2; do
    [[ -e "$extra" ]] && libs+=("$extra")
  done
  for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

  "${BUILDAH[@]}" umount "$ctr" >/dev/null
  "${BUILDAH[@]}" config \
    --user 65532:65532 \
    --entrypoint "[\"/usr/local/bin/$entry\"]" \
    --cmd "${cmd:+[\"$cmd\"]}" \
    --label org.opencontainers.image.title="$name" \
    --label org.opencontainers.image.source="https://github.com/example/fleetpipeline" \
    --label org.opencontainers.image.version="$(cargo pkgid -p "$package" | sed 's/.*[#@]//')" \
    "$ctr"
  "${BUILDAH[@]}" commit --quiet "$ctr" "localhost/$name:dev" >/dev/null
  "${BUILDAH[@]}" rm "$ctr" >/dev/null
  trap - EXIT
  rm -rf "${OUT:?}/$name"
  "${BUILDAH[@]}" push --quiet "localhost/$name:dev" "oci:$OUT/$name:dev"
  log "built $name ($(du -sh "$OUT/$name" | cut -f1)) -> $OUT/$name"

  # ---- checks ------------------------------------------------------------
  check="$("${BUILDAH[@]}" from "localhost/$name:dev")"
  croot="$("${BUILDAH[@]}" mount "$check")"
  bad="$(cd "$croot" && find . \( -name '.env*' -o -name '*.pbf' -o -name '*.osm' -o -name '*.csv' -o -name '*.rs' -o -name 'Cargo.toml' -o -path './tests*' -o -path './src*' -o -path './root/*' \) -print)"
  [[ -z "$bad" ]] || die "$name holds files it must not: $bad"
  [[ ! -e "$croot/bin/sh" ]] || die "$name has a shell"
  user="$("${BUILDAH[@]}" inspect --format '{{.OCIv1.Config.User}}' "localhost/$name:dev")"
  [[ "$user" == "65532:65532" ]] || die "$name runs as '$user', not 65532:65532"
  "${BUILDAH[@]}" umount "$check" >/dev/null
  for b in $bins; do
    "${BUILDAH[@]}" run --user 65532:65532 "$check" -- "/usr/local/bin/$b" --help >/dev/null \
      || die "$name: /usr/local/bin/$b --help failed inside the image"
  done
  "${BUILDAH[@]}" rm "$check" >/dev/null
  log "checked $name: no .env, no sources or test data, no shell, user 65532:65532, $bins start"
done
