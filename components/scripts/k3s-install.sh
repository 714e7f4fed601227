# shellcheck shell=bash
# k3s-install.sh — install, upgrade or reconfigure K3s on this node. Idempotent:
# a second run with the same arguments and payload changes nothing and restarts nothing.
#
# Arguments: role=server|agent version=vX.Y.Z+k3sN install=online|airgap mirror=default|cn
#            gpu=true|false nfs=true|false node=NAME timeout=SECONDS config=<base64 of config.yaml>
#            [bundle=DIR images=NAME] online: installer=URL [installer_sha256=HEX]
#            agents: healthz=HOST:PORT|none (the kubelet's, to know K3s is up)
# Stdin:     token=<b64> registries=<b64> certs=<b64 of 'path<TAB>base64' lines, may be empty>
#
# registries.yaml is written here only when absent (first install, so K3s starts with it);
# afterwards k3s-registries.sh owns it and rolls restarts node by node.

role=$(arg role)
version=$(arg version)
install_mode=$(arg install)
mirror=$(arg mirror default)
timeout=$(arg timeout 600)
bundle=$(arg bundle "")
images=$(arg images "")
gpu=$(arg gpu false)
nfs=$(arg nfs false)
case "${role}" in server | agent) ;; *) die "role must be server or agent, not '${role}'" ;; esac
if [ "${nfs}" = true ] && ! PATH="${PATH}:/sbin:/usr/sbin" command -v mount.nfs >/dev/null 2>&1; then
  die "node $(arg node): the stack mounts NFS volumes, but mount.nfs is missing here: install nfs-common (Debian, Ubuntu) or nfs-utils (RHEL, SUSE) first"
fi
kubelet_probe_for "${role}"
if [ "${gpu}" = true ] && ! command -v nvidia-container-runtime >/dev/null 2>&1; then
  die "gpu node, but nvidia-container-runtime is not installed: install the NVIDIA driver and nvidia-container-toolkit first"
fi

read_payload
etc="${ROOT}/etc/rancher/k3s"
mkdir -p "${etc}"
chmod 755 "${etc}"

staged="${PAYLOAD_DIR}/config.yaml"
printf '%s' "$(arg config)" | base64 -d >"${staged}" || die "config= is not base64"

token=$(payload token) # paths assigned first: a failing $(...) inside `put ... &&` would not stop us
registries=$(payload registries)
changed=()
put "${token}" "${etc}/cluster-token" 0600 && changed+=("${etc}/cluster-token")
put "${staged}" "${etc}/config.yaml" 0600 && changed+=("${etc}/config.yaml")
if [ ! -f "${etc}/registries.yaml" ]; then
  put_certs || true
  put "${registries}" "${etc}/registries.yaml" 0600 || true
  forget_backup "${etc}/registries.yaml"
fi

current=$(installed_version)
svc=$(service_name "${role}")
# Present from just before the binary is put in place until K3s is up: a run cut in between
# (binary in place, unit not written, old K3s still running) is completed by the next run.
pending="${etc}/install.aip-pending"
if [ "${current}" != "${version}" ] || [ -f "${pending}" ]; then
  # Install or upgrade: the installer (re)starts the service with the files above.
  if [ -f "${pending}" ]; then
    log "the last install of K3s did not finish: installing ${version} (${role}) again"
  elif [ -n "${current}" ]; then log "upgrading K3s ${current} -> ${version}"; else log "installing K3s ${version} (${role})"; fi
  export INSTALL_K3S_VERSION="${version}" INSTALL_K3S_EXEC="${role}"
  # On an upgrade the new binary is already in place when the installer compares hashes:
  # without this it would skip the restart and leave the old K3s running.
  if [ -n "${current}" ]; then export INSTALL_K3S_FORCE_RESTART=true; fi
  if [ "${install_mode}" = airgap ]; then
    for f in k3s install.sh "${images}"; do
      [ -f "${bundle}/${f}" ] || die "airgap bundle incomplete in ${bundle}: ${f} missing (k3s, install.sh, ${images})"
    done
    : >"${pending}"
    install -D -m 0755 "${bundle}/k3s" "${ROOT}/usr/local/bin/k3s"
    install -D -m 0644 "${bundle}/${images}" "${ROOT}/var/lib/rancher/k3s/agent/images/${images}"
    run_installer "${svc}" env INSTALL_K3S_SKIP_DOWNLOAD=true sh "${bundle}/install.sh"
  else
    installer="${PAYLOAD_DIR}/install.sh"
    url=$(arg installer)
    if [ "${mirror}" = cn ]; then export INSTALL_K3S_MIRROR=cn; fi
    curl -sfL --proto '=https' --retry 3 -o "${installer}" "${url}" || die "cannot download the K3s installer from ${url}"
    sha=$(arg installer_sha256 "")
    if [ -n "${sha}" ] && ! printf '%s  %s\n' "${sha}" "${installer}" | sha256sum -c --quiet - >/dev/null 2>&1; then
      die "the K3s installer from ${url} does not have the sha256 cluster.k3s.installerSha256 pins (${sha})"
    fi
    : >"${pending}"
    run_installer "${svc}" sh "${installer}"
  fi
  for f in "${changed[@]}"; do forget_backup "${f}"; done
  [ "$(installed_version)" = "${version}" ] || die "installer finished but k3s reports '$(installed_version)', not ${version}"
  ready_or_die "${role}" "${svc}" "${timeout}"
  rm -f "${pending}"
  log "K3s ${version} ${role} installed"
elif [ ${#changed[@]} -gt 0 ]; then
  restart_with_rollback "${role}" "${timeout}" "${changed[@]}"
  log "K3s reconfigured"
elif ! systemctl is-active --quiet "${svc}"; then
  log "${svc} is not running: starting it"
  systemctl start "${svc}"
  ready_or_die "${role}" "${svc}" "${timeout}"
else
  log "unchanged"
fi
