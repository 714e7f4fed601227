# shellcheck shell=bash
# k3s-registries.sh — write /etc/rancher/k3s/registries.yaml; restart K3s only if it changed,
# and put the previous file back if K3s does not come up with the new one.
# Runs node after node (each waits for the previous node's, which returns once its K3s is
# back: the server's API, the agent's kubelet), so restarts roll one at a time.
#
# Also keeps a managed block of /etc/hosts (the platform's hostnames, for domains without
# DNS): rewritten only when it differs; it needs no restart.
#
# Arguments: role=server|agent timeout=SECONDS; agents: healthz=HOST:PORT|none (the kubelet's)
# Stdin:     registries=<b64> certs=<b64 of 'path<TAB>base64' CA lines> hosts=<b64 of the block's lines>

role=$(arg role)
timeout=$(arg timeout 600)
kubelet_probe_for "${role}"
read_payload
src=$(payload registries) # (assigned first: a failure inside `if put "$(...)"` would not stop the script)
dest="${ROOT}/etc/rancher/k3s/registries.yaml"
changed=()
certs_changed=false
if put_certs; then certs_changed=true; fi
if put "${src}" "${dest}" 0600; then changed+=("${dest}"); fi
if [ ${#changed[@]} -gt 0 ] || [ "${certs_changed}" = true ]; then
  if systemctl is-active --quiet "$(service_name "${role}")"; then
    restart_with_rollback "${role}" "${timeout}" "${changed[@]}"
  else
    for f in "${changed[@]}"; do forget_backup "${f}"; done
  fi
else
  log "unchanged"
fi

hosts_file="${ROOT}/etc/hosts"
begin="# BEGIN ai-platform (managed by pulumi)"
end="# END ai-platform"
[ -f "${hosts_file}" ] || install -m 0644 /dev/null "${hosts_file}"
want="${PAYLOAD_DIR}/hosts.want"
lines="${PAYLOAD_DIR}/hosts"
[ -f "${lines}" ] || : >"${lines}" # not sent: no managed block
{
  awk -v b="${begin}" -v e="${end}" '$0 == b { skip = 1; next } $0 == e { skip = 0; next } !skip' "${hosts_file}"
  if [ -s "${lines}" ]; then
    printf '%s\n' "${begin}"
    cat "${lines}"
    printf '%s\n' "${end}"
  fi
} >"${want}"
if ! cmp -s "${want}" "${hosts_file}"; then
  cat "${want}" >"${hosts_file}" # in place: /etc/hosts may be a bind mount
  log "updated the ai-platform block of /etc/hosts"
fi
