# shellcheck shell=bash
# k3s-node-ready.sh — on the first server: wait until node NAME is Ready.
# Arguments: node=NAME timeout=SECONDS
node=$(arg node)
timeout=$(arg timeout 600)
node_ready() {
  [ "$("$(k3s_bin)" kubectl get node "${node}" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
wait_for "node ${node} Ready" "${timeout}" node_ready || die "node ${node} did not become Ready within ${timeout}s"
