#!/usr/bin/env bash
# Installs the Debian packages vk's scripts need and a fresh machine may lack: openssl (the
# control plane's PKI) and curl; with `--tests`, also Podman, runc and busybox-static (the engine
# and the local image behind the hyper provider's tests). Go and Rust cannot be installed here.
set -euo pipefail

fail() { echo "install-deps.sh: $*" >&2; exit 1; }

command -v go >/dev/null || fail "go is missing; install Go (https://go.dev/dl/) first"
command -v cargo >/dev/null || fail "cargo is missing; install Rust (https://rustup.rs) first"

declare -A package_of=([openssl]=openssl [curl]=curl)
if [[ ${1:-} == --tests ]]; then
  package_of+=([podman]=podman [runc]=runc [busybox]=busybox-static)
fi
missing=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null || missing+=("${package_of[$tool]}")
done
((${#missing[@]})) || exit 0

sudo=()
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null || fail "missing ${missing[*]}, and not root to install them"
  sudo=(sudo)
fi
echo "install-deps.sh: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null \
  || fail "apt-get could not install ${missing[*]}"
