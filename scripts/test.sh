#!/usr/bin/env bash
# Runs every check and test of vk: formatting, lints, the build of the workspace and of every
# provider library, loading each library through `vk providers`, all unit and integration
# tests (the integration tests start a real control plane, built once from Go modules and cached
# under $HOME/.cache/vk; tests/tests/chart.rs lints the Helm chart and dry-runs it against the
# apiserver), and the Debian packages: built and checked (scripts/package.sh), then
# installed and run on a clean Debian root (scripts/package-test.sh); last the container image
# made from them (scripts/image.sh), installed by the Helm chart with a hot standby on a node
# of Podman containers (tests/tests/incluster.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test.sh: $*" >&2; exit 1; }
scripts/install-deps.sh --tests || fail "missing tools (see README.md, 'Set up')"

started=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - started ))s)"; }

step "control-plane binaries, metrics-server and helm"
scripts/cluster/build.sh >/dev/null
scripts/cluster/build.sh metrics-server >/dev/null
scripts/cluster/build.sh helm >/dev/null

step "podman service and test image"
podman_up=$(scripts/podman.sh up) || fail "scripts/podman.sh up failed"
echo "$podman_up"
# The service this run started stops with it, whatever the outcome.
[[ $podman_up == *"service up"* ]] && trap 'scripts/podman.sh down' EXIT

step "cargo fmt"
cargo fmt --all -- --check || fail "cargo fmt found unformatted code (run cargo fmt --all)"

step "cargo build"
cargo build --workspace --all-targets

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "provider libraries"
target=${CARGO_TARGET_DIR:-target}/debug
"$target/vk" providers --plugin-dir "$target" | tee /dev/stderr | grep -q '^mock ' \
  || fail "vk providers did not list the mock provider"
if "$target/vk" providers --plugin-dir "$target" | awk 'NR > 1 && $4 != "yes"' | grep .; then
  fail "a provider library in $target is not loadable"
fi

step "cargo test"
cargo test --workspace --no-fail-fast -- --test-threads="${VK_TEST_THREADS:-2}"

step "debian packages (release build, lintian, systemd-analyze)"
scripts/package.sh

step "debian packages on a clean root"
scripts/package-test.sh

step "container image from the packages (scripts/image.sh)"
scripts/image.sh

step "the chart in the cluster: image, helm install, hot standby, helm uninstall"
cargo test -p vk-tests --test incluster -- --ignored --test-threads=1

step "done"
