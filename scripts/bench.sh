#!/usr/bin/env bash
# bench.sh — how fast vk starts and deletes pods against a real control plane, what it costs
# (memory, CPU, API requests per pod) and how close it gets to what the apiserver allows.
#
# Usage: scripts/bench.sh [--provider mock|hyper] [--pods N] [--mode direct|deployment|both]
#                         [--automount on|off|both] [--keep] [--port-base P] [--qps Q] [--burst B]
#                         [--workers W] [--vk-defaults] [--profile bench|default] [--rate R]
#                         [--probe] [--hold S] [--heaptrack] [--perf] [--no-build]
#   --provider P    mock (default): pods are Running at once, vk's own cost is measured; hyper:
#                   pods are real containers on the Podman service of `scripts/podman.sh up`
#                   (started if needed, left running), image localhost/vk-busybox:latest with
#                   imagePullPolicy Never running `httpd -f` (exits on SIGTERM), grace period 2 s;
#                   every container of the bench node is removed after each run and on exit
#   --pods N        pods per run (default 1000)
#   --mode M        direct: N pods created with spec.nodeName set (no scheduler), as fast as the
#                   client can (50 requests in flight); deployment: one Deployment with N replicas
#                   through the scheduler; both (default)
#   --automount A   on: pods keep the default service-account token volume (one TokenRequest per
#                   pod, the realistic case); off: automountServiceAccountToken: false; both
#                   (default: each mode runs twice)
#   --keep          leave the bench cluster running afterwards (vk is always stopped)
#   --port-base P   the cluster's ports P..P+4 (default 26443); vk listens on P+10, P+11, ...
#   --qps/--burst/--workers  vk's --kube-api-qps (2000), --kube-api-burst (4000),
#                   --pod-sync-workers (50)
#   --vk-defaults   run vk with its own defaults for those three flags instead
#   --profile P     bench (default): the control plane with its rate limits lifted (no API
#                   Priority and Fairness); default: as it comes, APF on (a 429 storm shows in
#                   the failed requests)
#   --rate R        direct mode: create the pods at a steady R per second instead of at once
#   --probe         each pod has a readiness probe that execs `true` every 10 s (vk runs it
#                   through the provider's exec), to measure what probes cost
#   --hold S        keep the pods Running S seconds before deleting them, and report vk's CPU
#                   and memory over that time (default 0)
#   --heaptrack     run vk under heaptrack, for where its memory goes: the profile is written to
#                   target/bench/<timestamp>/vk-<run>.heaptrack.zst (read it with heaptrack_print);
#                   heaptrack's own bookkeeping inflates vk's RSS and CPU, so those figures of
#                   such a run are not comparable with a plain one
#   --no-build      run the release binaries already in target/release instead of building
#                   them from the work tree (to compare runtime settings on one build)
#   --perf          sample vk's CPU with `perf record` (cpu-clock, 199 Hz, DWARF call graphs from
#                   32 KiB of stack, as deep as decoding a pod goes) while it runs: the profile is
#                   written to target/bench/<timestamp>/vk-<run>.perf.data (read it with
#                   `perf report -i FILE --no-children`); the sampling costs vk a few percent of CPU
#
# What it does: builds vk, libvk_mock.so (and libvk_hyper.so for hyper) and the bench client
# (scripts/bench, `vk-bench`) in release mode; starts a control plane with
# `scripts/cluster.sh up --profile bench` (rate limits lifted) as cluster "vk-bench" (recreated from
# scratch each time), with an audit log recording the requests of node users only; then
#   1. the ceiling: with no vk, `vk-bench ceiling` creates N pods bound to a Node object it made
#      itself, patches their status to Running, deletes them (50 in flight, admin credentials):
#      what a plain kube-rs client reaches against this apiserver;
#   2. for each mode and automount setting, starts a fresh vk (the provider, its own node name)
#      and waits until the node is Ready; `vk-bench run` creates a namespace, watches it, creates the
#      pods, measures until all are Running, deletes them, measures until the watch sees all gone,
#      and reads vk's peak RSS and CPU time from /proc, the requests vk made from the audit log and
#      all requests from apiserver_request_total; then vk is stopped.
# The report is printed and written to target/bench/<timestamp>.json (logs, vk's and the control
# plane's included, and the audit log, in target/bench/<timestamp>/). Everything started is stopped on exit
# (but the Podman service, which the hyper tests share).
set -euo pipefail
cd "$(dirname "$0")/.."

provider=mock pods=1000 mode=both automount=both keep=false port_base=26443 qps=2000 burst=4000 workers=50
probe=false hold=0 vk_defaults=false profile=bench rate= heaptrack=false perf=false build=true
cluster=vk-bench
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'bench: %s\n' "$*" >&2; }
while (($#)); do
  case "$1" in
    --provider|--pods|--mode|--automount|--port-base|--qps|--burst|--workers|--hold|--profile|--rate)
      (($# >= 2)) || die "option $1 needs a value"
      case "$1" in
        --provider) provider=$2 ;;
        --pods) pods=$2 ;; --mode) mode=$2 ;; --automount) automount=$2 ;;
        --port-base) port_base=$2 ;; --qps) qps=$2 ;; --burst) burst=$2 ;; --workers) workers=$2 ;;
        --hold) hold=$2 ;; --profile) profile=$2 ;; --rate) rate=$2 ;;
      esac
      shift 2 ;;
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    --keep) keep=true; shift ;;
    --probe) probe=true; shift ;;
    --heaptrack) heaptrack=true; shift ;;
    --perf) perf=true; shift ;;
    --no-build) build=false; shift ;;
    --vk-defaults) vk_defaults=true; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see: $0 --help)" ;;
  esac
done
[[ $provider == mock || $provider == hyper ]] || die "--provider must be mock or hyper"
[[ $pods =~ ^[1-9][0-9]*$ ]] || die "--pods must be a positive number"
[[ $port_base =~ ^[0-9]+$ ]] || die "--port-base must be a number"
[[ $hold =~ ^[0-9]+$ ]] || die "--hold must be a number of seconds"
[[ $profile == bench || $profile == default ]] || die "--profile must be bench or default"
[[ -z $rate || $rate =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--rate must be a number of pods per second"
case $mode in direct) modes=(direct) ;; deployment) modes=(deployment) ;;
  both) modes=(direct deployment) ;; *) die "--mode must be direct, deployment or both" ;; esac
case $automount in on) tokens=(on) ;; off) tokens=(off) ;; both) tokens=(on off) ;;
  *) die "--automount must be on, off or both" ;; esac

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=target/bench/$stamp
mkdir -p "$out"
out=$(realpath "$out")
cluster_args=(--name "$cluster" --profile "$profile" --port-base "$port_base")

# ---------------------------------------------------------------- cleanup
vk_pid="" wrapper_pid="" perf_pid="" vk_node="" cluster_started=false
stop_vk() {
  [[ -n $vk_pid ]] || return 0
  kill -TERM "$vk_pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$vk_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$vk_pid" 2>/dev/null || true
  wait "$vk_pid" 2>/dev/null || true
  vk_pid=""
  # heaptrack and perf write their profiles once vk has exited.
  if [[ -n $perf_pid ]]; then
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=""
  fi
  if [[ -n $wrapper_pid ]]; then
    wait "$wrapper_pid" 2>/dev/null || true
    wrapper_pid=""
  fi
  # hyper: the engine outlives vk; remove whatever is left of the node's pods.
  if [[ $provider == hyper ]]; then
    scripts/podman.sh clean-node "$vk_node" >&2 || { log "could not remove the containers of $vk_node"; return 1; }
  fi
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_vk || rc=1
  if $cluster_started; then
    [[ -z ${cluster_dir:-} ]] || cp -r "$cluster_dir/logs" "$out/cluster-logs" 2>/dev/null || true
    if $keep; then
      log "keeping cluster $cluster: eval \"\$(scripts/cluster.sh env --name $cluster)\"; stop it with scripts/cluster.sh down --name $cluster"
    else
      scripts/cluster.sh down --name "$cluster" >&2 || rc=1
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the provider's backend
# Pod options for `vk-bench run` (none for mock: its defaults).
pod_opts=() packages=(-p vk -p vk-mock -p vk-bench) libs=libvk_mock.so
if [[ $provider == hyper ]]; then
  scripts/podman.sh up >&2
  eval "$(scripts/podman.sh env)"
  cat >"$out/hyper.toml" <<EOF
endpoint = "${DOCKER_HOST:?scripts/podman.sh env printed no DOCKER_HOST}"

[capacity]
cpu = "10000"
memory = "10000Gi"
pods = "20000"

[infra]
image = "localhost/vk-busybox:latest"
command = ["sleep", "2147483647"]
EOF
  pod_opts=(--image localhost/vk-busybox:latest --pull-policy Never
    --command "httpd -f -p 8080 -h /etc" --grace 2)
  packages+=(-p vk-hyper) libs+=", libvk_hyper.so"
fi
$probe && pod_opts+=(--readiness-exec true --probe-period 10)
run_opts=(--hold "$hold")
[[ -n $rate ]] && run_opts+=(--rate "$rate")
vk_flags=(--kube-api-qps "$qps" --kube-api-burst "$burst" --pod-sync-workers "$workers")
label_suffix=${rate:+-rate$rate}
vk_flags_text="${vk_flags[*]}"
if $vk_defaults; then vk_flags=() vk_flags_text="vk defaults" label_suffix+=-defaults; fi
if $heaptrack; then
  command -v heaptrack >/dev/null || die "--heaptrack needs heaptrack (apt-get install heaptrack)"
  label_suffix+=-heaptrack
fi
if $perf; then
  command -v perf >/dev/null || die "--perf needs perf (apt-get install linux-perf)"
  label_suffix+=-perf
fi

# ---------------------------------------------------------------- build
if $build; then
  log "building vk, $libs and vk-bench (release)"
  cargo build --release --quiet "${packages[@]}"
else
  for binary in target/release/vk target/release/vk-bench "target/release/libvk_$provider.so"; do
    [[ -x $binary ]] || die "--no-build: $binary is missing; run once without --no-build"
  done
  log "not building: running target/release as it is, which may be older than the work tree"
fi
bench=target/release/vk-bench
scripts/cluster/build.sh >/dev/null

# ---------------------------------------------------------------- cluster
cat >"$out/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:nodes"]
  - level: None
EOF
audit_log=$out/audit.log
export VK_APISERVER_ARGS="--audit-policy-file=$out/audit-policy.yaml --audit-log-path=$audit_log --audit-log-maxsize=0 ${VK_APISERVER_ARGS:-}"
log "starting the bench control plane (cluster $cluster, ports $port_base..$((port_base + 4)))"
scripts/cluster.sh down "${cluster_args[@]}" >/dev/null 2>&1 || true
cluster_started=true
eval "$(scripts/cluster.sh up "${cluster_args[@]}")"
cluster_dir=$(dirname "${KUBECONFIG:?cluster.sh up printed no KUBECONFIG}")
kubectl=$(scripts/cluster.sh bin "${cluster_args[@]}")/kubectl
procs=()
for c in kube-apiserver etcd kube-controller-manager kube-scheduler; do
  pid=$(cat "$cluster_dir/run/$c.pid" 2>/dev/null || true)
  [[ -n $pid ]] && procs+=(--proc "$c=$pid")
done
clk_tck=$(getconf CLK_TCK)
common=(--kubeconfig "$KUBECONFIG" --pods "$pods" --concurrency 50 --clk-tck "$clk_tck")

# ---------------------------------------------------------------- the ceiling
log "ceiling: $pods pods, no vk"
"$bench" ceiling "${common[@]}" "${procs[@]}" --namespace bench-ceiling --node bench-ceiling \
  --out "$out/ceiling.json"
results=("$out/ceiling.json")

# ---------------------------------------------------------------- vk runs
start_vk() { # start_vk NODE PORT LOG
  local node=$1 port=$2 vk_log=$3 kubeconfig config=$out/hyper.toml
  kubeconfig=$(scripts/cluster.sh node-kubeconfig "$node" --name "$cluster")
  if [[ $provider == mock ]]; then
    config=$out/$node.provider.json
    printf '{"%s": {"pods": "20000", "cpu": "10000", "memory": "10000Gi"}}\n' "$node" >"$config"
  fi
  vk_node=$node
  local wrap=()
  $heaptrack && wrap=(heaptrack --output "${vk_log%.log}.heaptrack")
  # As the packages and the image run vk (vk/debian/vk@.service).
  MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} "${wrap[@]}" target/release/vk --kubeconfig "$kubeconfig" --nodename "$node" --provider "$provider" \
    --plugin-dir target/release --node-ip 127.0.0.1 --listen-port "$port" --provider-config "$config" \
    "${vk_flags[@]}" >"$vk_log" 2>&1 &
  vk_pid=$!
  if $heaptrack; then
    # vk is heaptrack's child: it is what is measured and stopped.
    wrapper_pid=$vk_pid vk_pid=""
    local deadline=$((SECONDS + 30))
    until vk_pid=$(pgrep -P "$wrapper_pid" -x vk); do
      ((SECONDS < deadline)) || { tail -20 "$vk_log" >&2; die "vk did not start under heaptrack"; }
      sleep 0.1
    done
  fi
  local deadline=$((SECONDS + 60))
  until "$kubectl" get node "$node" >/dev/null 2>&1; do
    kill -0 "$vk_pid" 2>/dev/null || { tail -20 "$vk_log" >&2; die "vk exited"; }
    ((SECONDS < deadline)) || { tail -20 "$vk_log" >&2; die "node $node not registered after 60 s"; }
    sleep 0.2
  done
  "$kubectl" wait --for=condition=Ready "node/$node" --timeout=60s >/dev/null \
    || { tail -20 "$vk_log" >&2; die "node $node not Ready"; }
  if $perf; then
    perf record --quiet -e cpu-clock -F 199 --call-graph dwarf,32768 -p "$vk_pid" \
      -o "${vk_log%.log}.perf.data" >/dev/null 2>&1 &
    perf_pid=$!
  fi
}

port=$((port_base + 10))
for m in "${modes[@]}"; do
  for t in "${tokens[@]}"; do
    label=$m-token-$t$label_suffix node=vk-$provider-$m-token-$t
    log "$label: starting vk as node $node"
    start_vk "$node" "$port" "$out/vk-$label.log"
    port=$((port + 1))
    "$bench" run "${common[@]}" "${procs[@]}" --mode "$m" --automount "$([[ $t == on ]] && echo true || echo false)" \
      --namespace "bench-$label" --node "$node" --vk-pid "$vk_pid" --audit-log "$audit_log" \
      --label "$label" --provider "$provider" "${pod_opts[@]}" "${run_opts[@]}" --out "$out/$label.json"
    results+=("$out/$label.json")
    stop_vk
  done
done

# ---------------------------------------------------------------- report
meta=$(jq -n --arg provider "$provider" --arg pods "$pods" --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo none)" \
  --arg dirty "$(git status --porcelain 2>/dev/null | grep -c . || true)" --arg cores "$(nproc)" \
  --arg vk_flags "$vk_flags_text" \
  --arg cluster "scripts/cluster.sh up --profile $profile" --arg logs "$out" \
  '{provider: $provider, pods: ($pods|tonumber), commit: $commit, uncommitted_files: ($dirty|tonumber), cores: ($cores|tonumber),
    vk_flags: $vk_flags, cluster: $cluster, logs: $logs, client_concurrency: 50}')
"$bench" report --out "target/bench/$stamp.json" --meta "$meta" "${results[@]}"
