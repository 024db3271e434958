#!/usr/bin/env bash
# Proves vk's Debian packages (scripts/package.sh) on a clean Debian system, not on the build
# machine: a minimal bookworm root made by mmdebstrap (cached as a tarball under
# $HOME/.cache/vk/debian-root) is unpacked into a temporary directory, and inside it:
#   1. vk-provider-azure without vk: apt refuses it (no vk-provider-abi-1);
#   2. vk alone: `vk providers` says that /usr/lib/vk holds no provider; the vk user exists;
#      systemd-analyze verifies an instance of vk@.service;
#   3. adding vk-provider-hyper: `vk providers` lists hyper;
#   4. with mock and azure added, removing vk-provider-hyper leaves vk and them working;
#   5. the installed vk runs `--provider hyper --plugin-dir /usr/lib/vk` inside the root, with its
#      settings in /etc/vk/NODE.env as vk@.service reads them, against a local control plane
#      (scripts/cluster.sh, ports 17643..17647, vk on 17650) and Podman (scripts/podman.sh): the
#      node gets Ready, a Deployment's pod Running, and `kubectl logs` shows its output.
# Everything it starts or mounts is stopped and removed on exit, whatever the outcome. Needs root
# (chroot, a bind mount of Podman's socket).
#
# Options (environment): VK_PACKAGE_TEST_KEEP=1 keeps the root and logs for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "package-test.sh: FAILED: $*" >&2; exit 1; }
log() { echo "package-test.sh: $*" >&2; }

[[ $(id -u) == 0 ]] || fail "needs root (chroot and mount)"
target=${CARGO_TARGET_DIR:-$PWD/target}
version=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"name":"vk","version":"\([^"]*\)".*/\1/p')
declare -A deb_of
for name in vk vk-provider-mock vk-provider-hyper vk-provider-azure; do
  deb_of[$name]=$target/debian/${name}_${version}-1_amd64.deb
  [[ -f ${deb_of[$name]} ]] || fail "${deb_of[$name]} is missing (run scripts/package.sh)"
done

# The clean system: Debian's minimal variant plus systemd, which a distribution running vk@.service
# has and which gives the vk package its systemd-sysusers. Nothing here comes from the build machine.
suite=bookworm
includes=systemd
cache=$HOME/.cache/vk/debian-root
root_tarball=$cache/$suite-minbase-$includes.tar
if [[ ! -s $root_tarball ]]; then
  log "making the clean root with mmdebstrap (once; cached as $root_tarball)"
  mkdir -p "$cache"
  mmdebstrap --quiet --format=tar --variant=minbase --include="$includes" "$suite" \
    "$root_tarball.tmp" \
    || fail "mmdebstrap could not make the root"
  mv "$root_tarball.tmp" "$root_tarball"
fi

node=vk-package-test
cluster=vk-package-test
port_base=17643
vk_port=17650
work=$(mktemp -d "${TMPDIR:-/tmp}/vk-package-test.XXXXXX")
root=$work/root
socket_in_root=$root/run/podman/podman.sock
vk_pid="" cluster_started=false podman_started=false
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  [[ -n $vk_pid ]] && kill "$vk_pid" 2>/dev/null && wait "$vk_pid" 2>/dev/null
  if $cluster_started; then
    scripts/cluster.sh down --name "$cluster" >/dev/null 2>&1 || log "cluster.sh down failed"
    # vk leaves its containers for the next vk to adopt; with the cluster gone, none will.
    scripts/podman.sh clean-node "$node" || true
  fi
  $podman_started && scripts/podman.sh down
  mountpoint -q "$socket_in_root" 2>/dev/null && umount "$socket_in_root"
  if ((status != 0)); then
    [[ -f $work/vk.log ]] && { log "vk's log, last lines:"; tail -30 "$work/vk.log" >&2; }
  fi
  if [[ ${VK_PACKAGE_TEST_KEEP:-} == 1 ]]; then
    log "kept $work"
  elif ! mountpoint -q "$socket_in_root" 2>/dev/null; then
    rm -rf --one-file-system "$work"
  fi
  ((status == 0)) || echo "package-test.sh: FAILED (exit $status)" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "unpacking the clean root into $root"
mkdir "$root"
tar -xf "$root_tarball" -C "$root"
mkdir -m 0755 "$root/tmp/debs"
for name in "${!deb_of[@]}"; do install -m 0644 "${deb_of[$name]}" "$root/tmp/debs/"; done
# As in any chroot: packages must not try to start services.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"

in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}
deb_in_root() { echo "/tmp/debs/$(basename "${deb_of[$1]}")"; }
apt_install() {
  local debs=() name
  for name in "$@"; do debs+=("$(deb_in_root "$name")"); done
  in_root apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 "${debs[@]}"
}
installed() { in_root dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'; }

log "1. vk-provider-azure without vk: apt must refuse it"
if apt_install vk-provider-azure >"$work/apt-azure.log" 2>&1; then
  fail "apt installed vk-provider-azure without vk"
fi
grep -q 'Depends: vk-provider-abi-1' "$work/apt-azure.log" \
  || { cat "$work/apt-azure.log" >&2; fail "apt refused vk-provider-azure, but not for vk-provider-abi-1"; }
! installed vk-provider-azure || fail "vk-provider-azure is installed anyway"
grep 'Depends:' "$work/apt-azure.log" >&2

log "2. vk alone"
apt_install vk >"$work/apt-vk.log" 2>&1 || { cat "$work/apt-vk.log" >&2; fail "apt could not install vk"; }
if in_root vk providers >"$work/providers-empty.txt" 2>&1; then
  cat "$work/providers-empty.txt" >&2
  fail "vk providers succeeded with no provider installed"
fi
cat "$work/providers-empty.txt" >&2
grep -q '^vk: /usr/lib/vk holds no provider' "$work/providers-empty.txt" \
  || fail "vk providers did not say that /usr/lib/vk holds no provider"
in_root getent passwd vk >&2 || fail "the vk package did not create the vk user"
in_root dpkg-query -W -f='${Conffiles}\n' vk | grep -q '/etc/vk/example.env' \
  || fail "/etc/vk/example.env is not a conffile"
in_root vk --version >&2
# The unit as the package installed it, with an instance's settings file in place.
cp "$root/etc/vk/example.env" "$root/etc/vk/$node.env"
in_root systemd-analyze verify --man=no --recursive-errors=no "vk@$node.service" \
  || fail "systemd-analyze verify vk@$node.service failed in the clean root"

log "3. adding vk-provider-hyper"
apt_install vk-provider-hyper >"$work/apt-hyper.log" 2>&1 \
  || { cat "$work/apt-hyper.log" >&2; fail "apt could not install vk-provider-hyper"; }
in_root vk providers | tee "$work/providers-hyper.txt" >&2
grep -Eq '^hyper +[^ ]+ +[^ ]+ +yes +/usr/lib/vk/libvk_hyper.so' "$work/providers-hyper.txt" \
  || fail "vk providers does not list a compatible hyper"

log "4. mock and azure too, then without vk-provider-hyper"
apt_install vk-provider-mock vk-provider-azure >"$work/apt-more.log" 2>&1 \
  || { cat "$work/apt-more.log" >&2; fail "apt could not install vk-provider-mock and -azure"; }
in_root apt-get remove -y -o Dpkg::Use-Pty=0 vk-provider-hyper >"$work/apt-remove.log" 2>&1 \
  || { cat "$work/apt-remove.log" >&2; fail "apt could not remove vk-provider-hyper"; }
for name in vk vk-provider-mock vk-provider-azure; do
  installed "$name" || fail "$name is gone after removing vk-provider-hyper"
done
! installed vk-provider-hyper || fail "vk-provider-hyper is still installed"
[[ ! -e $root/usr/lib/vk/libvk_hyper.so ]] || fail "libvk_hyper.so is still in /usr/lib/vk"
in_root vk providers | tee "$work/providers-rest.txt" >&2
for name in mock azure; do
  grep -Eq "^$name +[^ ]+ +[^ ]+ +yes " "$work/providers-rest.txt" \
    || fail "vk providers does not list a compatible $name after removing hyper"
done
! grep -q '^hyper ' "$work/providers-rest.txt" || fail "vk providers still lists hyper"

log "5. the packaged vk with the packaged hyper provider, on a control plane and Podman"
apt_install vk-provider-hyper >"$work/apt-hyper-again.log" 2>&1 \
  || { cat "$work/apt-hyper-again.log" >&2; fail "apt could not install vk-provider-hyper again"; }
scripts/install-deps.sh --tests >&2
podman_up=$(scripts/podman.sh up) || fail "scripts/podman.sh up failed"
[[ -z $podman_up ]] || log "$podman_up"
[[ $podman_up == *"service up"* ]] && podman_started=true
eval "$(scripts/podman.sh env)"
# Podman's socket appears where the hyper example configuration expects a rootful Podman's.
mkdir -p "$(dirname "$socket_in_root")"
touch "$socket_in_root"
mount --bind "${DOCKER_HOST#unix://}" "$socket_in_root" || fail "cannot bind-mount Podman's socket"

kubectl=$(scripts/cluster.sh bin)/kubectl
cluster_started=true
exports=$(scripts/cluster.sh up --name "$cluster" --port-base "$port_base") \
  || fail "the control plane did not start"
eval "$exports"
install -m 0640 "$(scripts/cluster.sh node-kubeconfig --name "$cluster" "$node")" \
  "$root/etc/vk/$node.kubeconfig"
in_root chgrp vk "/etc/vk/$node.kubeconfig" # the root's vk group, as README's Install says
# The settings vk@$node.service would read, written as an administrator would from the example.
cat >"$root/etc/vk/$node.env" <<ENV
KUBECONFIG=/etc/vk/$node.kubeconfig
VK_PROVIDER_CONFIG=/etc/vk/$node.toml
VKUBELET_POD_IP=127.0.0.1
KUBELET_PORT=$vk_port
ENV
cat >"$root/etc/vk/$node.toml" <<TOML
endpoint = "unix:///run/podman/podman.sock"
[infra]
image = "localhost/vk-busybox:latest"
command = ["sleep", "2147483647"]
TOML
# As vk@.service starts it: DEFAULT_NODE_NAME from the instance, the rest from the settings file.
chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin DEFAULT_NODE_NAME="$node" /bin/sh -c \
  'set -a; . "/etc/vk/$DEFAULT_NODE_NAME.env"; set +a
   exec /usr/bin/vk --provider hyper --plugin-dir /usr/lib/vk' >"$work/vk.log" 2>&1 &
vk_pid=$!

for _ in $(seq 60); do
  "$kubectl" get "node/$node" >/dev/null 2>&1 && break
  kill -0 "$vk_pid" 2>/dev/null || fail "the packaged vk exited"
  sleep 1
done
"$kubectl" wait --for=condition=Ready "node/$node" --timeout=60s >&2 \
  || fail "node $node did not get Ready"
"$kubectl" apply -f - >&2 <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: packaged-vk
spec:
  replicas: 1
  selector:
    matchLabels: {app: packaged-vk}
  template:
    metadata:
      labels: {app: packaged-vk}
    spec:
      nodeSelector: {kubernetes.io/hostname: $node}
      tolerations:
        - {key: virtual-kubelet.io/provider, operator: Exists, effect: NoSchedule}
      containers:
        - name: hello
          image: localhost/vk-busybox:latest
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "echo hello from the packaged vk; exec sleep 2147483647"]
YAML
"$kubectl" rollout status deployment/packaged-vk --timeout=120s >&2 \
  || fail "the Deployment's pod did not become available"
"$kubectl" get pods -l app=packaged-vk -o wide >&2
phase=$("$kubectl" get pods -l app=packaged-vk -o jsonpath='{.items[0].status.phase}')
[[ $phase == Running ]] || fail "the pod is $phase, not Running"
logs=""
for _ in $(seq 20); do
  logs=$("$kubectl" logs deployment/packaged-vk 2>&1) && [[ $logs == *"hello from the packaged vk"* ]] && break
  sleep 1
done
echo "kubectl logs: $logs" >&2
[[ $logs == *"hello from the packaged vk"* ]] || fail "kubectl logs did not show the pod's output"
kill -0 "$vk_pid" 2>/dev/null || fail "the packaged vk exited"

log "passed"
