#!/usr/bin/env bash
# chaos.sh — vk's fault suite: kills, freezes and restarts vk, the apiserver, etcd and the Podman
# engine in the middle of rollouts, on a real control plane, with the mock provider and with hyper
# on Podman, and checks that no pod is lost, duplicated or stuck and that vk recovers in time.
# Separate from scripts/test.sh because it takes minutes (about 15 on a quiet machine).
#
# Usage: scripts/chaos.sh [--scenario NAME[/PROVIDER]]... [--list]
#   --scenario S   run only S (repeatable), e.g. kill9, apiserver-freeze/mock (see --list)
#
# What it does: installs missing packages (scripts/install-deps.sh --tests), builds the control
# plane (scripts/cluster/build.sh), vk, libvk_mock.so, libvk_hyper.so and the suite's binary
# (tests/src/bin/chaos); starts a Podman service of its own (state in target/chaos/podman, so that
# stopping and freezing it leaves other users of scripts/podman.sh alone) and stops it on exit;
# the binary starts a fresh control plane (torn down on exit however it ends, see
# tests/src/cluster.rs) and runs each scenario with its own vk node and namespace.
# The table is printed and written with every figure to target/chaos/<timestamp>.json; logs of vk
# and the control plane are in target/vk-tests/<run>/. Exits non-zero if any scenario failed.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "chaos.sh: $*" >&2; exit 1; }
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; }

target=${CARGO_TARGET_DIR:-$PWD/target}
if [[ ${1:-} == --list ]]; then
  cargo run -q -p vk-tests --bin chaos -- --list
  exit 0
fi

scripts/install-deps.sh --tests || fail "missing tools (see README.md, 'Set up')"
echo "chaos.sh: control-plane binaries" >&2
scripts/cluster/build.sh >/dev/null
echo "chaos.sh: building vk, the mock and hyper providers and the suite" >&2
cargo build -q -p vk -p vk-mock -p vk-hyper
cargo build -q -p vk-tests --bin chaos

# A Podman service of this run alone: the scenarios stop and SIGSTOP it.
export VK_PODMAN_DIR=$target/chaos/podman
mkdir -p "$VK_PODMAN_DIR"
podman_up=$(scripts/podman.sh up) || fail "scripts/podman.sh up failed"
echo "$podman_up" >&2
trap 'scripts/podman.sh down' EXIT

"$target/debug/chaos" "$@"
