#!/usr/bin/env bash
# testhosts.sh — SSH test hosts on this one machine, for the node-script and stand-in tests.
#
#   scripts/testhosts.sh up N     bring up hosts h1..hN (fails if hosts are already up)
#   scripts/testhosts.sh down     remove everything `up` made; safe to run twice
#   scripts/testhosts.sh status   print what is up (exit 0 if up, 3 if nothing is up)
#
# Host i is a network namespace aip-h<i> (10.231.0.<10+i>/24, interface eth0) on the bridge
# aip-br0 (10.231.0.1/24) in the root namespace; no route leaves the bridge. Inside it, in
# its own PID, mount and UTS namespaces (hostname h<i>), runs Debian's sshd on port 22.
# These paths are private to the host, bind-mounted from its state dir $STATE/h<i>/:
#   /etc/rancher /var/lib/rancher /etc/systemd /usr/local/bin /usr/local/sbin /var/log
#   (so /var/log/aip too) /run (tmpfs; /run/aip from run-aip) /root (so /root/.ssh too)
#   /home/aiptest /var/tmp /tmp /opt /etc/hosts /etc/hostname
# The stand-in systemctl/journalctl (tests/standin/) are installed in the private
# /usr/local/sbin and bind-mounted over /usr/bin/systemctl and /usr/bin/journalctl.
# The pinned Kubernetes binaries that scripts/tools.sh builds (its cache, ${AIP_CACHE:-~/.cache/
# ai-platform}) are bind-mounted read-only at /run/aip-tools in every host: the stand-in K3s
# runs the real etcd, kube-apiserver, controllers, scheduler, kubectl and kwok from there.
# Every process exec'd in a host is recorded to $STATE/h<i>/cmdlines.log by a capture daemon
# in the root namespace (tests/hosts/testhosts.py _capture); see tests/standin/README.md.
#
# Requires root. STATE defaults to /tmp/aip-testhosts (override: AIP_TESTHOSTS_DIR).
# Traffic: only on aip-br0 and inside the namespaces made here.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "${SELF}")/.." && pwd)
STANDIN="${REPO}/tests/standin"
HOSTSPY="${REPO}/tests/hosts/testhosts.py"
STATE="${AIP_TESTHOSTS_DIR:-/tmp/aip-testhosts}"
BRIDGE=aip-br0
NET=10.231.0
BRIDGE_ADDR="${NET}.1"
NS_PREFIX=aip-h
VETH_PREFIX=aipv
USER_NAME=aiptest
SUDOERS=/etc/sudoers.d/aiptest
MARKER=.aip-testhosts
HOST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
PY=/usr/bin/python3
# where the host's own state dir is seen from inside the host (its private /run)
INSIDE=/run/aip-host
# scripts/tools.sh's cache, seen read-only at TOOLS_INSIDE in each host (tests/standin/k3s.py)
TOOLS_CACHE="${AIP_CACHE:-${HOME}/.cache/ai-platform}"
TOOLS_INSIDE=/run/aip-tools
# source (under $STATE/h<i>/) : mount point inside the host
PRIVATE_DIRS=(
  etc-rancher:/etc/rancher
  var-lib-rancher:/var/lib/rancher
  etc-systemd:/etc/systemd
  usr-local-bin:/usr/local/bin
  usr-local-sbin:/usr/local/sbin
  var-log:/var/log
  root:/root
  home-aiptest:/home/aiptest
  var-tmp:/var/tmp
  opt:/opt
)

log() { printf 'testhosts: %s\n' "$*" >&2; }
die() { printf 'testhosts: error: %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root"; }

addr_of() { printf '%s.%d' "${NET}" $((10 + $1)); }

# hosts that exist now, as numbers (from the namespaces, so `down` works without $STATE)
existing_hosts() {
  ip netns list 2>/dev/null | awk '{print $1}' | sed -n "s/^${NS_PREFIX}\([0-9][0-9]*\)\$/\1/p" | sort -n
}

bridge_up() { ip link show dev "${BRIDGE}" >/dev/null 2>&1; }

ssh_opts() {
  printf '%s\n' -F /dev/null -i "${STATE}/client_key" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=${STATE}/known_hosts" \
    -o GlobalKnownHostsFile=/dev/null -o HostKeyAlgorithms=ssh-ed25519 -o ConnectTimeout=3 \
    -o LogLevel=ERROR
}

# ---------------------------------------------------------------- inside a host (PID 1)
# Runs as PID 1 of the host's PID namespace, inside its network, mount and UTS namespaces.
hostinit() {
  local i="$1" h pair src dst f real dir
  h="${STATE}/h${i}"
  printf 'h%s' "${i}" >/proc/sys/kernel/hostname
  mount --make-rprivate /
  # private /run (sshd privsep dir, sudo timestamps, utmp, /run/aip) and a view of $STATE/h<i>
  mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
  mkdir -p /run/sshd /run/lock /run/user /run/aip "${INSIDE}"
  chmod 1777 /run/lock
  mount --bind "${h}" "${INSIDE}"
  mount --bind "${h}/run-aip" /run/aip
  # before /root is replaced: the tool cache usually lives under it
  if [ -d "${TOOLS_CACHE}" ]; then
    mkdir -p "${TOOLS_INSIDE}"
    mount --bind "${TOOLS_CACHE}" "${TOOLS_INSIDE}"
    mount -o remount,bind,ro "${TOOLS_INSIDE}"
  fi
  for pair in "${PRIVATE_DIRS[@]}"; do
    src="${h}/${pair%%:*}"
    dst="${pair#*:}"
    mount --bind "${src}" "${dst}"
  done
  mount --bind "${h}/etc-hosts" /etc/hosts
  if [ -f /etc/hostname ]; then mount --bind "${h}/etc-hostname" /etc/hostname; fi
  # the stand-ins also answer at the absolute paths scripts may use
  for f in systemctl journalctl; do
    if [ -e "/usr/bin/${f}" ]; then mount --bind "/usr/local/sbin/${f}" "/usr/bin/${f}"; fi
  done
  # hide kubectl/crictl/ctr of this dev machine (a fresh node has none; install.sh checks)
  for f in kubectl crictl ctr; do
    real=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "${f}" 2>/dev/null || true)
    [ -n "${real}" ] || continue
    real=$(readlink -f "${real}")
    dir=$(dirname "${real}")
    case "${dir}" in
      /usr/local/*) ;;
      /usr/bin | /usr/sbin | /bin | /sbin)
        printf 'testhosts: cannot hide %s in h%s (a file in %s)\n' "${real}" "${i}" "${dir}" >&2 ;;
      # e.g. /usr/lib/google-cloud-sdk/bin: an empty directory leaves /usr/bin/kubectl dangling
      *) mount -t tmpfs -o ro,size=4k,mode=0755 tmpfs "${dir}" ;;
    esac
  done
  # last: $STATE may live under /tmp
  mount --bind "${h}/tmp" /tmp

  local sshd_pid
  term() {
    [ -n "${sshd_pid:-}" ] && kill -TERM "${sshd_pid}" 2>/dev/null
    exit 0
  }
  trap term TERM INT HUP
  /usr/sbin/sshd -D -f "${INSIDE}/sshd_config" -E "${INSIDE}/sshd.log" &
  sshd_pid=$!
  # PID 1 reaps every orphan (the stand-in daemons are double-forked); `wait` returns
  # on each child exit or trapped signal.
  while kill -0 "${sshd_pid}" 2>/dev/null; do
    wait || true
  done
  printf 'testhosts: sshd of h%s exited\n' "${i}" >&2
}

# ---------------------------------------------------------------- up
write_sshd_config() {
  local i="$1" h="$2"
  cat >"${h}/sshd_config" <<EOF
# sshd of test host h${i} (generated by scripts/testhosts.sh)
ListenAddress $(addr_of "${i}"):22
HostKey ${INSIDE}/ssh_host_ed25519_key
HostKeyAlgorithms ssh-ed25519
PidFile ${INSIDE}/sshd.pid
LogLevel VERBOSE
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM yes
PrintMotd no
PrintLastLog no
AllowUsers root ${USER_NAME}
SetEnv PATH=${HOST_PATH}
MaxStartups 100:30:200
MaxSessions 64
Subsystem sftp internal-sftp
Match User ${USER_NAME}
    PasswordAuthentication yes
EOF
}

make_host_state() {
  local i="$1" h pair home_uid home_gid
  h="${STATE}/h${i}"
  mkdir -p "${h}"
  for pair in "${PRIVATE_DIRS[@]}"; do mkdir -p "${h}/${pair%%:*}"; done
  mkdir -p "${h}/run-aip" "${h}/tmp" "${h}/var-log/aip" "${h}/etc-systemd/system/multi-user.target.wants"
  chmod 1777 "${h}/tmp" "${h}/var-tmp"
  chmod 0700 "${h}/root"
  # /etc/hosts and /etc/hostname of the host
  {
    printf '127.0.0.1\tlocalhost\n'
    printf '%s\th%s\n' "$(addr_of "${i}")" "${i}"
    local j
    for ((j = 1; j <= N; j++)); do
      [ "${j}" -eq "${i}" ] || printf '%s\th%s\n' "$(addr_of "${j}")" "${j}"
    done
  } >"${h}/etc-hosts"
  printf 'h%s\n' "${i}" >"${h}/etc-hostname"
  chmod 0644 "${h}/etc-hosts" "${h}/etc-hostname"
  # stand-in systemctl/journalctl
  install -m 0755 "${STANDIN}/systemctl" "${h}/usr-local-sbin/systemctl"
  install -m 0755 "${STANDIN}/journalctl" "${h}/usr-local-sbin/journalctl"
  # root: key login, a plain environment (no dev-machine rc files)
  mkdir -p "${h}/root/.ssh"
  chmod 0700 "${h}/root/.ssh"
  install -m 0600 "${STATE}/client_key.pub" "${h}/root/.ssh/authorized_keys"
  printf '# ~/.bashrc of root on test host h%s\nPATH=%s\n' "${i}" "${HOST_PATH}" >"${h}/root/.bashrc"
  printf '# ~/.profile of root on test host h%s\n[ -f ~/.bashrc ] && . ~/.bashrc\n' "${i}" >"${h}/root/.profile"
  # aiptest: key and password login, passwordless sudo
  home_uid=$(id -u "${USER_NAME}")
  home_gid=$(id -g "${USER_NAME}")
  cp -a /etc/skel/. "${h}/home-aiptest/" 2>/dev/null || true
  {
    printf '# test host: stand-ins in /usr/local/{s,}bin come first\n'
    printf 'PATH=%s\n' "${HOST_PATH}"
    [ -f /etc/skel/.bashrc ] && cat /etc/skel/.bashrc
  } >"${h}/home-aiptest/.bashrc"
  printf 'PATH=%s\n' "${HOST_PATH}" >>"${h}/home-aiptest/.profile"
  mkdir -p "${h}/home-aiptest/.ssh"
  install -m 0600 "${STATE}/client_key.pub" "${h}/home-aiptest/.ssh/authorized_keys"
  chown -R "${home_uid}:${home_gid}" "${h}/home-aiptest"
  chmod 0750 "${h}/home-aiptest"
  chmod 0700 "${h}/home-aiptest/.ssh"
  # host key
  ssh-keygen -q -t ed25519 -N '' -C "h${i}" -f "${h}/ssh_host_ed25519_key"
  write_sshd_config "${i}" "${h}"
  : >"${h}/cmdlines.log"
}

ensure_user() {
  if ! id "${USER_NAME}" >/dev/null 2>&1; then
    useradd -M -d "/home/${USER_NAME}" -s /bin/bash -U "${USER_NAME}"
    log "created user ${USER_NAME}"
  fi
  mkdir -p "/home/${USER_NAME}"
}

# mount points that must exist in the root namespace; remember which ones we made
ensure_mountpoints() {
  local pair dst
  for pair in "${PRIVATE_DIRS[@]}"; do
    dst="${pair#*:}"
    if [ ! -d "${dst}" ]; then
      mkdir -p "${dst}"
      printf '%s\n' "${dst}" >>"${STATE}/created-dirs"
    fi
  done
}

setup_network() {
  local i="$1" ns veth
  ns="${NS_PREFIX}${i}"
  veth="${VETH_PREFIX}${i}"
  ip netns add "${ns}"
  ip link add "${veth}" type veth peer name eth0 netns "${ns}"
  ip link set "${veth}" master "${BRIDGE}"
  if [ -e "/proc/sys/net/ipv6/conf/${veth}/disable_ipv6" ]; then
    sysctl -qw "net.ipv6.conf.${veth}.disable_ipv6=1"
  fi
  ip link set "${veth}" up
  ip netns exec "${ns}" sh -c '
    if [ -d /proc/sys/net/ipv6 ]; then
      sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    fi'
  ip -n "${ns}" link set lo up
  ip -n "${ns}" addr add "$(addr_of "${i}")/24" dev eth0
  ip -n "${ns}" link set eth0 up
}

start_host() {
  local i="$1"
  # setsid: detached from the caller; the host's PID 1 is this script's `hostinit`
  AIP_TESTHOSTS_DIR="${STATE}" AIP_CACHE="${TOOLS_CACHE}" setsid ip netns exec "${NS_PREFIX}${i}" \
    unshare --pid --fork --mount-proc --uts --propagation private \
    /bin/bash "${SELF}" __hostinit "${i}" </dev/null >>"${STATE}/h${i}/init.log" 2>&1 &
}

write_hosts_json() {
  local i first=1 h
  {
    printf '[\n'
    for ((i = 1; i <= N; i++)); do
      h="${STATE}/h${i}"
      [ "${first}" -eq 1 ] || printf ',\n'
      first=0
      printf '  {"name": "h%s", "address": "%s", "port": 22, "netns": "%s",\n' \
        "${i}" "$(addr_of "${i}")" "${NS_PREFIX}${i}"
      printf '   "host_key": "%s",\n' "$(awk '{print $1" "$2}' "${h}/ssh_host_ed25519_key.pub")"
      printf '   "users": {"root": {"home": "/root", "auth": ["key"], "sudo": false},\n'
      printf '             "%s": {"home": "/home/%s", "auth": ["key", "password"], "sudo": true}},\n' \
        "${USER_NAME}" "${USER_NAME}"
      printf '   "client_key_path": "%s", "password_path": "%s",\n' \
        "${STATE}/client_key" "${STATE}/${USER_NAME}.password"
      printf '   "known_hosts_path": "%s", "state_dir": "%s"}' "${STATE}/known_hosts" "${h}"
    done
    printf '\n]\n'
  } >"${STATE}/hosts.json.new"
  mv -f "${STATE}/hosts.json.new" "${STATE}/hosts.json"
}

wait_ssh() {
  local i="$1" deadline opts
  mapfile -t opts < <(ssh_opts)
  deadline=$((SECONDS + 30))
  until ssh "${opts[@]}" "root@$(addr_of "${i}")" true </dev/null 2>/dev/null; do
    if [ "${SECONDS}" -ge "${deadline}" ]; then
      cat "${STATE}/h${i}/init.log" "${STATE}/h${i}/sshd.log" >&2 2>/dev/null || true
      die "sshd of h${i} did not accept connections within 30s"
    fi
    sleep 0.1
  done
}

# on a failed `up`, undo it (unless AIP_TESTHOSTS_KEEP=1, to debug)
up_exit() {
  [ "${UP_DONE:-0}" -eq 1 ] && return 0
  if [ "${AIP_TESTHOSTS_KEEP:-0}" = 1 ]; then
    log "up failed; state kept in ${STATE} (AIP_TESTHOSTS_KEEP=1); run '$0 down' to clean up"
  else
    log "up failed; cleaning up"
    cmd_down >/dev/null 2>&1 || true
  fi
}

cmd_up() {
  N="${1:-}"
  case "${N}" in '' | *[!0-9]*) die "usage: $0 up N (1..200)" ;; esac
  if [ "${N}" -lt 1 ] || [ "${N}" -gt 200 ]; then die "N must be 1..200"; fi
  need_root
  local tool
  for tool in ip unshare setsid sshd ssh ssh-keygen sudo useradd chpasswd visudo mount "${PY}"; do
    command -v "${tool}" >/dev/null 2>&1 || [ -x "${tool}" ] || die "missing ${tool} (apt-get install -y openssh-server sudo iproute2 procps)"
  done
  [ -x /usr/sbin/sshd ] || die "missing /usr/sbin/sshd (apt-get install -y openssh-server)"
  if bridge_up || [ -n "$(existing_hosts)" ] || [ -e "${STATE}/hosts.json" ]; then
    die "test hosts are already up (or left over): run '$0 down' first"
  fi
  if [ -e "${STATE}" ] && [ ! -e "${STATE}/${MARKER}" ]; then
    die "${STATE} exists and is not a testhosts state dir; refusing to use it"
  fi
  local t0=${SECONDS} i
  mkdir -p "${STATE}"
  chmod 0755 "${STATE}"
  : >"${STATE}/${MARKER}"
  UP_DONE=0
  trap up_exit EXIT

  ensure_user
  ensure_mountpoints
  [ -f "${STATE}/client_key" ] ||
    ssh-keygen -q -t ed25519 -N '' -C aip-testhosts-client -f "${STATE}/client_key"
  # a fresh password for aiptest (stdin only, never on a command line)
  (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=\n' >"${STATE}/${USER_NAME}.password")
  printf '%s:%s\n' "${USER_NAME}" "$(cat "${STATE}/${USER_NAME}.password")" | chpasswd
  cat >"${STATE}/askpass.sh" <<EOF
#!/bin/sh
# SSH_ASKPASS helper: prints the test password (never on a command line)
cat '${STATE}/${USER_NAME}.password'
EOF
  chmod 0700 "${STATE}/askpass.sh"
  # passwordless sudo; sudo logs every command (with its arguments) into the host's log dir
  cat >"${SUDOERS}.new" <<EOF
# written by scripts/testhosts.sh up; removed by scripts/testhosts.sh down
${USER_NAME} ALL=(ALL:ALL) NOPASSWD: ALL
Defaults:${USER_NAME} logfile=/var/log/aip/sudo.log, loglinelen=0, !syslog
EOF
  chmod 0440 "${SUDOERS}.new"
  visudo -cqf "${SUDOERS}.new" || die "generated sudoers file is invalid"
  mv -f "${SUDOERS}.new" "${SUDOERS}"

  ip link add "${BRIDGE}" type bridge
  if [ -e "/proc/sys/net/ipv6/conf/${BRIDGE}/disable_ipv6" ]; then
    sysctl -qw "net.ipv6.conf.${BRIDGE}.disable_ipv6=1"
  fi
  ip addr add "${BRIDGE_ADDR}/24" dev "${BRIDGE}"
  ip link set "${BRIDGE}" up

  : >"${STATE}/known_hosts"
  for ((i = 1; i <= N; i++)); do
    make_host_state "${i}"
    setup_network "${i}"
    printf '%s %s\n' "$(addr_of "${i}")" "$(awk '{print $1" "$2}' "${STATE}/h${i}/ssh_host_ed25519_key.pub")" \
      >>"${STATE}/known_hosts"
  done
  # the command-line capture daemon (root namespace; watches every host's namespaces);
  # AIP_TESTHOSTS_CAPTURE=0 leaves it out (the bootstrap bench: its CPU is not the program's)
  if [ "${AIP_TESTHOSTS_CAPTURE:-1}" != 0 ]; then
    setsid "${PY}" "${HOSTSPY}" _capture --state "${STATE}" --hosts "${N}" \
      </dev/null >>"${STATE}/capture.log" 2>&1 &
    printf '%s\n' "$!" >"${STATE}/capture.pid"
  fi
  for ((i = 1; i <= N; i++)); do start_host "${i}"; done
  for ((i = 1; i <= N; i++)); do wait_ssh "${i}"; done
  write_hosts_json
  UP_DONE=1
  log "up: ${N} host(s) in $((SECONDS - t0))s; ${STATE}/hosts.json"
}

# ---------------------------------------------------------------- down
kill_pids() {
  # kill_pids PID... — TERM, wait up to 5s, then KILL
  local pid deadline alive
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  deadline=$((SECONDS + 5))
  while :; do
    alive=()
    for pid in "$@"; do
      if [ -e "/proc/${pid}" ] && ! grep -q '^State:.*Z' "/proc/${pid}/status" 2>/dev/null; then
        alive+=("${pid}")
      fi
    done
    [ ${#alive[@]} -gt 0 ] || return 0
    [ "${SECONDS}" -lt "${deadline}" ] || break
    sleep 0.1
  done
  kill -KILL "${alive[@]}" 2>/dev/null || true
}

cmd_down() {
  need_root
  local i pids ns pid dir cmdline
  # 1. every process in each host's network namespace (its sshd, sessions, stand-in daemons)
  for i in $(existing_hosts); do
    ns="${NS_PREFIX}${i}"
    mapfile -t pids < <(ip netns pids "${ns}" 2>/dev/null || true)
    kill_pids "${pids[@]}"
  done
  # 2. the capture daemon (by its pid file, after checking it is ours)
  if [ -f "${STATE}/capture.pid" ]; then
    pid=$(cat "${STATE}/capture.pid")
    cmdline=$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null || true)
    case "${cmdline}" in *"testhosts.py _capture --state ${STATE} "*) kill_pids "${pid}" ;; esac
  fi
  # 3. namespaces, veths, bridge
  for i in $(existing_hosts); do
    ip netns del "${NS_PREFIX}${i}" 2>/dev/null || true
  done
  while read -r dev; do
    if [ -n "${dev}" ]; then ip link del "${dev}" 2>/dev/null || true; fi
  done < <(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed -n "s/@.*//; /^${VETH_PREFIX}[0-9][0-9]*\$/p")
  if bridge_up; then ip link del "${BRIDGE}"; fi
  # 4. sudoers, the aiptest password (the user itself stays: it is created once)
  rm -f "${SUDOERS}" "${SUDOERS}.new"
  if id "${USER_NAME}" >/dev/null 2>&1; then usermod -p '!' "${USER_NAME}"; fi
  # 5. mounts under $STATE in this namespace (there should be none), then $STATE itself
  if [ -d "${STATE}" ]; then
    awk -v s="${STATE}" '$2 == s || index($2, s "/") == 1 {print $2}' /proc/self/mounts | sort -r |
      while read -r dir; do umount -l "${dir}" || true; done
    if [ -f "${STATE}/created-dirs" ]; then
      while read -r dir; do
        if [ -n "${dir}" ]; then rmdir "${dir}" 2>/dev/null || true; fi
      done <"${STATE}/created-dirs"
    fi
    if [ -e "${STATE}/${MARKER}" ]; then
      rm -rf "${STATE}"
    else
      log "not removing ${STATE}: no ${MARKER} marker in it"
    fi
  fi
  log "down: done"
}

# ---------------------------------------------------------------- status
cmd_status() {
  local hosts i pid nspid state events up=0
  hosts=$(existing_hosts)
  if bridge_up; then
    printf 'bridge %s: %s\n' "${BRIDGE}" "$(ip -o -4 addr show dev "${BRIDGE}" | awk '{print $4}')"
    up=1
  else
    printf 'bridge %s: absent\n' "${BRIDGE}"
  fi
  for i in ${hosts}; do
    up=1
    state="sshd not running"
    nspid=$(cat "${STATE}/h${i}/sshd.pid" 2>/dev/null || true)
    # sshd.pid holds the pid inside the host's PID namespace: find it among the netns' pids
    for pid in $(ip netns pids "${NS_PREFIX}${i}" 2>/dev/null); do
      if [ -n "${nspid}" ] && [ "$(awk '/^NSpid:/ {print $NF}' "/proc/${pid}/status" 2>/dev/null)" = "${nspid}" ]; then
        state="sshd pid ${pid} (${nspid} in the host)"
      fi
    done
    events=0
    if [ -f "${STATE}/h${i}/var-log/aip/events.log" ]; then
      events=$(wc -l <"${STATE}/h${i}/var-log/aip/events.log")
    fi
    printf 'h%s: netns %s, %s:22, %s, %d process(es), %s event(s)\n' "${i}" "${NS_PREFIX}${i}" \
      "$(addr_of "${i}")" "${state}" "$(ip netns pids "${NS_PREFIX}${i}" 2>/dev/null | wc -l)" "${events}"
  done
  if [ -f "${STATE}/hosts.json" ]; then printf 'hosts: %s\n' "${STATE}/hosts.json"; fi
  [ "${up}" -eq 1 ] || { printf 'nothing is up\n'; return 3; }
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  __hostinit) hostinit "$2" ;;
  *) printf 'usage: %s up N | down | status\n' "$0" >&2; exit 2 ;;
esac
