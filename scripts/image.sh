#!/usr/bin/env bash
# image.sh — builds the container image localhost/vk:VERSION from the Debian packages of
# scripts/package.sh: a minimal bookworm root (mmdebstrap, variant essential) with vk and every
# provider package installed by dpkg as on any Debian system, run as the package's system user
# vk, with vk as the entrypoint; imported with `podman import` (no registry is reachable, so
# nothing is pulled). Prints the image's size and contents.
#
# Usage: scripts/image.sh [DEBS_DIR]   (default: ${CARGO_TARGET_DIR:-target}/debian)
# The image goes to the Podman storage of scripts/podman.sh (CONTAINERS_CONF of
# ${VK_PODMAN_DIR:-$HOME/.cache/vk/podman}), where the tests' Podman service sees it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "image.sh: $*" >&2; exit 1; }
log() { echo "image.sh: $*" >&2; }

for tool in mmdebstrap podman; do
  command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install mmdebstrap podman)"
done
debs=$(cd "${1:-${CARGO_TARGET_DIR:-$root/target}/debian}" && pwd) || fail "no directory of .debs"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/vk/Cargo.toml" | head -n 1)
image=localhost/vk:$version
packages=()
for name in vk vk-provider-mock vk-provider-hyper vk-provider-azure; do
  deb=$debs/${name}_${version}-1_amd64.deb
  [[ -f $deb ]] || fail "$deb is missing (run scripts/package.sh)"
  packages+=("$deb")
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vk-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
includes=$(IFS=,; echo "ca-certificates,systemd-standalone-sysusers,${packages[*]}")
log "installing ${packages[*]##*/} into a bookworm root"
# /usr is merged by mmdebstrap's hook rather than the usrmerge package, which would bring perl.
# Documentation, man pages and locales stay out: nobody reads them in a container. The
# package's sysusers entry makes the user vk; its numeric id becomes the image's USER, so that
# a pod's runAsNonRoot can check it.
mmdebstrap --quiet --variant=essential --format=tar \
  --include="$includes" \
  --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='mkdir -p "$1/var/lib/vk" && chroot "$1" chown vk:vk /var/lib/vk' \
  --customize-hook="chroot \"\$1\" id -u vk > '$work/uid' && chroot \"\$1\" id -g vk > '$work/gid'" \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*' \
  bookworm "$work/rootfs.tar" || fail "mmdebstrap could not make the root"
uid=$(cat "$work/uid") gid=$(cat "$work/gid")

export CONTAINERS_CONF=${VK_PODMAN_DIR:-$HOME/.cache/vk/podman}/containers.conf
[[ -f $CONTAINERS_CONF ]] || unset CONTAINERS_CONF
previous=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
podman import --quiet \
  --change "USER=$uid:$gid" \
  --change 'WORKDIR=/var/lib/vk' \
  --change 'ENV=VK_PLUGIN_DIR=/usr/lib/vk' \
  --change 'ENV=MALLOC_ARENA_MAX=2' \
  --change 'EXPOSE=10250' \
  --change 'ENTRYPOINT=["/usr/bin/vk"]' \
  --change "LABEL=org.opencontainers.image.version=$version" \
  --change 'LABEL=org.opencontainers.image.title=vk' \
  --message "vk $version from ${packages[*]##*/}" \
  "$work/rootfs.tar" "$image" >/dev/null
# The image this one replaces would stay behind untagged.
if [[ -n $previous && $previous != $(podman image inspect --format '{{.Id}}' "$image") ]]; then
  podman rmi "$previous" >/dev/null 2>&1 || true
fi
log "built $image (user vk = $uid:$gid)"
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$image"
podman run --rm "$image" --version
podman run --rm "$image" providers
