#!/usr/bin/env bash
# tools.sh — pinned tools built from the Go module proxy, cached outside the checkout.
#
#   scripts/tools.sh NAME     print the path of tool NAME, building it first if missing
#   scripts/tools.sh all      build every tool that is missing (progress on stderr)
#   scripts/tools.sh list     print "name version path state" for every tool
#
# Each tool lives in ${AIP_CACHE:-~/.cache/ai-platform}/<group>-<version>/ (keyed by
# version; a partial build never leaves a binary behind, so a missing one is rebuilt).
# Groups share one wrapper module so their common packages compile once:
#   kubernetes  kube-apiserver kube-controller-manager kube-scheduler kubectl  (K3s' pin)
#   etcd        etcd etcdctl                                   (kubeadm's pin for 1.30)
#   kwok        kwok                                           (simulated kubelets / pods)
#   pulumi      pulumi (CLI)
#   pulumi-python  pulumi-language-python + pulumi-language-python-exec (sdk/v3 v3.79.0:
#               the newest sdk that still contains the host; the standalone module is not served)
#   pulumi-kubernetes  pulumi-resource-kubernetes: the January 2026 provider commit below,
#               stamped 4.34.2 so the pinned SDK loads it — it is NOT the 4.34.2 release
#   helm, actionlint
# Cold costs on 2 cores: see docs/engine.md.
set -euo pipefail

CACHE=${AIP_CACHE:-$HOME/.cache/ai-platform}
K8S=v1.30.4 # the Kubernetes of the pinned K3s (v1.30.4+k3s1)
ETCD=v3.5.12
KWOK=v0.8.0
PULUMI=v3.274.1
PYHOST=v3.79.0
KPROV=v4.0.0-20260115033456-f47bc2d6f199
KPROV_STAMP=4.34.2
KSDK=v4.24.0
KPROV_NOTE="code of the January 2026 commit ${KPROV##*-}, not the $KPROV_STAMP release"
HELM=v3.19.0
ACTIONLINT=v1.7.7

log() { printf 'tools.sh: %s\n' "$*" >&2; }

# group of a tool, and its version
group_of() {
  case "$1" in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl) echo "kubernetes $K8S" ;;
    etcd | etcdctl) echo "etcd $ETCD" ;;
    kwok) echo "kwok $KWOK" ;;
    pulumi) echo "pulumi $PULUMI" ;;
    pulumi-language-python | pulumi-language-python-exec) echo "pulumi-python $PYHOST" ;;
    pulumi-resource-kubernetes) echo "pulumi-kubernetes $KPROV_STAMP-${KPROV##*-}" ;;
    helm) echo "helm $HELM" ;;
    actionlint) echo "actionlint $ACTIONLINT" ;;
    *) return 1 ;;
  esac
}
ALL=(actionlint helm etcd etcdctl kube-apiserver kube-controller-manager kube-scheduler kubectl
  kwok pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-kubernetes)
# build order of `all`: what the tests need first, the longest builds early
GROUPS_ORDER=(actionlint kubernetes etcd kwok pulumi pulumi-python pulumi-kubernetes helm)

wrapper() { # wrapper DIR: a fresh module dir
  rm -rf "$1" && mkdir -p "$1" && (cd "$1" && go mod init aip-tools >/dev/null 2>&1)
}

# build_group GROUP VERSION OUTDIR WORK — leaves binaries in OUTDIR
build_group() {
  local group=$1 version=$2 out=$3 w=$4
  local ldk=k8s.io/component-base/version
  export GOFLAGS=-mod=mod GOTOOLCHAIN=local
  case "$group" in
    kubernetes)
      local minor=${version#v1.} && minor=${minor%%.*}
      wrapper "$w"
      local staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
        cloud-provider cluster-bootstrap code-generator component-base component-helpers
        controller-manager cri-api csi-translation-lib dynamic-resource-allocation endpointslice
        kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet
        legacy-cloud-providers metrics mount-utils pod-security-admission sample-apiserver
        sample-cli-plugin sample-controller)
      local m args=()
      for m in "${staging[@]}"; do args+=(-replace "k8s.io/$m=k8s.io/$m@v0.${version#v1.}"); done
      (cd "$w" && go mod edit "${args[@]}" && go mod edit -require "k8s.io/kubernetes@$version" &&
        cat >tools.go <<EOF &&
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
        go mod tidy >/dev/null &&
        go build -o "$out/" -ldflags "-s -w -X $ldk.gitVersion=$version -X $ldk.gitMajor=1 -X $ldk.gitMinor=$minor -X $ldk.gitTreeState=clean" \
          k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
          k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
      ;;
    etcd)
      wrapper "$w"
      (cd "$w" && cat >tools.go <<EOF &&
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
EOF
        go mod edit -require "go.etcd.io/etcd/server/v3@$version" -require "go.etcd.io/etcd/etcdctl/v3@$version" &&
        go mod tidy >/dev/null &&
        go build -o "$out/etcd" -ldflags "-s -w" go.etcd.io/etcd/server/v3 &&
        go build -o "$out/etcdctl" -ldflags "-s -w" go.etcd.io/etcd/etcdctl/v3)
      ;;
    kwok)
      wrapper "$w"
      (cd "$w" && printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/kwok/cmd/kwok"\n' >tools.go &&
        go mod edit -require "sigs.k8s.io/kwok@$version" && go mod tidy >/dev/null &&
        go build -o "$out/kwok" -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$version" sigs.k8s.io/kwok/cmd/kwok)
      ;;
    pulumi)
      wrapper "$w"
      (cd "$w" && printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' >tools.go &&
        go mod edit -require "github.com/pulumi/pulumi/pkg/v3@$version" && go mod tidy >/dev/null &&
        go build -o "$out/pulumi" -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
          github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
      ;;
    pulumi-python)
      wrapper "$w"
      local pkg=github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python
      (cd "$w" && printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >tools.go &&
        go mod edit -require "github.com/pulumi/pulumi/sdk/v3@$version" && go mod tidy >/dev/null &&
        go build -o "$out/pulumi-language-python" -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" "$pkg" &&
        src=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3) &&
        install -m 0755 "$(find "$src/python" -name pulumi-language-python-exec -type f | head -n1)" "$out/pulumi-language-python-exec")
      ;;
    pulumi-kubernetes)
      # The module zip lacks the generated embeds and replaces sdk/v4 with ../sdk: copy the
      # module, drop the replace, require a served sdk/v4, generate the embeds as the
      # module's own generate.go does (from its schema), then build.
      rm -rf "$w" && mkdir -p "$w"
      (cd "$w" && go mod download -json "github.com/pulumi/pulumi-kubernetes/provider/v4@$KPROV" >dl.json)
      local src
      src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' "$w/dl.json")
      [ -d "$src" ] || { log "pulumi-kubernetes: module download failed"; return 1; }
      cp -r "$src" "$w/provider" && chmod -R u+w "$w/provider"
      (cd "$w/provider" &&
        go mod edit -dropreplace github.com/pulumi/pulumi-kubernetes/sdk/v4 \
          -require "github.com/pulumi/pulumi-kubernetes/sdk/v4@$KSDK" &&
        go mod tidy >/dev/null &&
        (cd cmd/pulumi-resource-kubernetes && VERSION=$KPROV_STAMP go run ./generate.go &&
          test -s schema-embed.json && test -s terraform-mapping-embed.json) &&
        go build -o "$out/pulumi-resource-kubernetes" \
          -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$KPROV_STAMP" \
          ./cmd/pulumi-resource-kubernetes)
      ;;
    helm)
      wrapper "$w"
      (cd "$w" && go get -tool "helm.sh/helm/v3/cmd/helm@$version" >/dev/null 2>&1 &&
        go build -o "$out/helm" -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" helm.sh/helm/v3/cmd/helm)
      ;;
    actionlint)
      wrapper "$w"
      (cd "$w" && go get -tool "github.com/rhysd/actionlint/cmd/actionlint@$version" >/dev/null 2>&1 &&
        go build -o "$out/actionlint" github.com/rhysd/actionlint/cmd/actionlint)
      ;;
  esac
}

# ensure_group GROUP VERSION — build the group's binaries into its cache dir if missing
ensure_group() {
  local group=$1 version=$2 dir="$CACHE/$1-$2"
  [ -f "$dir/.complete" ] && return 0
  command -v go >/dev/null || { log "go is needed to build $group"; return 1; }
  mkdir -p "$CACHE"
  # one builder per group at a time (make test and make tools may race)
  exec 9>"$CACHE/.$group-$version.lock"
  if ! flock -n 9; then
    log "waiting for another build of $group $version"
    flock 9
  fi
  if [ -f "$dir/.complete" ]; then return 0; fi
  local t0=$SECONDS tmp="$CACHE/.build-$group-$version" work
  work=$(mktemp -d "${TMPDIR:-/tmp}/aip-tools.XXXXXX")
  rm -rf "$tmp" && mkdir -p "$tmp"
  log "building $group $version (once; cached in $dir)${KPROV_NOTE:+$([ "$group" = pulumi-kubernetes ] && echo ": $KPROV_NOTE")}"
  if ! build_group "$group" "$version" "$tmp" "$work/src" >"$work/log" 2>&1; then
    tail -n 30 "$work/log" >&2
    log "building $group $version failed (log above)"
    rm -rf "$tmp" "$work"
    return 1
  fi
  rm -rf "$work" "$dir"
  mv "$tmp" "$dir"
  printf 'built %s in %ss on %s\n' "$group $version" $((SECONDS - t0)) "$(date -u +%FT%TZ)" >"$dir/.complete"
  log "built $group $version in $((SECONDS - t0))s ($(du -sh "$dir" | cut -f1))"
}

path_of() {
  local g v
  read -r g v < <(group_of "$1") || { log "unknown tool $1"; exit 2; }
  printf '%s\n' "$CACHE/$g-$v/$1"
}

cmd=${1:?usage: tools.sh NAME|all|list}
case "$cmd" in
  all)
    for g in "${GROUPS_ORDER[@]}"; do
      for t in "${ALL[@]}"; do
        read -r tg tv < <(group_of "$t")
        if [ "$tg" = "$g" ]; then ensure_group "$tg" "$tv"; break; fi
      done
    done
    ;;
  list)
    for t in "${ALL[@]}"; do
      read -r g v < <(group_of "$t")
      p=$(path_of "$t")
      if [ -f "$CACHE/$g-$v/.complete" ]; then s=built; else s=missing; fi
      note=""
      [ "$g" = pulumi-kubernetes ] && note=" ($KPROV_NOTE)"
      printf '%-28s %-40s %s %s%s\n' "$t" "$v" "$p" "$s" "$note"
    done
    ;;
  *)
    read -r g v < <(group_of "$cmd") || { log "unknown tool $cmd (try: list)"; exit 2; }
    ensure_group "$g" "$v"
    path_of "$cmd"
    ;;
esac
