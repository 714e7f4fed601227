# shellcheck shell=bash
# k3s-kubeconfig.sh — print the admin kubeconfig of this server (a secret output).
f="${ROOT}/etc/rancher/k3s/k3s.yaml"
[ -f "${f}" ] || die "${f} not found: is K3s installed on this server?"
cat "${f}"
