# shellcheck shell=bash
# openhydra-host-dirs.sh — create open-hydra's host directories (public datasets, public
# courses, jupyter-lab and vscode workspaces) where they are missing. Existing directories
# are left as they are. What it creates is recorded, so openhydra-host-dirs-remove.sh
# removes only those, and only while empty.
#
# Arguments: dataset=PATH course=PATH jupyterlab=PATH vscode=PATH (absolute paths)

STATE="${ROOT}/var/lib/ai-platform/openhydra/created-dirs"

check_dir() {
  case "$2" in
    /*) ;;
    *) die "$1=$2: an absolute path is expected" ;;
  esac
  case "$2/" in
    */../* | */./* | //*) die "$1=$2: '.', '..' and '//' are not allowed" ;;
  esac
  [ "$2" != / ] || die "$1=/: the root directory is not a host directory"
}

changed=0
for key in dataset course jupyterlab vscode; do
  dir=$(arg "${key}")
  check_dir "${key}" "${dir}"
  target="${ROOT}${dir}"
  if [ -d "${target}" ]; then
    continue
  fi
  [ ! -e "${target}" ] || die "${dir} exists and is not a directory"
  # Readable by the pods that mount it (the library's umask is 077).
  (umask 022 && mkdir -p "${target}")
  mkdir -p "$(dirname "${STATE}")"
  grep -qxF "${dir}" "${STATE}" 2>/dev/null || printf '%s\n' "${dir}" >>"${STATE}"
  log "created ${dir}"
  changed=1
done
[ "${changed}" = 1 ] || log "unchanged"
