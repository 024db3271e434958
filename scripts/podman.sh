#!/usr/bin/env bash
# Podman's Docker-compatible API service, the real engine behind the hyper provider's tests.
#
#   scripts/podman.sh up       write containers.conf, build the local test image, start the service
#   scripts/podman.sh down     stop the service this script started
#   scripts/podman.sh env      print DOCKER_HOST and CONTAINERS_CONF for a shell
#   scripts/podman.sh status   say whether the service answers
#   scripts/podman.sh clean-node SUBSTRING
#                              remove containers and volumes of vk nodes whose name contains it
#
# State lives in ${VK_PODMAN_DIR:-$HOME/.cache/vk/podman}. On these machines Podman needs runc and
# explicit default ulimits (the sandbox refuses raising rlimits), and no registry is reachable:
# the test image localhost/vk-busybox is a root filesystem of Debian's busybox-static, imported.
set -euo pipefail

dir=${VK_PODMAN_DIR:-$HOME/.cache/vk/podman}
socket=$dir/podman.sock
image=localhost/vk-busybox:latest
export CONTAINERS_CONF=$dir/containers.conf

fail() { echo "podman.sh: $*" >&2; exit 1; }

answers() {
  [[ -S $socket ]] && curl -sf --max-time 2 --unix-socket "$socket" http://podman/_ping >/dev/null
}

write_config() {
  mkdir -p "$dir"
  cat >"$dir/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
CONF
}

build_image() {
  podman image exists "$image" && return
  local busybox rootfs
  busybox=$(command -v busybox) || fail "busybox is missing (apt-get install busybox-static)"
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev}
  cp "$busybox" "$rootfs/bin/busybox"
  local applet
  for applet in $("$busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
  tar -C "$rootfs" -cf "$rootfs.tar" .
  podman import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' "$rootfs.tar" "$image" >/dev/null
  rm -rf "$rootfs" "$rootfs.tar"
  echo "podman.sh: built $image"
}

up() {
  for tool in podman runc curl; do
    command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install podman runc busybox-static curl)"
  done
  write_config
  build_image
  answers && return
  rm -f "$socket"
  nohup podman system service --time=0 "unix://$socket" >"$dir/service.log" 2>&1 &
  echo $! >"$dir/service.pid"
  for _ in $(seq 100); do
    answers && { echo "podman.sh: service up at unix://$socket"; return; }
    sleep 0.1
  done
  fail "the service did not answer within 10 s; see $dir/service.log"
}

down() {
  if [[ -f $dir/service.pid ]]; then
    kill "$(cat "$dir/service.pid")" 2>/dev/null || true
    rm -f "$dir/service.pid" "$socket"
  fi
}

clean_node() {
  local substring=$1 role ids
  [[ -n $substring ]] || fail "clean-node needs a node name substring"
  # Every other container first (app, init, sidecar): the infra containers hold their namespaces.
  for role in app init sidecar infra; do
    ids=$(podman ps -a --filter "label=io.virtual-kubelet.role=$role" \
      --format '{{.ID}} {{index .Labels "io.virtual-kubelet.node"}}' | awk -v s="$substring" 'index($2, s) {print $1}')
    [[ -z $ids ]] || podman rm -f $ids >/dev/null
  done
  podman volume ls --format '{{.Name}} {{index .Labels "io.virtual-kubelet.node"}}' |
    awk -v s="$substring" 'index($2, s) {print $1}' | xargs -r podman volume rm -f >/dev/null
}

case ${1:-} in
  up) up ;;
  down) down ;;
  env) echo "export DOCKER_HOST=unix://$socket"; echo "export CONTAINERS_CONF=$CONTAINERS_CONF" ;;
  status) answers && echo "up: unix://$socket" || { echo "down"; exit 1; } ;;
  clean-node) clean_node "${2:-}" ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
