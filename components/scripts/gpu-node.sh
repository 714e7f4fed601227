# shellcheck shell=bash
# gpu-node.sh — make a GPU node able to run GPU containers before K3s starts on it: the NVIDIA
# driver and nvidia-container-toolkit, installed (driver=install) or checked for
# (driver=preinstalled). K3s finds nvidia-container-runtime when it starts and registers a
# containerd runtime `nvidia` (and K3s' packaged RuntimeClass `nvidia`); when the runtime
# appears on a node whose K3s already runs, K3s is restarted once so it picks it up.
# Idempotent: a node that has both installs nothing and restarts nothing.
#
# Arguments: node=NAME driver=install|preinstalled branch=NNN mode=online|airgap
#            role=server|agent [packages=DIR] (airgap: the uploaded .deb files)

node=$(arg node)
driver=$(arg driver install)
branch=$(arg branch 535)
mode=$(arg mode online)
role=$(arg role agent)
packages=$(arg packages "")
case "${branch}" in [0-9][0-9][0-9]) ;; *) die "node ${node}: driver branch '${branch}' is not a number like 535" ;; esac

have_driver() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }
have_runtime() { command -v nvidia-container-runtime >/dev/null 2>&1; }

if have_driver && have_runtime; then
  log "unchanged (NVIDIA driver and container runtime present)"
  exit 0
fi

if [ "${driver}" = preinstalled ]; then
  missing=()
  have_driver || missing+=("the NVIDIA driver (nvidia-smi -L fails)")
  have_runtime || missing+=("nvidia-container-runtime (nvidia-container-toolkit)")
  die "node ${node}: cluster.gpu.driver is preinstalled, but ${missing[*]} missing: install them, or set cluster.gpu.driver: install"
fi

# shellcheck source=/dev/null
[ -r "${ROOT}/etc/os-release" ] && . "${ROOT}/etc/os-release"
family=" ${ID:-} ${ID_LIKE:-} "
case "${family}" in
  *" debian "* | *" ubuntu "*) ;;
  *) die "node ${node}: installing the NVIDIA driver is supported on Debian and Ubuntu; this node is '${PRETTY_NAME:-${ID:-unknown}}': install the driver and nvidia-container-toolkit yourself and set cluster.gpu.driver: preinstalled" ;;
esac

export DEBIAN_FRONTEND=noninteractive
if [ "${mode}" = airgap ]; then
  [ -d "${packages}" ] || die "node ${node}: the GPU packages were not uploaded to ${packages}"
  debs=("${packages}"/*.deb)
  [ -e "${debs[0]}" ] || die "node ${node}: no .deb files in ${packages} (cluster.gpu.airgap.packages)"
  log "installing ${#debs[@]} NVIDIA packages from ${packages}"
  dpkg -i "${debs[@]}" || die "node ${node}: dpkg could not install the GPU packages (missing dependencies?)"
else
  keyring="${ROOT}/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
  list="${ROOT}/etc/apt/sources.list.d/nvidia-container-toolkit.list"
  if [ ! -f "${list}" ]; then
    mkdir -p "$(dirname "${keyring}")" "$(dirname "${list}")"
    curl -fsSL --proto '=https' https://nvidia.github.io/libnvidia-container/gpgkey | gpg --dearmor -o "${keyring}" ||
      die "node ${node}: cannot fetch NVIDIA's package signing key"
    # shellcheck disable=SC2016 # $(ARCH) is apt's, not the shell's
    printf 'deb [signed-by=%s] https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /\n' \
      "${keyring#"${ROOT}"}" >"${list}"
    log "added NVIDIA's container toolkit repository"
  fi
  apt-get update -qq || die "node ${node}: apt-get update failed"
  case "${family}" in
    *" ubuntu "*) pkg="nvidia-driver-${branch}-server" ;;
    *) pkg="nvidia-driver" ;; # Debian: the driver of its release (non-free)
  esac
  log "installing ${pkg} and nvidia-container-toolkit"
  apt-get install -y -qq "${pkg}" nvidia-container-toolkit || die "node ${node}: apt-get could not install ${pkg} and nvidia-container-toolkit"
fi

have_runtime || die "node ${node}: nvidia-container-runtime is still missing after the install"
log "NVIDIA driver and container toolkit installed"
# The driver's kernel module may need a reboot before nvidia-smi answers; K3s needs only the runtime.
have_driver || log "warning: nvidia-smi does not answer yet on ${node}: reboot the node to load the driver"
svc=$(service_name "${role}")
if systemctl is-active --quiet "${svc}"; then
  log "restarting ${svc}: the nvidia runtime appeared"
  systemctl restart "${svc}"
fi
