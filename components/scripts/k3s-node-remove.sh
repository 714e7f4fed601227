# shellcheck shell=bash
# k3s-node-remove.sh — on the first server: drain node NAME, then delete its Node object
# (for a server, that also removes its etcd member). Runs before the node is uninstalled.
# Arguments: node=NAME timeout=SECONDS
node=$(arg node)
timeout=$(arg timeout 300)
kubectl() { "$(k3s_bin)" kubectl "$@"; }
if ! server_ready; then
  log "API server not ready: skipping drain/delete of ${node}"
  exit 0
fi
if ! kubectl get node "${node}" >/dev/null 2>&1; then
  log "node ${node} is not registered: nothing to drain"
  exit 0
fi
log "draining ${node}"
if ! kubectl drain "${node}" --ignore-daemonsets --delete-emptydir-data --force --timeout="${timeout}s"; then
  log "warning: drain of ${node} did not finish within ${timeout}s; deleting the node anyway"
fi
kubectl delete node "${node}" --ignore-not-found
log "node ${node} removed from the cluster"
