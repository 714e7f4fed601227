# shellcheck shell=bash
# k3s-uninstall.sh — remove K3s from this node with the uninstall script K3s installed,
# plus what our scripts wrote (settings, token, uploaded bundle). Safe to run twice.
# Arguments: role=server|agent [bundle=DIR]
role=$(arg role)
bundle=$(arg bundle "")
if [ "${role}" = server ]; then script=k3s-uninstall.sh; else script=k3s-agent-uninstall.sh; fi
if [ -x "${ROOT}/usr/local/bin/${script}" ]; then
  log "running ${script}"
  "${ROOT}/usr/local/bin/${script}"
else
  log "K3s is not installed"
fi
rm -f "${ROOT}/etc/rancher/k3s/config.yaml" "${ROOT}/etc/rancher/k3s/registries.yaml" \
  "${ROOT}/etc/rancher/k3s/cluster-token" "${ROOT}/etc/rancher/k3s/"*.aip-prev "${ROOT}/etc/rancher/k3s/"*.aip-pending
rm -rf "${ROOT}${CA_DIR}"
rmdir "${ROOT}/etc/rancher/k3s" 2>/dev/null || true
if [ -n "${bundle}" ]; then
  rm -rf "${ROOT}${bundle}"
  rmdir "$(dirname "${ROOT}${bundle}")" 2>/dev/null || true # the upload made it; left only if not empty
fi
log "uninstalled"
