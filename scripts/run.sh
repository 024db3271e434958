#!/usr/bin/env bash
# The main job: builds vk, starts a local control plane (unless $KUBECONFIG points at a cluster),
# starts `vk --provider mock` as node "virtual-kubelet" with node credentials, deploys a demo
# Deployment and shows the node Ready and its pods Running. Ctrl-C stops vk and the control
# plane this script started.
#
# Options (environment): VK_PROVIDER (default mock; `hyper` runs real containers on Podman, set up
# by scripts/podman.sh), VK_NODE_NAME (default virtual-kubelet), VK_LISTEN_PORT (default 10250),
# VK_PROVIDER_CONFIG (a file), RUST_LOG.
set -euo pipefail
cd "$(dirname "$0")/.."

provider=${VK_PROVIDER:-mock}
node=${VK_NODE_NAME:-virtual-kubelet}
port=${VK_LISTEN_PORT:-10250}
log_dir=${TMPDIR:-/tmp}/vk-run
mkdir -p "$log_dir"

scripts/install-deps.sh
echo "run: building vk" >&2
cargo build --workspace --quiet
bin=$(scripts/cluster/build.sh)
kubectl=$bin/kubectl

started_cluster=false
if [[ -z ${KUBECONFIG:-} ]]; then
  echo "run: starting the local control plane" >&2
  exports=$(scripts/cluster.sh up) || { echo "run: the control plane did not start" >&2; exit 1; }
  eval "$exports"
  started_cluster=true
  vk_kubeconfig=$(scripts/cluster.sh node-kubeconfig "$node")
else
  vk_kubeconfig=$KUBECONFIG
fi

vk_pid=""
started_podman=false
cleanup() {
  # Must finish whatever happened to stdout and stderr: Ctrl-C during `run.sh 2>&1 | tee run.log`
  # also stops tee, and the first write to that closed pipe would kill this shell or
  # `cluster.sh down` (SIGPIPE, or set -e on EPIPE), leaving etcd and kube-apiserver running. So
  # SIGPIPE and SIGINT are ignored (the steps below inherit that), no step's failure stops the
  # rest, and their output goes to $log_dir/cleanup.log and, while it is open, to stderr (tee -p
  # goes on writing the file when stderr is gone).
  trap '' PIPE INT
  trap - EXIT TERM
  set +e
  exec 3>&2
  exec > >(tee -p -a "$log_dir/cleanup.log" >&3 2>/dev/null) 2>&1
  local tee_pid=$!
  [[ -n $vk_pid ]] && kill "$vk_pid" 2>/dev/null && wait "$vk_pid" 2>/dev/null
  if $started_cluster; then
    scripts/cluster.sh down
    # vk leaves its pods running for the next vk to adopt; with the cluster gone, none will.
    [[ $provider == hyper ]] && scripts/podman.sh clean-node "$node"
  fi
  if $started_podman; then scripts/podman.sh down; fi
  echo "run: stopped (this cleanup's log: $log_dir/cleanup.log)"
  exec >&3 2>&3
  wait "$tee_pid"
}
trap cleanup EXIT INT TERM

config_args=()
if [[ $provider == hyper && -z ${VK_PROVIDER_CONFIG:-} ]]; then
  # Real containers on this machine: Podman's API service and its local busybox image.
  scripts/install-deps.sh --tests
  podman_up=$(scripts/podman.sh up)
  echo "$podman_up" >&2
  [[ $podman_up == *"service up"* ]] && started_podman=true
  VK_PROVIDER_CONFIG=$log_dir/hyper.toml
  cat >"$VK_PROVIDER_CONFIG" <<CONFIG
$(scripts/podman.sh env | sed -n 's/^export DOCKER_HOST=\(.*\)/endpoint = "\1"/p')
[infra]
image = "localhost/vk-busybox:latest"
command = ["sleep", "2147483647"]
CONFIG
fi
[[ -n ${VK_PROVIDER_CONFIG:-} ]] && config_args=(--provider-config "$VK_PROVIDER_CONFIG")
echo "run: starting vk (log: $log_dir/vk.log)" >&2
target/debug/vk --kubeconfig "$vk_kubeconfig" --nodename "$node" --provider "$provider" \
  --plugin-dir target/debug --node-ip 127.0.0.1 --listen-port "$port" "${config_args[@]}" \
  >"$log_dir/vk.log" 2>&1 &
vk_pid=$!

for _ in $(seq 60); do
  "$kubectl" get "node/$node" >/dev/null 2>&1 && break
  kill -0 "$vk_pid" 2>/dev/null || { tail -20 "$log_dir/vk.log" >&2; exit 1; }
  sleep 1
done
"$kubectl" wait --for=condition=Ready "node/$node" --timeout=60s >&2 \
  || { tail -20 "$log_dir/vk.log" >&2; exit 1; }
"$kubectl" apply -f scripts/demo-deployment.yaml >&2
"$kubectl" rollout status deployment/hello-vk --timeout=120s >&2
"$kubectl" get nodes,pods -o wide
echo "run: vk is serving node $node; press Ctrl-C to stop" >&2
wait "$vk_pid"
