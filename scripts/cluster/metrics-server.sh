# shellcheck shell=bash disable=SC2154 # dir, name, here, timeout, cmd_args: set by cluster.sh
# metrics-server.sh — sourced by scripts/cluster.sh (it uses that script's helpers and settings):
# metrics-server on a cluster of cluster.sh, registered as the APIService v1beta1.metrics.k8s.io,
# so that `kubectl top` and the HPA read what vk's kubelet API serves.
#
# The API server refuses loopback endpoints, so metrics-server gets an address of its own: a
# network namespace vk-ms-PORT (PORT: the apiserver's) joined to the host by a veth pair on a
# /30 of 10.200.0.0/16 that depends only on PORT (so clusters of different ports never clash):
#   HOST_IP (host side, vkmsPORT)  the address nodes watched by metrics-server use as --node-ip;
#                                  the apiserver port on it is DNATed to 127.0.0.1 (route_localnet),
#                                  so metrics-server reaches the apiserver (HOST_IP is in its SANs)
#   NS_IP   (vkmsPORTn in the netns) metrics-server listens there on port 10250, the endpoint
#                                  of Service kube-system/metrics-server
# metrics-server verifies kubelets' serving certificates against the cluster CA and dials their
# InternalIP: a vk node scraped by it runs with `--node-ip HOST_IP` and a serving certificate
# for that IP (`cluster.sh serving-cert NODE HOST_IP`).

ms_port=10250
ms_resolution=10s

ms_net() { # sets ms_ns ms_host_if ms_ns_if HOST_IP NS_IP for APISERVER_PORT
  local n=$((APISERVER_PORT % 16384 * 4))
  ms_ns=vk-ms-$APISERVER_PORT ms_host_if=vkms$APISERVER_PORT ms_ns_if=vkms${APISERVER_PORT}n
  HOST_IP=10.200.$((n / 256)).$((n % 256 + 1)) NS_IP=10.200.$((n / 256)).$((n % 256 + 2))
}
ms_host_ip() { ms_net; echo "$HOST_IP"; }

ms_net_up() {
  ms_net
  if ip netns list | grep -qw -- "$ms_ns"; then
    [[ -f $dir/run/metrics-server.netns ]] \
      || die "network namespace $ms_ns exists but is not this cluster's (left by another? ip netns del $ms_ns)"
    return 0
  fi
  ! ip link show "$ms_host_if" >/dev/null 2>&1 || die "interface $ms_host_if exists already (ip link del $ms_host_if)"
  local taken
  taken=$(ip -4 route show to match "$NS_IP" | grep -v '^default' || true)
  [[ -z $taken ]] || die "$NS_IP is on a network of this host already ($taken); metrics-server needs 10.200.0.0/16"
  echo "$ms_ns" >"$dir/run/metrics-server.netns"
  ip netns add "$ms_ns" || die "cannot create network namespace $ms_ns"
  if ! { ip link add "$ms_host_if" type veth peer name "$ms_ns_if" netns "$ms_ns" \
      && ip addr add "$HOST_IP/30" dev "$ms_host_if" && ip link set "$ms_host_if" up \
      && ip -n "$ms_ns" addr add "$NS_IP/30" dev "$ms_ns_if" && ip -n "$ms_ns" link set "$ms_ns_if" up \
      && ip -n "$ms_ns" link set lo up; }; then
    die "cannot set up the veth pair $ms_host_if/$ms_ns_if ($HOST_IP/$NS_IP)"
  fi
  # only connections from the namespace to the apiserver port are sent to 127.0.0.1
  sysctl -qw "net.ipv4.conf.$ms_host_if.route_localnet=1" || die "cannot set route_localnet on $ms_host_if"
  nft -f - <<EOF || die "nft could not forward $HOST_IP:$APISERVER_PORT to the apiserver"
table ip $ms_ns {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "$ms_host_if" ip daddr $HOST_IP tcp dport $APISERVER_PORT dnat to 127.0.0.1:$APISERVER_PORT
  }
}
EOF
  log "network namespace $ms_ns: metrics-server $NS_IP, host $HOST_IP ($ms_host_if)"
}

ms_net_down() { # removes what ms_net_up made (only if this cluster made it)
  [[ -f $dir/run/metrics-server.netns ]] || return 0
  load_config || true
  [[ -n $APISERVER_PORT ]] || return 0
  ms_net
  if nft list table ip "$ms_ns" >/dev/null 2>&1; then nft delete table ip "$ms_ns" || log "warning: cannot delete nft table $ms_ns"; fi
  if ip link show "$ms_host_if" >/dev/null 2>&1; then ip link del "$ms_host_if" || log "warning: cannot delete $ms_host_if"; fi
  if ip netns list | grep -qw -- "$ms_ns"; then ip netns del "$ms_ns" || log "warning: cannot delete netns $ms_ns"; fi
  rm -f "$dir/run/metrics-server.netns"
}

ms_stop() { # the metrics-server process and its network; called by `stop` and `down` too
  local pid pids=()
  if pid=$(pid_of metrics-server); then pids+=("$pid"); fi
  while read -r pid args; do # a strays whose pid file is gone
    [[ ${args%% *} == */metrics-server && $args == *"$dir/"* && " ${pids[*]} " != *" $pid "* ]] && pids+=("$pid")
  done < <(ps -eo pid=,args=)
  if ((${#pids[@]})); then log "stopping metrics-server (pid ${pids[*]})"; terminate "${pids[@]}"; fi
  rm -f "$dir/run/metrics-server.pid"
  ms_net_down
}

ms_manifests() { # the objects that register metrics-server (arguments: namespace IP, CA file)
  cat <<EOF
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata:
    name: system:aggregated-metrics-reader
    labels:
      rbac.authorization.k8s.io/aggregate-to-admin: "true"
      rbac.authorization.k8s.io/aggregate-to-edit: "true"
      rbac.authorization.k8s.io/aggregate-to-view: "true"
  rules:
  - apiGroups: [metrics.k8s.io]
    resources: [pods, nodes]
    verbs: [get, list, watch]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata:
    name: system:metrics-server
  rules:
  - apiGroups: [""]
    resources: [nodes/metrics]
    verbs: [get]
  - apiGroups: [""]
    resources: [pods, nodes]
    verbs: [get, list, watch]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata:
    name: system:metrics-server
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:metrics-server}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: metrics-server}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata:
    name: metrics-server:system:auth-delegator
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: metrics-server}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata:
    name: metrics-server-auth-reader
    namespace: kube-system
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: metrics-server}]
- apiVersion: v1
  kind: Service
  metadata:
    name: metrics-server
    namespace: kube-system
  spec:
    ports: [{name: https, port: 443, protocol: TCP, targetPort: $ms_port}]
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    name: metrics-server
    namespace: kube-system
    labels:
      kubernetes.io/service-name: metrics-server
      endpointslice.kubernetes.io/managed-by: cluster.sh.vk.local
  addressType: IPv4
  endpoints: [{addresses: ["$1"], conditions: {ready: true}}]
  ports: [{name: https, port: $ms_port, protocol: TCP}]
- apiVersion: apiregistration.k8s.io/v1
  kind: APIService
  metadata:
    name: v1beta1.metrics.k8s.io
  spec:
    group: metrics.k8s.io
    version: v1beta1
    service: {namespace: kube-system, name: metrics-server, port: 443}
    caBundle: $(b64 "$2")
    groupPriorityMinimum: 100
    versionPriority: 100
EOF
}

ms_args() {
  local p=$dir/pki m=$dir/metrics-server
  local a=(--bind-address="$NS_IP" --secure-port="$ms_port" --cert-dir="$dir/run/metrics-server"
    --tls-cert-file="$m/serving.crt" --tls-private-key-file="$m/serving.key"
    --kubeconfig="$m/kubeconfig" --authentication-kubeconfig="$m/kubeconfig"
    --authorization-kubeconfig="$m/kubeconfig"
    --kubelet-certificate-authority="$p/ca.crt" --kubelet-preferred-address-types=InternalIP
    --kubelet-use-node-status-port --metric-resolution="$ms_resolution" --kubelet-request-timeout=5s
    --v=2)
  # shellcheck disable=SC2206
  a+=(${VK_METRICS_SERVER_ARGS:-})
  printf '%s\0' "${a[@]}"
}

ms_available() {
  [[ $(kubectl_admin get apiservice v1beta1.metrics.k8s.io --request-timeout=3s \
    -o 'jsonpath={.status.conditions[?(@.type=="Available")].status}' 2>/dev/null) == True ]]
}

cmd_metrics_server_up() {
  [[ $(id -u) == 0 ]] || die "metrics-server needs root (it makes a network namespace and a veth pair)"
  need_cmd ip "make metrics-server's network namespace (iproute2)"
  need_cmd nft "forward the apiserver port into metrics-server's namespace (nftables)"
  need_cmd sysctl "allow that forwarding (procps)"
  need_cmd openssl "make metrics-server's certificates"
  require_config
  if ! pid_of kube-apiserver >/dev/null || ! apiserver_ready; then die "cluster '$name' is not up (run: $0 up)"; fi
  tr '\0' ' ' <"/proc/$(pid_of kube-apiserver)/cmdline" | grep -q -- --enable-aggregator-routing=true \
    || die "kube-apiserver of cluster '$name' runs without the aggregation layer; restart it ($0 stop; $0 up)"
  lock
  ms_net
  openssl x509 -in "$dir/pki/apiserver.crt" -noout -ext subjectAltName 2>/dev/null | grep -qw "IP Address:$HOST_IP" \
    || die "the apiserver certificate has no SAN for $HOST_IP; recreate the cluster ($0 down; $0 up)"
  local bin
  bin=$("$here/cluster/build.sh" metrics-server) || die "building metrics-server failed (see above)"
  bin=${bin##*$'\n'}
  [[ -x $bin/metrics-server ]] || die "missing binary $bin/metrics-server"
  local m=$dir/metrics-server
  mkdir -p "$m" "$dir/run/metrics-server" "$dir/logs"
  [[ -s $m/client.crt ]] || sign "$m/client" "/CN=metrics-server" clientAuth
  [[ -s $m/serving.crt ]] || sign "$m/serving" "/CN=metrics-server" serverAuth \
    "DNS:metrics-server.kube-system.svc, IP:$NS_IP"
  write_kubeconfig "$m/kubeconfig" metrics-server "$m/client.crt" "$m/client.key" "https://$HOST_IP:$APISERVER_PORT"
  ms_net_up
  ms_manifests "$NS_IP" "$dir/pki/ca.crt" | kubectl_admin apply -f - >/dev/null \
    || die "kubectl could not register metrics-server (RBAC, Service, EndpointSlice, APIService)"
  if ! pid_of metrics-server >/dev/null; then
    local args=()
    mapfile -d '' -t args < <(ms_args)
    start metrics-server ip netns exec "$ms_ns" "$bin/metrics-server" "${args[@]}"
  fi
  local deadline=$(($(date +%s) + timeout))
  until ms_available; do
    pid_of metrics-server >/dev/null || fail_component metrics-server "metrics-server exited"
    if (($(date +%s) >= deadline)); then
      kubectl_admin get apiservice v1beta1.metrics.k8s.io -o 'jsonpath={.status.conditions}' >&2 || true
      fail_component metrics-server "APIService v1beta1.metrics.k8s.io not Available after ${timeout}s"
    fi
    sleep 0.5
  done
  log "metrics-server of cluster '$name' is up at https://$NS_IP:$ms_port; nodes it scrapes use --node-ip $HOST_IP"
  echo "$HOST_IP"
}

cmd_metrics_server_down() {
  require_config
  lock
  if pid_of kube-apiserver >/dev/null && apiserver_ready; then
    kubectl_admin delete apiservice v1beta1.metrics.k8s.io --ignore-not-found >/dev/null \
      || log "warning: cannot delete APIService v1beta1.metrics.k8s.io"
  fi
  ms_stop
  log "metrics-server of cluster '$name' is down"
}

cmd_serving_cert() { # serving-cert NODE IP...: a kubelet serving certificate for those IPs
  ((${#cmd_args[@]} >= 2)) || die "usage: $0 serving-cert NODE IP..."
  local n=${cmd_args[0]} ip san
  need_cmd openssl "make the serving certificate"
  require_config
  [[ -s $dir/pki/ca.key ]] || die "cluster '$name' has no CA (run: $0 up)"
  [[ $n =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || die "bad node name '$n'"
  san="DNS:$n"
  for ip in "${cmd_args[@]:1}"; do
    [[ $ip =~ ^[0-9.]+$|: ]] || die "not an IP address: '$ip'"
    san+=", IP:$ip"
  done
  lock
  mkdir -p "$dir/nodes/$n"
  rm -f "$dir/nodes/$n/serving-ip.crt"
  sign "$dir/nodes/$n/serving-ip" "/O=system:nodes/CN=system:node:$n" serverAuth "$san"
  echo "$dir/nodes/$n/serving-ip.crt"
}
