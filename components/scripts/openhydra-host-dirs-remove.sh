# shellcheck shell=bash
# openhydra-host-dirs-remove.sh — undo openhydra-host-dirs.sh: remove the directories it
# created, only while they are empty. Directories it did not create, and any directory
# holding data, stay. Safe to run again.
#
# Arguments: dataset=PATH course=PATH jupyterlab=PATH vscode=PATH (absolute paths)

STATE="${ROOT}/var/lib/ai-platform/openhydra/created-dirs"

forget() {
  local rest
  rest=$(grep -vxF "$1" "${STATE}" || true)
  if [ -n "${rest}" ]; then printf '%s\n' "${rest}" >"${STATE}"; else rm -f "${STATE}"; fi
}

for key in dataset course jupyterlab vscode; do
  dir=$(arg "${key}")
  case "${dir}" in /?*) ;; *) die "${key}=${dir}: an absolute path is expected" ;; esac
  target="${ROOT}${dir}"
  if ! grep -qxF "${dir}" "${STATE}" 2>/dev/null; then
    log "kept ${dir} (not created by ai-platform)"
    continue
  fi
  if [ ! -e "${target}" ]; then
    forget "${dir}"
  elif rmdir "${target}" 2>/dev/null; then
    forget "${dir}"
    log "removed ${dir}"
  else
    log "kept ${dir} (not empty)"
  fi
done
