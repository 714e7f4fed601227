# shellcheck shell=bash
# lib.sh — shared by every node script; rendered in front of each one (components/scripts.py).
#
# Conventions:
# - non-secret parameters arrive as `key=value` arguments ($@), readable in the plan;
# - secrets arrive on stdin as `key=<base64>` lines, never on a command line;
# - every path is under ${AIP_ROOT:-} so tests can run the scripts in a sandbox root;
# - a script prints what it changed; a run that changes nothing says "unchanged".
set -euo pipefail
umask 077

ROOT="${AIP_ROOT:-}"
SCRIPT_NAME="${0##*/}"
AIP_ARGV=("$@")

log() { printf '%s: %s\n' "${SCRIPT_NAME}" "$*"; }
die() { printf '%s: error: %s\n' "${SCRIPT_NAME}" "$*" >&2; exit 1; }

# arg KEY [DEFAULT] — the value of a key=value argument.
arg() {
  local key="$1" a
  for a in "${AIP_ARGV[@]}"; do
    case "$a" in "${key}="*) printf '%s' "${a#"${key}="}"; return 0 ;; esac
  done
  if [ $# -ge 2 ]; then printf '%s' "$2"; return 0; fi
  die "missing argument ${key}=..."
}

# read_payload — secrets from stdin into a private directory, one file per key.
read_payload() {
  PAYLOAD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/aip.XXXXXX")
  chmod 700 "${PAYLOAD_DIR}"
  trap 'rm -rf "${PAYLOAD_DIR}"' EXIT
  local line key
  [ -t 0 ] && return 0
  # Split at the first '=' by hand: `IFS== read` would drop base64's trailing '='.
  while IFS= read -r line || [ -n "${line}" ]; do
    key=${line%%=*}
    case "${key}" in '' | *[!a-z_]*) line=''; continue ;; esac
    printf '%s' "${line#*=}" | base64 -d >"${PAYLOAD_DIR}/${key}" || die "payload ${key} is not base64"
    line=''
  done
}

# payload KEY — path of a payload file; fails if the key was not sent.
payload() {
  [ -f "${PAYLOAD_DIR}/$1" ] || die "payload '$1' missing on stdin"
  printf '%s' "${PAYLOAD_DIR}/$1"
}

# put SRC DEST MODE — install SRC at DEST only if the content or mode differs.
# Keeps the previous version as DEST.aip-prev for rollback. Returns 0 if changed, 1 if not.
put() {
  local src="$1" dest="$2" mode="$3"
  if [ -f "${dest}" ] && cmp -s "${src}" "${dest}" && [ "$(stat -c %a "${dest}")" = "${mode#0}" ]; then
    return 1
  fi
  mkdir -p "$(dirname "${dest}")"
  if [ -f "${dest}" ]; then cp -p "${dest}" "${dest}.aip-prev"; else rm -f "${dest}.aip-prev"; fi
  install -m "${mode}" "${src}" "${dest}.aip-new"
  mv -f "${dest}.aip-new" "${dest}"
  log "wrote ${dest#"${ROOT}"}"
  return 0
}

# put_certs — the registry CA files listed in payload `certs` (`path<TAB>base64` lines), each
# written only if it differs; CA files of registries no longer listed are removed. Only
# files directly in CA_DIR, with plain names. Returns 0 if anything changed, 1 if not.
CA_DIR=/etc/rancher/k3s/ai-platform-ca
put_certs() {
  local list="${PAYLOAD_DIR}/certs" path b64 name changed=1 f keep=" "
  [ -f "${list}" ] || return 1
  while IFS=$'\t' read -r path b64 || [ -n "${path}" ]; do
    [ -n "${path}" ] || continue
    name=${path#"${CA_DIR}/"}
    case "${name}" in "${path}" | '' | *[!A-Za-z0-9._-]* | .*) die "refusing CA file path '${path}'" ;; esac
    printf '%s' "${b64}" | base64 -d >"${PAYLOAD_DIR}/ca.new" || die "CA for ${path} is not base64"
    if put "${PAYLOAD_DIR}/ca.new" "${ROOT}${path}" 0644; then changed=0; fi
    forget_backup "${ROOT}${path}"
    keep="${keep}${name} "
  done <"${list}"
  if [ -d "${ROOT}${CA_DIR}" ]; then
    for f in "${ROOT}${CA_DIR}"/*.crt; do
      [ -e "${f}" ] || continue
      case "${keep}" in *" ${f##*/} "*) ;; *) rm -f "${f}"; log "removed ${f#"${ROOT}"}"; changed=0 ;; esac
    done
  fi
  return ${changed}
}

# restore DEST — put back DEST.aip-prev (or remove DEST if it did not exist before).
restore() {
  local dest="$1"
  if [ -f "${dest}.aip-prev" ]; then mv -f "${dest}.aip-prev" "${dest}"; else rm -f "${dest}"; fi
  log "rolled back ${dest#"${ROOT}"}"
}

# forget_backup DEST — the new content is good.
forget_backup() { rm -f "$1.aip-prev"; }

# wait_for DESCRIPTION TIMEOUT COMMAND... — poll until COMMAND succeeds, printing progress.
# Every second, or every WAIT_INTERVAL seconds (cheap local probes poll faster).
wait_for() {
  local what="$1" timeout="$2" start now last=0
  shift 2
  start=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    now=$(date +%s)
    if [ $((now - start)) -ge "${timeout}" ]; then
      printf '%s: error: timed out after %ss waiting for %s\n' "${SCRIPT_NAME}" "${timeout}" "${what}" >&2
      return 1
    fi
    if [ $((now - last)) -ge 10 ]; then
      log "waiting for ${what} ($((now - start))s/${timeout}s)"
      last=${now}
    fi
    sleep "${WAIT_INTERVAL:-1}"
  done
  log "${what}: ok after $(($(date +%s) - start))s"
}

k3s_bin() { printf '%s' "${ROOT}/usr/local/bin/k3s"; }

# installed_version — the version of the installed k3s binary, or nothing.
installed_version() {
  local bin
  bin=$(k3s_bin)
  [ -x "${bin}" ] || return 0
  "${bin}" --version 2>/dev/null | awk 'NR == 1 { print $3 }'
}

service_name() { if [ "$1" = server ]; then printf k3s; else printf k3s-agent; fi; }

server_ready() { "$(k3s_bin)" kubectl get --raw /readyz 2>/dev/null | grep -qx ok; }

# kubelet_healthy HOST:PORT — the kubelet's /healthz answers "ok". Plain HTTP through bash's
# /dev/tcp, so a node needs no curl.
kubelet_healthy() {
  local host="${1%:*}" port="${1##*:}"
  # shellcheck disable=SC2016 # $0 and $1 are the inner shell's
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n" "$0" >&3 &&
    tail -n 1 <&3' "${host}" "${port}" 2>/dev/null | grep -qx ok
}

# The agent's readiness probe: `healthz=HOST:PORT` (the kubelet's), or `healthz=none` when
# the node's kubelet has it switched off. An agent's unit is Type=exec: `systemctl restart`
# returns at once, so "active" alone says nothing about K3s being back.
KUBELET_HEALTHZ=""
kubelet_probe_for() {
  if [ "$1" = agent ]; then KUBELET_HEALTHZ=$(arg healthz); fi
}

# service_ready ROLE — the local K3s service is up: server, the API's /readyz answers ok;
# agent, the kubelet's /healthz answers ok (see kubelet_probe_for).
service_ready() {
  if [ "$1" = agent ] && [ -n "${KUBELET_HEALTHZ}" ] && [ "${KUBELET_HEALTHZ}" != none ]; then
    kubelet_healthy "${KUBELET_HEALTHZ}" || return 1 # first: the cheapest probe, and the last to pass
  fi
  systemctl is-active --quiet "$(service_name "$1")" || return 1
  if [ "$1" = server ]; then server_ready; fi
}

# wait_ready ROLE DESCRIPTION TIMEOUT — wait for service_ready. An agent's probe is one local
# HTTP request: polled every 0.25 s, so a restart costs no more than it takes; a server's
# runs `k3s kubectl`: every second.
wait_ready() {
  local every=1
  if [ "$1" = agent ]; then every=0.25; fi
  WAIT_INTERVAL=${every} wait_for "$2" "$3" service_ready "$1"
}

# ready_or_die ROLE SERVICE TIMEOUT — wait_ready, or fail with the service's log.
ready_or_die() {
  wait_ready "$1" "$2 ready" "$3" && return 0
  unit_log_tail "$2"
  die "K3s did not become ready on this node"
}

# unit_log_tail SERVICE — its last log lines on stderr (what a failed start said), if any.
unit_log_tail() {
  command -v journalctl >/dev/null 2>&1 || return 0
  printf '%s: the last lines of %s'"'"'s log:\n' "${SCRIPT_NAME}" "$1" >&2
  journalctl -u "$1" -n 25 --no-pager 2>/dev/null | sed 's/^/  | /' >&2 || true
}

# run_installer SERVICE CMD... — run the K3s installer; when it fails (K3s did not start),
# show the service's log before failing, so the step's error says why.
run_installer() {
  local svc="$1" rc=0
  shift
  "$@" || rc=$?
  if [ "${rc}" -ne 0 ]; then
    unit_log_tail "${svc}"
    die "the K3s installer failed (exit ${rc}): ${svc} did not start; its log is above"
  fi
}

# restart_with_rollback ROLE TIMEOUT FILE... — restart K3s after FILEs changed; if it does
# not come back, restore the previous FILEs, restart again and fail.
restart_with_rollback() {
  local role="$1" timeout="$2" svc f
  shift 2
  svc=$(service_name "${role}")
  log "restarting ${svc}"
  if systemctl restart "${svc}" && wait_ready "${role}" "${svc} after restart" "${timeout}"; then
    for f in "$@"; do forget_backup "${f}"; done
    return 0
  fi
  unit_log_tail "${svc}"
  for f in "$@"; do restore "${f}"; done
  systemctl restart "${svc}" || true
  wait_ready "${role}" "${svc} after rollback" "${timeout}" || true
  die "${svc} did not become ready with the new settings; previous settings restored"
}
