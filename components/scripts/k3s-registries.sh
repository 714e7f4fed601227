# shellcheck shell=bash
# k3s-registries.sh — write /etc/rancher/k3s/registries.yaml; restart K3s only if it changed,
# and put the previous file back if K3s does not come up with the new one.
# Runs node after node (each waits for the previous node's), so restarts roll one at a time.
#
# Arguments: role=server|agent timeout=SECONDS
# Stdin:     registries=<b64>

role=$(arg role)
timeout=$(arg timeout 600)
read_payload
src=$(payload registries) # (assigned first: a failure inside `if put "$(...)"` would not stop the script)
dest="${ROOT}/etc/rancher/k3s/registries.yaml"
if put "${src}" "${dest}" 0600; then
  if systemctl is-active --quiet "$(service_name "${role}")"; then
    restart_with_rollback "${role}" "${timeout}" "${dest}"
  else
    forget_backup "${dest}"
  fi
else
  log "unchanged"
fi
