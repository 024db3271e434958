#!/usr/bin/env bash
# Builds (once) the control-plane binaries from the Go modules beside this script and prints the
# directory that holds them. Binaries are cached under $HOME/.cache, keyed by the pinned versions.
# `build.sh metrics-server` builds (once) and prints the directory of metrics-server instead, the
# resource metrics API behind `kubectl top` and the HPA (scripts/cluster.sh metrics-server).
# `build.sh helm` builds (once) and prints the directory of Helm, for the chart in deploy/helm/vk.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

module_version() { # module_version DIR MODULE
  (cd "$1" && GOFLAGS=-mod=mod go list -m -f '{{.Version}}' "$2")
}

command -v go >/dev/null || { echo "cluster: go is not installed (needed to build the control plane)" >&2; exit 1; }
cache=${VK_CLUSTER_CACHE:-$HOME/.cache/vk/control-plane}

if [[ ${1:-} == metrics-server ]]; then
  version=$(module_version "$here/metrics-server" sigs.k8s.io/metrics-server)
  bin="$cache/metrics-server-$version"
  if [[ ! -x "$bin/metrics-server" ]]; then
    echo "cluster: building metrics-server $version into $bin (first time only)" >&2
    mkdir -p "$bin.tmp"
    (cd "$here/metrics-server" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
        -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$version" -o "$bin.tmp/" \
        sigs.k8s.io/metrics-server/cmd/metrics-server)
    rm -rf "$bin" && mv "$bin.tmp" "$bin"
  fi
  echo "$bin"
  exit 0
fi
if [[ ${1:-} == helm ]]; then
  version=$(module_version "$here/helm" helm.sh/helm/v4)
  bin="$cache/helm-$version"
  if [[ ! -x "$bin/helm" ]]; then
    echo "cluster: building Helm $version into $bin (first time only)" >&2
    mkdir -p "$bin.tmp"
    (cd "$here/helm" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
        -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" -o "$bin.tmp/" \
        helm.sh/helm/v4/cmd/helm)
    rm -rf "$bin" && mv "$bin.tmp" "$bin"
  fi
  echo "$bin"
  exit 0
fi
[[ $# == 0 ]] || { echo "cluster: usage: $0 [metrics-server|helm]" >&2; exit 2; }

k8s_version=$(module_version "$here/k8s" k8s.io/kubernetes)
etcd_version=$(module_version "$here/etcd" go.etcd.io/etcd/server/v3)
bin="$cache/k8s-${k8s_version}_etcd-${etcd_version}"

if [[ ! -x "$bin/kubectl" || ! -x "$bin/kube-apiserver" || ! -x "$bin/kube-controller-manager" \
   || ! -x "$bin/kube-scheduler" || ! -x "$bin/etcd" ]]; then
  echo "cluster: building Kubernetes $k8s_version and etcd $etcd_version into $bin (first time only)" >&2
  mkdir -p "$bin.tmp"
  minor=${k8s_version#v1.}; minor=${minor%%.*}
  flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  (cd "$here/k8s" && GOFLAGS=-mod=mod go build -trimpath -ldflags "$flags" -o "$bin.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  (cd "$here/etcd" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$bin.tmp/etcd" \
      go.etcd.io/etcd/server/v3)
  rm -rf "$bin" && mv "$bin.tmp" "$bin"
fi
echo "$bin"
