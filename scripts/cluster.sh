#!/usr/bin/env bash
# cluster.sh — run a real, local Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) on 127.0.0.1 for vk's tests and demo. No kubelet, no
# container runtime: nodes are supplied by vk itself.
#
# Usage: scripts/cluster.sh COMMAND [OPTIONS]
#   up                  build the binaries if needed (scripts/cluster/build.sh), make the PKI, start
#                       any component that is not running, wait until /readyz is ok and the
#                       `default` service account exists, then print `export KUBECONFIG=...` on
#                       stdout (everything else goes to stderr). Idempotent: on a running cluster it
#                       only prints the export line.
#   down                stop every component (SIGTERM, wait, SIGKILL), check none is left, delete the
#                       cluster directory (only if it carries the .vk-cluster marker).
#   stop                stop every component but keep the state (PKI, etcd data, logs); `up` resumes.
#   status              one line per component (running? healthy?); exit 0 only if all are fine.
#   env                 print the export line; fails if the cluster is not up.
#   node-kubeconfig NAME
#                       print the path of a kubeconfig for node NAME (client cert CN=system:node:NAME,
#                       O=system:nodes), creating it if missing. Also leaves a kubelet serving cert
#                       signed by the cluster CA next to it (serving.crt/serving.key; SANs NAME,
#                       localhost, 127.0.0.1). `up` creates node "virtual-kubelet".
#   bootstrap-kubeconfig NAME
#                       create a bootstrap token for node NAME (Secret kube-system/bootstrap-token-ID,
#                       group system:bootstrappers:vk, expires in 24 h) and print a kubeconfig with
#                       it and the cluster CA on stdout, for `vk --bootstrap-kubeconfig`. The node's
#                       client CSR is approved automatically; its serving CSRs are not (kubectl
#                       certificate approve).
#   bin                 print the directory holding the binaries (runs build.sh).
#   metrics-server up|down|node-ip
#                       up: start metrics-server (built by `build.sh metrics-server`) in a network
#                       namespace of its own and register it as APIService v1beta1.metrics.k8s.io
#                       (`kubectl top`, HPA); prints the node IP that nodes it scrapes must use
#                       (node-ip prints it too). Needs root, ip and nft. See cluster/metrics-server.sh.
#                       down: unregister and stop it, remove its namespace (`stop`/`down` do too).
#   serving-cert NODE IP...
#                       print the path of a kubelet serving cert for NODE with those IP SANs, signed
#                       by the cluster CA (key beside it, .key); for a node with --node-ip IP.
#   help                this text.
#
# Options (flag > environment variable > value stored by the last `up` > default):
#   --name NAME               $VK_CLUSTER_NAME      cluster name (default "default")
#   --dir DIR                 $VK_CLUSTER_DIR       cluster directory (default $HOME/.cache/vk/clusters/NAME)
#   --profile default|bench   $VK_CLUSTER_PROFILE   bench lifts rate limits (apiserver inflight limits,
#                                                   APF off, controller-manager/scheduler QPS 1000/2000)
#   --port-base N             $VK_PORT_BASE         apiserver N, etcd N+1, etcd peer N+2,
#                                                   controller-manager N+3, scheduler N+4
#   --apiserver-port P        $VK_APISERVER_PORT    default 6443
#   --etcd-port P             $VK_ETCD_PORT         default 2379 (peer port = P+1)
#   --etcd-peer-port P        $VK_ETCD_PEER_PORT
#   --controller-manager-port P  $VK_CONTROLLER_MANAGER_PORT  default apiserver port + 1000; 0 = no HTTPS
#   --scheduler-port P        $VK_SCHEDULER_PORT    default apiserver port + 2000; 0 = no HTTPS
#   --timeout SECONDS         $VK_CLUSTER_TIMEOUT   how long `up` waits for readiness (default 120)
# Other environment variables:
#   VK_CLUSTER_BIN            use binaries from this directory instead of running build.sh
#   VK_CLUSTER_KEY_TYPE       ec (P-256, default) or rsa (2048) for the certificates' keys
#   VK_CLUSTER_SA_KEY_TYPE    rsa (2048, default, as kubeadm makes it) or ec (P-256) for the
#                             service-account signing key; a new cluster's only (the key is kept)
#   VK_ETCD_ARGS, VK_APISERVER_ARGS, VK_CONTROLLER_MANAGER_ARGS, VK_SCHEDULER_ARGS
#                             extra arguments (split on whitespace) appended to each component
#
# Layout of the cluster directory:
#   admin.kubeconfig                 cluster-admin (CN=admin, O=system:masters), certs embedded
#   nodes/NAME/kubeconfig            node identity; node.crt/node.key, serving.crt/serving.key beside it
#   pki/ca.crt, pki/ca.key           cluster CA (also signs CSRs through the controller-manager, for
#                                    every signer: kubelet client and serving certificates too)
#   pki/front-proxy-ca.{crt,key}, pki/front-proxy-client.{crt,key}
#                                    the aggregation layer's request-header CA and the apiserver's
#                                    client identity toward extension apiservers (metrics-server)
#   pki/apiserver.{crt,key}          apiserver serving cert
#   pki/apiserver-kubelet-client.{crt,key}  the apiserver's client identity toward kubelets
#   pki/{admin,controller-manager,scheduler}.{crt,key}, pki/sa.{key,pub}
#   kubeconfig/{controller-manager,scheduler}.kubeconfig, scheduler-config.yaml
#   etcd/                            etcd data;  logs/COMPONENT.log;  run/COMPONENT.pid
#   metrics-server/                  its kubeconfig and certificates (cluster.sh metrics-server)
#   cluster.env                      ports, profile and binary directory used by the last `up`
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
components=(etcd kube-apiserver kube-controller-manager kube-scheduler)
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl)

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "$1 is not installed (needed to $2)"; }
now() { date +%s.%N; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

# ---------------------------------------------------------------- arguments
cmd="" node_arg="" cmd_args=()
opt_name="${VK_CLUSTER_NAME:-}" opt_dir="${VK_CLUSTER_DIR:-}" opt_profile="${VK_CLUSTER_PROFILE:-}"
opt_base="${VK_PORT_BASE:-}" opt_api="${VK_APISERVER_PORT:-}" opt_etcd="${VK_ETCD_PORT:-}"
opt_peer="${VK_ETCD_PEER_PORT:-}" opt_cm="${VK_CONTROLLER_MANAGER_PORT:-}"
opt_sched="${VK_SCHEDULER_PORT:-}" timeout="${VK_CLUSTER_TIMEOUT:-120}"
key_type="${VK_CLUSTER_KEY_TYPE:-ec}"
sa_key_type="${VK_CLUSTER_SA_KEY_TYPE:-rsa}"

while (($#)); do
  case "$1" in
    --name|--dir|--profile|--port-base|--apiserver-port|--etcd-port|--etcd-peer-port|\
    --controller-manager-port|--scheduler-port|--timeout)
      (($# >= 2)) || die "option $1 needs a value"
      case "$1" in
        --name) opt_name=$2 ;; --dir) opt_dir=$2 ;; --profile) opt_profile=$2 ;;
        --port-base) opt_base=$2 ;; --apiserver-port) opt_api=$2 ;; --etcd-port) opt_etcd=$2 ;;
        --etcd-peer-port) opt_peer=$2 ;; --controller-manager-port) opt_cm=$2 ;;
        --scheduler-port) opt_sched=$2 ;; --timeout) timeout=$2 ;;
      esac
      shift 2 ;;
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    -h|--help|help) cmd=help; shift ;;
    -*) die "unknown option $1 (see: $0 help)" ;;
    *)
      if [[ -z $cmd ]]; then cmd=$1
      elif [[ $cmd == node-kubeconfig || $cmd == bootstrap-kubeconfig ]] && [[ -z $node_arg ]]; then node_arg=$1
      elif [[ $cmd == metrics-server || $cmd == serving-cert ]]; then cmd_args+=("$1")
      else die "unexpected argument $1 (see: $0 help)"; fi
      shift ;;
  esac
done
[[ -n $cmd ]] || { usage >&2; exit 2; }

name=${opt_name:-default}
[[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "bad cluster name '$name'"
dir=${opt_dir:-${HOME:?HOME is not set}/.cache/vk/clusters/$name}
dir=$(realpath -m -- "$dir")
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"
[[ $key_type == ec || $key_type == rsa ]] || die "VK_CLUSTER_KEY_TYPE must be ec or rsa"
[[ $sa_key_type == ec || $sa_key_type == rsa ]] || die "VK_CLUSTER_SA_KEY_TYPE must be ec or rsa"
for v in opt_base opt_api opt_etcd opt_peer opt_cm opt_sched; do
  [[ -z ${!v} || ${!v} =~ ^[0-9]+$ ]] || die "ports must be numbers (got '${!v}')"
done
[[ -z $opt_profile || $opt_profile == default || $opt_profile == bench ]] \
  || die "unknown profile '$opt_profile' (default or bench)"
if [[ -n $opt_base ]]; then
  : "${opt_api:=$opt_base}" "${opt_etcd:=$((opt_base + 1))}" "${opt_peer:=$((opt_base + 2))}"
  : "${opt_cm:=$((opt_base + 3))}" "${opt_sched:=$((opt_base + 4))}"
fi

# ---------------------------------------------------------------- stored configuration
# Written by `up`: APISERVER_PORT ETCD_PORT ETCD_PEER_PORT CM_PORT SCHED_PORT PROFILE BIN NAME
APISERVER_PORT="" ETCD_PORT="" ETCD_PEER_PORT="" CM_PORT="" SCHED_PORT="" PROFILE="" BIN=""
load_config() {
  [[ -f $dir/cluster.env ]] || return 1
  # shellcheck source=/dev/null
  source "$dir/cluster.env"
}
save_config() {
  local v tmp="$dir/cluster.env.tmp"
  printf 'NAME=%q\n' "$name" >"$tmp"
  for v in APISERVER_PORT ETCD_PORT ETCD_PEER_PORT CM_PORT SCHED_PORT PROFILE BIN; do
    printf '%s=%q\n' "$v" "${!v}" >>"$tmp"
  done
  mv -f "$tmp" "$dir/cluster.env"
}
require_config() { load_config || die "cluster '$name' is not up (no $dir/cluster.env; run: $0 up)"; }

lock() { # serialise commands on one cluster; fd 9 is closed for the daemons
  if [[ ! -d $dir ]]; then mkdir -p "$dir"; touch "$dir/.vk-cluster"; fi # ours: down may delete it
  exec 9>"$dir/.lock"
  flock -w 300 9 || die "another cluster.sh holds $dir/.lock"
}

# ---------------------------------------------------------------- processes
pid_of() { # pid_of COMPONENT: prints the pid if that component of this cluster runs
  local f="$dir/run/$1.pid" pid
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # guard against pid reuse: the command line must be ours (it names the cluster directory)
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/" || return 1
  echo "$pid"
}
stray_pids() { # control-plane processes naming this cluster dir, whatever their pid files say
  local pid args exe
  while read -r pid args; do
    [[ $pid == "$$" ]] && continue
    exe=${args%% *}; exe=${exe##*/}
    case " ${components[*]} " in *" $exe "*) ;; *) continue ;; esac
    if [[ $args == *"$dir/"* ]]; then echo "$pid"; fi
  done < <(ps -eo pid=,args=)
  return 0
}
start() { # start COMPONENT ARGS...: detached (own session), pid file, log appended
  local c=$1; shift
  local logf="$dir/logs/$c.log" pidf="$dir/run/$c.pid" i
  rm -f "$pidf"
  printf '\n===== %s cluster.sh starting: %s\n' "$(date -Is)" "$*" >>"$logf"
  # A small bash parent (own session, so it outlives this script) reaps the component as soon as it
  # exits and notes the exit status in the log; init may be slow to reap orphans (zombies in ps).
  # shellcheck disable=SC2016
  setsid bash -c '"$@" & echo $! >"$0"; wait $!; rc=$?
    printf "===== %s %s exited with status %s\n" "$(date -Is)" "${1##*/}" "$rc"' \
    "$pidf" "$@" </dev/null >>"$logf" 2>&1 9>&- &
  for ((i = 0; i < 100; i++)); do [[ -s $pidf ]] && break; sleep 0.05; done
  [[ -s $pidf ]] || die "$c did not start; see $logf"
  log "started $c (pid $(<"$pidf"), log $logf)"
}
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
check_ports() { # check_ports COMPONENT PORT...
  local c=$1 p; shift
  for p in "$@"; do
    [[ $p == 0 ]] && continue
    ! port_in_use "$p" || die "port $p (for $c) is already in use on 127.0.0.1; pick other ports (--port-base N, see $0 help)"
  done
}
fail_component() { # fail_component COMPONENT MESSAGE
  local logf="$dir/logs/$1.log"
  log "$1 log tail ($logf):"
  tail -n 25 "$logf" 2>/dev/null | sed 's/^/    /' >&2 || true
  die "$2; see $logf (clean up with: $0 down --name $name${opt_dir:+ --dir $dir})"
}
alive() { # alive PID: exists and is not a zombie waiting for init to reap it
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ -n $st && $st != Z* ]]
}
terminate() { # terminate PID...: SIGTERM, wait up to 15 s, SIGKILL, wait
  (($#)) || return 0
  local pid i any
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    any=0
    for pid in "$@"; do if alive "$pid"; then any=1; fi; done
    ((any)) || return 0
    sleep 0.1
  done
  for pid in "$@"; do
    if alive "$pid"; then log "pid $pid ignored SIGTERM for 15s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  done
  for ((i = 0; i < 50; i++)); do
    any=0
    for pid in "$@"; do if alive "$pid"; then any=1; fi; done
    ((any)) || return 0
    sleep 0.1
  done
}
stop_all() { # apiserver and its clients first (the apiserver shuts down slowly without etcd), then etcd
  local c pid first=() etcd=() left
  ms_stop
  for c in kube-scheduler kube-controller-manager kube-apiserver; do pid=$(pid_of "$c") && first+=("$pid"); done
  pid=$(pid_of etcd) && etcd+=("$pid")
  while read -r pid; do
    [[ -n $pid && " ${first[*]} ${etcd[*]} " != *" $pid "* ]] && first+=("$pid")
  done < <(stray_pids)
  if ((${#first[@]} + ${#etcd[@]})); then
    local all=("${first[@]}" "${etcd[@]}")
    log "stopping pids ${all[*]}"
    terminate "${first[@]}"
    terminate "${etcd[@]}"
  fi
  left=""
  for pid in $(stray_pids); do if alive "$pid"; then left+="$pid "; fi; done
  [[ -z $left ]] || die "processes still running after SIGKILL: $left"
  rm -f "$dir"/run/*.pid
}

# ---------------------------------------------------------------- PKI
genkey() { # genkey FILE [rsa]
  local t=${2:-$key_type}
  if [[ $t == rsa ]]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
  else
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  fi
  chmod 600 "$1"
}
make_ca() { # make_ca [BASE CN]: BASE.key + BASE.crt (default: the cluster CA)
  local pki=$dir/pki base=${1:-$dir/pki/ca} cn=${2:-vk-$name-ca}
  genkey "$base.key"
  cat >"$pki/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = vk
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
EOF
  openssl req -x509 -new -config "$pki/openssl.cnf" -extensions v3_ca -key "$base.key" \
    -subj "/CN=$cn" -days 3650 -sha256 -set_serial "0x$(openssl rand -hex 16)" \
    -out "$base.crt" 2>/dev/null || die "openssl failed to make the CA $base.crt"
}
# sign OUT_BASE SUBJECT EKU [SAN]: OUT_BASE.key + OUT_BASE.crt signed by the cluster CA (or by
# the CA $sign_ca.crt/.key when sign_ca is set)
sign() {
  local base=$1 subj=$2 eku=$3 san=${4:-} pki=$dir/pki ku=digitalSignature ca=${sign_ca:-$dir/pki/ca}
  [[ $key_type == rsa ]] && ku+=", keyEncipherment"
  [[ -s $base.key ]] || genkey "$base.key"
  {
    echo "[leaf]"
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, $ku"
    echo "extendedKeyUsage = $eku"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    [[ -z $san ]] || echo "subjectAltName = $san"
  } >"$base.ext"
  openssl req -new -config "$pki/openssl.cnf" -key "$base.key" -subj "$subj" 2>/dev/null \
    | openssl x509 -req -CA "$ca.crt" -CAkey "$ca.key" -set_serial "0x$(openssl rand -hex 16)" \
        -days 825 -sha256 -extfile "$base.ext" -extensions leaf -out "$base.crt.tmp" 2>/dev/null \
    || die "openssl failed to sign $base.crt"
  mv -f "$base.crt.tmp" "$base.crt"
  rm -f "$base.ext"
}
make_pki() {
  local pki=$dir/pki
  mkdir -p "$pki"; chmod 700 "$pki"
  [[ -s $pki/ca.crt && -s $pki/ca.key ]] || { rm -f "$pki"/*; make_ca; }
  [[ -s $pki/apiserver.crt ]] || sign "$pki/apiserver" "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1, IP:10.0.0.1, IP:$(ms_host_ip), DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local"
  [[ -s $pki/apiserver-kubelet-client.crt ]] || sign "$pki/apiserver-kubelet-client" \
    "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  [[ -s $pki/admin.crt ]] || sign "$pki/admin" "/O=system:masters/CN=admin" clientAuth
  [[ -s $pki/controller-manager.crt ]] || sign "$pki/controller-manager" \
    "/CN=system:kube-controller-manager" clientAuth
  [[ -s $pki/scheduler.crt ]] || sign "$pki/scheduler" "/CN=system:kube-scheduler" clientAuth
  [[ -s $pki/front-proxy-ca.crt && -s $pki/front-proxy-ca.key ]] \
    || { rm -f "$pki"/front-proxy-*; make_ca "$pki/front-proxy-ca" "vk-$name-front-proxy-ca"; }
  [[ -s $pki/front-proxy-client.crt ]] || sign_ca=$pki/front-proxy-ca sign "$pki/front-proxy-client" \
    "/CN=front-proxy-client" clientAuth
  if [[ ! -s $pki/sa.key || ! -s $pki/sa.pub ]]; then
    genkey "$pki/sa.key" "$sa_key_type"
    openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null || die "openssl failed on sa.key"
  fi
}
b64() { base64 -w0 <"$1"; }
write_kubeconfig() { # write_kubeconfig OUT USER CERT KEY [SERVER]
  local out=$1 user=$2 tmp="$1.tmp" server=${5:-https://127.0.0.1:$APISERVER_PORT}
  cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: vk-$name
  cluster:
    server: $server
    certificate-authority-data: $(b64 "$dir/pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(b64 "$3")
    client-key-data: $(b64 "$4")
contexts:
- name: vk-$name
  context:
    cluster: vk-$name
    user: $user
current-context: vk-$name
EOF
  chmod 600 "$tmp"; mv -f "$tmp" "$out"
}
make_node() { # make_node NAME: prints the kubeconfig path
  local n=$1 nd="$dir/nodes/$1"
  [[ ${#n} -le 253 && $n =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] \
    || die "bad node name '$n' (lowercase DNS subdomain)"
  mkdir -p "$nd"
  [[ -s $nd/node.crt ]] || sign "$nd/node" "/O=system:nodes/CN=system:node:$n" clientAuth
  [[ -s $nd/serving.crt ]] || sign "$nd/serving" "/O=system:nodes/CN=system:node:$n" serverAuth \
    "DNS:$n, DNS:localhost, IP:127.0.0.1"
  [[ -s $nd/kubeconfig ]] || write_kubeconfig "$nd/kubeconfig" "system:node:$n" "$nd/node.crt" "$nd/node.key"
  echo "$nd/kubeconfig"
}
write_kubeconfigs() { # (re)write every kubeconfig: the apiserver port may have changed
  local nd
  mkdir -p "$dir/kubeconfig"
  write_kubeconfig "$dir/admin.kubeconfig" admin "$dir/pki/admin.crt" "$dir/pki/admin.key"
  write_kubeconfig "$dir/kubeconfig/controller-manager.kubeconfig" system:kube-controller-manager \
    "$dir/pki/controller-manager.crt" "$dir/pki/controller-manager.key"
  write_kubeconfig "$dir/kubeconfig/scheduler.kubeconfig" system:kube-scheduler \
    "$dir/pki/scheduler.crt" "$dir/pki/scheduler.key"
  for nd in "$dir"/nodes/*/; do
    [[ -s $nd/node.crt ]] || continue
    write_kubeconfig "${nd}kubeconfig" "system:node:$(basename "$nd")" "${nd}node.crt" "${nd}node.key"
  done
}

# ---------------------------------------------------------------- health
kubectl_admin() { "$BIN/kubectl" --kubeconfig "$dir/admin.kubeconfig" "$@"; }
apiserver_ready() { [[ $(kubectl_admin get --raw /readyz --request-timeout=3s 2>/dev/null) == ok ]]; }
etcd_healthy() { curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; }
https_healthy() { # https_healthy PORT: the component's /healthz (an always-allowed path)
  [[ $1 != 0 ]] || return 0
  [[ $(curl -sk --max-time 2 "https://127.0.0.1:$1/healthz" 2>/dev/null) == ok ]]
}
export_line() { printf 'export KUBECONFIG=%s\n' "$dir/admin.kubeconfig"; }
all_running() { local c; for c in "${components[@]}"; do pid_of "$c" >/dev/null || return 1; done; }

# ---------------------------------------------------------------- component command lines
etcd_args() {
  local a=(--name "vk-$name" --data-dir "$dir/etcd"
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT"
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT"
    --initial-cluster "vk-$name=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new
    --unsafe-no-fsync --log-level warn)
  [[ $PROFILE != bench ]] || a+=(--quota-backend-bytes 8589934592)
  # shellcheck disable=SC2206
  a+=(${VK_ETCD_ARGS:-})
  printf '%s\0' "${a[@]}"
}
apiserver_args() {
  local p=$dir/pki
  local a=(--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT"
    --etcd-servers="http://127.0.0.1:$ETCD_PORT"
    "--authorization-mode=Node,RBAC" --enable-admission-plugins=NodeRestriction
    --client-ca-file="$p/ca.crt" --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key"
    --kubelet-client-certificate="$p/apiserver-kubelet-client.crt" --kubelet-client-key="$p/apiserver-kubelet-client.key"
    --kubelet-preferred-address-types=InternalIP
    --service-account-issuer=https://kubernetes.default.svc.cluster.local
    --service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key"
    --service-cluster-ip-range=10.0.0.0/24 --endpoint-reconciler-type=none --allow-privileged=true
    --cert-dir="$dir/run/kube-apiserver")
  # the aggregation layer (metrics-server); endpoint routing, as there is no kube-proxy
  a+=(--requestheader-client-ca-file="$p/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client
    --requestheader-extra-headers-prefix=X-Remote-Extra- --requestheader-group-headers=X-Remote-Group
    --requestheader-username-headers=X-Remote-User --proxy-client-cert-file="$p/front-proxy-client.crt"
    --proxy-client-key-file="$p/front-proxy-client.key" --enable-aggregator-routing=true)
  a+=(--enable-bootstrap-token-auth=true)
  [[ $PROFILE != bench ]] || a+=(--max-requests-inflight=3000 --max-mutating-requests-inflight=1000
    --enable-priority-and-fairness=false)
  # shellcheck disable=SC2206
  a+=(${VK_APISERVER_ARGS:-})
  printf '%s\0' "${a[@]}"
}
controller_manager_args() {
  local p=$dir/pki
  local a=(--bind-address=127.0.0.1 --secure-port="$CM_PORT" --cert-dir="$dir/run/kube-controller-manager"
    --kubeconfig="$dir/kubeconfig/controller-manager.kubeconfig" --leader-elect=false
    --service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt"
    --cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key"
    --use-service-account-credentials=true --service-cluster-ip-range=10.0.0.0/24
    --flex-volume-plugin-dir="$dir/run/kube-controller-manager/flexvolume")
  a+=(--horizontal-pod-autoscaler-sync-period=5s) # default 15 s; tests wait for scaling
  a+=("--controllers=*,bootstrapsigner,tokencleaner")
  [[ $PROFILE != bench ]] || a+=(--kube-api-qps=1000 --kube-api-burst=2000
    --concurrent-deployment-syncs=50 --concurrent-replicaset-syncs=50 --concurrent-gc-syncs=50)
  # shellcheck disable=SC2206
  a+=(${VK_CONTROLLER_MANAGER_ARGS:-})
  printf '%s\0' "${a[@]}"
}
scheduler_args() {
  local qps=50 burst=100
  [[ $PROFILE != bench ]] || { qps=1000; burst=2000; }
  cat >"$dir/scheduler-config.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $dir/kubeconfig/scheduler.kubeconfig
  qps: $qps
  burst: $burst
leaderElection:
  leaderElect: false
EOF
  local a=(--config="$dir/scheduler-config.yaml" --bind-address=127.0.0.1 --secure-port="$SCHED_PORT"
    --cert-dir="$dir/run/kube-scheduler")
  # shellcheck disable=SC2206
  a+=(${VK_SCHEDULER_ARGS:-})
  printf '%s\0' "${a[@]}"
}
start_component() { # start_component COMPONENT ARGS_FUNCTION
  local args=()
  mapfile -d '' -t args < <("$2")
  start "$1" "$BIN/$1" "${args[@]}"
}

# shellcheck source-path=SCRIPTDIR source=cluster/metrics-server.sh
source "$here/cluster/metrics-server.sh"

# ---------------------------------------------------------------- commands
resolve_bin() {
  local b
  if [[ -n ${VK_CLUSTER_BIN:-} ]]; then b=$VK_CLUSTER_BIN
  else
    [[ -x $here/cluster/build.sh ]] || die "missing $here/cluster/build.sh"
    b=$("$here/cluster/build.sh") || die "building the control plane failed (see above)"
    b=${b##*$'\n'}
  fi
  local x
  for x in "${binaries[@]}"; do [[ -x $b/$x ]] || die "missing binary $b/$x"; done
  echo "$b"
}

cmd_up() {
  need_cmd openssl "make the cluster certificates"
  need_cmd curl "check component health"
  need_cmd setsid "start the components"
  need_cmd flock "serialise cluster.sh runs"
  lock
  local t0 running=0 c
  t0=$(now)
  load_config || true
  for c in "${components[@]}"; do pid_of "$c" >/dev/null && running=1; done
  # requested values (flags/env) override stored ones, but not while components run
  local want_api=${opt_api:-${APISERVER_PORT:-6443}} want_etcd=${opt_etcd:-${ETCD_PORT:-2379}}
  local want_peer=${opt_peer:-} want_prof=${opt_profile:-${PROFILE:-default}}
  [[ -n $want_peer ]] || { if [[ -n $opt_etcd || -z $ETCD_PEER_PORT ]]; then want_peer=$((want_etcd + 1)); else want_peer=$ETCD_PEER_PORT; fi; }
  local want_cm=${opt_cm:-} want_sched=${opt_sched:-}
  [[ -n $want_cm ]] || { if [[ -n $opt_api || -z $CM_PORT ]]; then want_cm=$((want_api + 1000)); else want_cm=$CM_PORT; fi; }
  [[ -n $want_sched ]] || { if [[ -n $opt_api || -z $SCHED_PORT ]]; then want_sched=$((want_api + 2000)); else want_sched=$SCHED_PORT; fi; }
  if ((running)) && [[ "$want_api $want_etcd $want_peer $want_cm $want_sched $want_prof" != \
      "$APISERVER_PORT $ETCD_PORT $ETCD_PEER_PORT $CM_PORT $SCHED_PORT $PROFILE" ]]; then
    log "warning: cluster '$name' already runs with ports api=$APISERVER_PORT etcd=$ETCD_PORT/$ETCD_PEER_PORT" \
        "cm=$CM_PORT sched=$SCHED_PORT profile=$PROFILE; ignoring the requested settings (run down first)"
  else
    APISERVER_PORT=$want_api ETCD_PORT=$want_etcd ETCD_PEER_PORT=$want_peer
    CM_PORT=$want_cm SCHED_PORT=$want_sched PROFILE=$want_prof
  fi
  if all_running && [[ -s $dir/admin.kubeconfig && -x ${BIN:-/nonexistent}/kubectl ]] && apiserver_ready; then
    export_line; return 0
  fi
  pid_of etcd >/dev/null || check_ports etcd "$ETCD_PORT" "$ETCD_PEER_PORT"
  pid_of kube-apiserver >/dev/null || check_ports kube-apiserver "$APISERVER_PORT"
  pid_of kube-controller-manager >/dev/null || check_ports kube-controller-manager "$CM_PORT"
  pid_of kube-scheduler >/dev/null || check_ports kube-scheduler "$SCHED_PORT"
  BIN=$(resolve_bin)
  mkdir -p "$dir/logs" "$dir/etcd" "$dir/run/kube-apiserver" "$dir/run/kube-controller-manager" \
    "$dir/run/kube-scheduler"
  touch "$dir/.vk-cluster"
  chmod 700 "$dir/etcd"
  make_pki
  save_config
  pid_of kube-apiserver >/dev/null || write_kubeconfigs
  make_node virtual-kubelet >/dev/null
  log "cluster '$name' in $dir: apiserver https://127.0.0.1:$APISERVER_PORT, etcd $ETCD_PORT/$ETCD_PEER_PORT," \
      "controller-manager $CM_PORT, scheduler $SCHED_PORT, profile $PROFILE"

  local deadline=$(($(date +%s) + timeout))
  if ! pid_of etcd >/dev/null; then
    check_ports etcd "$ETCD_PORT" "$ETCD_PEER_PORT"
    start_component etcd etcd_args
  fi
  until etcd_healthy; do
    pid_of etcd >/dev/null || fail_component etcd "etcd exited"
    (($(date +%s) < deadline)) || fail_component etcd "etcd not healthy after ${timeout}s"
    sleep 0.2
  done
  if ! pid_of kube-apiserver >/dev/null; then
    check_ports kube-apiserver "$APISERVER_PORT"
    start_component kube-apiserver apiserver_args
  fi
  until apiserver_ready; do
    pid_of etcd >/dev/null || fail_component etcd "etcd exited"
    pid_of kube-apiserver >/dev/null || fail_component kube-apiserver "kube-apiserver exited"
    if (($(date +%s) >= deadline)); then
      kubectl_admin get --raw '/readyz?verbose' --request-timeout=3s 2>&1 | grep -v ' ok$' | sed 's/^/    /' >&2 || true
      fail_component kube-apiserver "kube-apiserver /readyz not ok after ${timeout}s"
    fi
    sleep 0.3
  done
  # started after the apiserver is ready: the controller-manager gives up if it is not healthy soon
  if ! pid_of kube-controller-manager >/dev/null; then
    check_ports kube-controller-manager "$CM_PORT"
    start_component kube-controller-manager controller_manager_args
  fi
  if ! pid_of kube-scheduler >/dev/null; then
    check_ports kube-scheduler "$SCHED_PORT"
    start_component kube-scheduler scheduler_args
  fi
  # pods cannot be created before the controller-manager has made the default service account
  until kubectl_admin get serviceaccount default -n default --request-timeout=3s >/dev/null 2>&1 \
        && https_healthy "$SCHED_PORT" && https_healthy "$CM_PORT"; do
    for c in "${components[@]}"; do pid_of "$c" >/dev/null || fail_component "$c" "$c exited"; done
    if (($(date +%s) >= deadline)); then
      https_healthy "$SCHED_PORT" || fail_component kube-scheduler "kube-scheduler /healthz not ok after ${timeout}s"
      fail_component kube-controller-manager "service account default/default missing after ${timeout}s"
    fi
    sleep 0.3
  done
  bootstrap_rbac
  log "cluster '$name' is up ($(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')s)"
  export_line
}

bootstrap_rbac() { # the bindings kubeadm makes for TLS bootstrap; serving CSRs stay manual
  local binding role group manifest=""
  for binding in "vk:kubelet-bootstrap system:node-bootstrapper system:bootstrappers" \
    "vk:node-autoapprove-bootstrap system:certificates.k8s.io:certificatesigningrequests:nodeclient system:bootstrappers" \
    "vk:node-autoapprove-certificate-rotation system:certificates.k8s.io:certificatesigningrequests:selfnodeclient system:nodes"; do
    read -r binding role group <<<"$binding"
    manifest+="---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: \"$binding\"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: \"$role\"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: \"$group\"}]
"
  done
  kubectl_admin apply -f - >/dev/null <<<"$manifest" || die "cannot create the TLS bootstrap RBAC bindings"
}

cmd_down() { # down [keep]
  local keep=${1:-}
  need_cmd flock "serialise cluster.sh runs"
  if [[ ! -d $dir ]]; then log "cluster '$name' is not up ($dir does not exist)"; return 0; fi
  [[ -f $dir/.vk-cluster ]] || die "$dir has no .vk-cluster marker; not a cluster directory of cluster.sh"
  lock
  stop_all
  if [[ -n $keep ]]; then log "cluster '$name' stopped; state kept in $dir"; return 0; fi
  [[ $dir != / && $dir != "$HOME" ]] || die "refusing to delete $dir"
  rm -rf -- "$dir"
  log "cluster '$name' is down; removed $dir"
}

cmd_status() {
  require_config
  local ok=0 c pid health
  printf 'cluster %s  dir %s  profile %s\n' "$name" "$dir" "$PROFILE"
  for c in "${components[@]}"; do
    if pid=$(pid_of "$c"); then
      case $c in
        etcd) if etcd_healthy; then health="healthy (127.0.0.1:$ETCD_PORT)"; else health="NOT healthy"; ok=1; fi ;;
        kube-apiserver) if apiserver_ready; then health="readyz ok (https://127.0.0.1:$APISERVER_PORT)"; else health="readyz NOT ok"; ok=1; fi ;;
        kube-controller-manager) if https_healthy "$CM_PORT"; then health="healthz ok (port $CM_PORT)"; else health="healthz NOT ok"; ok=1; fi ;;
        kube-scheduler) if https_healthy "$SCHED_PORT"; then health="healthz ok (port $SCHED_PORT)"; else health="healthz NOT ok"; ok=1; fi ;;
      esac
      printf '%-24s running (pid %s)  %s\n' "$c" "$pid" "$health"
    else
      printf '%-24s NOT running  (log %s)\n' "$c" "$dir/logs/$c.log"; ok=1
    fi
  done
  return "$ok"
}

cmd_env() {
  require_config
  if ! pid_of kube-apiserver >/dev/null || ! apiserver_ready; then die "cluster '$name' is not up (run: $0 up)"; fi
  export_line
}

cmd_node_kubeconfig() {
  [[ -n $node_arg ]] || die "usage: $0 node-kubeconfig NODE_NAME"
  need_cmd openssl "make the node certificate"
  need_cmd flock "serialise cluster.sh runs"
  require_config
  [[ -s $dir/pki/ca.key ]] || die "cluster '$name' has no CA (run: $0 up)"
  lock
  make_node "$node_arg"
}

cmd_bootstrap_kubeconfig() {
  [[ -n $node_arg ]] || die "usage: $0 bootstrap-kubeconfig NODE_NAME"
  [[ ${#node_arg} -le 253 && $node_arg =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] \
    || die "bad node name '$node_arg' (lowercase DNS subdomain)"
  require_config
  if ! pid_of kube-apiserver >/dev/null || ! apiserver_ready; then die "cluster '$name' is not up (run: $0 up)"; fi
  bootstrap_rbac
  local id secret expiration
  id=$(LC_ALL=C tr -dc 'a-z0-9' </dev/urandom | head -c 6) || true
  secret=$(LC_ALL=C tr -dc 'a-z0-9' </dev/urandom | head -c 16) || true
  [[ ${#id} == 6 && ${#secret} == 16 ]] || die "cannot make a random token"
  expiration=$(date -u -d '+24 hours' +%Y-%m-%dT%H:%M:%SZ)
  kubectl_admin apply -f - >/dev/null <<EOF || die "cannot create the bootstrap token Secret"
apiVersion: v1
kind: Secret
metadata:
  name: bootstrap-token-$id
  namespace: kube-system
type: bootstrap.kubernetes.io/token
stringData:
  description: "vk bootstrap token for node $node_arg"
  token-id: "$id"
  token-secret: "$secret"
  expiration: "$expiration"
  usage-bootstrap-authentication: "true"
  auth-extra-groups: "system:bootstrappers:vk"
EOF
  log "bootstrap token $id for node $node_arg (Secret kube-system/bootstrap-token-$id) expires $expiration"
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: vk-$name
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(b64 "$dir/pki/ca.crt")
users:
- name: kubelet-bootstrap
  user:
    token: $id.$secret
contexts:
- name: vk-$name
  context:
    cluster: vk-$name
    user: kubelet-bootstrap
current-context: vk-$name
EOF
}

case $cmd in
  up) cmd_up ;;
  down) cmd_down ;;
  stop) cmd_down keep ;;
  status) cmd_status ;;
  env) cmd_env ;;
  node-kubeconfig) cmd_node_kubeconfig ;;
  bootstrap-kubeconfig) cmd_bootstrap_kubeconfig ;;
  bin) resolve_bin ;;
  metrics-server)
    case "${cmd_args[*]}" in
      up) cmd_metrics_server_up ;;
      down) cmd_metrics_server_down ;;
      node-ip) require_config; ms_host_ip ;;
      *) die "usage: $0 metrics-server up|down|node-ip" ;;
    esac ;;
  serving-cert) cmd_serving_cert ;;
  help) usage ;;
  *) die "unknown command '$cmd' (see: $0 help)" ;;
esac
