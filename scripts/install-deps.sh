#!/usr/bin/env bash
# Installs the Debian packages vk's scripts need and a fresh machine may lack: openssl (the
# control plane's PKI) and curl; with `--package`, the packaging tools of scripts/package.sh and
# scripts/package-test.sh (dpkg-dev, binutils, lintian, mmdebstrap, systemd for systemd-analyze,
# and cargo-deb from crates.io, pinned, into ~/.cargo/bin); with `--tests`, all of that and
# Podman, runc and busybox-static (the engine and the local image behind the hyper provider's
# tests), and iproute2, nftables and procps (metrics-server's network namespace, see
# scripts/cluster/metrics-server.sh). Go and Rust cannot be installed here.
set -euo pipefail

# cargo-deb is pinned so that every machine builds the same packages.
cargo_deb_version=3.8.0

fail() { echo "install-deps.sh: $*" >&2; exit 1; }

command -v go >/dev/null || fail "go is missing; install Go (https://go.dev/dl/) first"
command -v cargo >/dev/null || fail "cargo is missing; install Rust (https://rustup.rs) first"

declare -A package_of=([openssl]=openssl [curl]=curl)
packaging=false
if [[ ${1:-} == --package || ${1:-} == --tests ]]; then
  packaging=true
  package_of+=([dpkg-shlibdeps]=dpkg-dev [objcopy]=binutils [lintian]=lintian
    [mmdebstrap]=mmdebstrap [systemd-analyze]=systemd)
fi
if [[ ${1:-} == --tests ]]; then
  package_of+=([podman]=podman [runc]=runc [busybox]=busybox-static)
  package_of+=([ip]=iproute2 [nft]=nftables [sysctl]=procps)
fi

install_cargo_deb() {
  [[ $(cargo deb --version 2>/dev/null) == *" $cargo_deb_version"* ]] && return
  echo "install-deps.sh: installing cargo-deb $cargo_deb_version (cargo install, a few minutes)"
  cargo install --quiet --locked --version "$cargo_deb_version" cargo-deb \
    || fail "cargo install cargo-deb $cargo_deb_version failed"
}

missing=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null || missing+=("${package_of[$tool]}")
done
if ((${#missing[@]} == 0)); then
  if $packaging; then install_cargo_deb; fi
  exit 0
fi

sudo=()
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null || fail "missing ${missing[*]}, and not root to install them"
  sudo=(sudo)
fi
echo "install-deps.sh: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null \
  || fail "apt-get could not install ${missing[*]}"
if $packaging; then install_cargo_deb; fi
