#!/bin/sh
# Stand-in K3s installer for tests — NOT the real https://get.k3s.io script.
#
# It follows the real installer's contract for what the node scripts use (see
# tests/standin/README.md): INSTALL_K3S_SKIP_DOWNLOAD=true (airgap: the binary must already
# be at $BIN_DIR/k3s; without it this fails, there is no network here), INSTALL_K3S_EXEC
# ("server"/"agent" and flags), INSTALL_K3S_VERSION (accepted, not checked), K3S_URL (https://
# only, like the real one), K3S_TOKEN/K3S_TOKEN_FILE (written to the env file), plus
# INSTALL_K3S_SKIP_ENABLE, INSTALL_K3S_SKIP_START, INSTALL_K3S_FORCE_RESTART,
# INSTALL_K3S_SYMLINK, INSTALL_K3S_NAME, INSTALL_K3S_BIN_DIR, INSTALL_K3S_SYSTEMD_DIR.
# Like the real one it writes the kubectl/crictl/ctr symlinks, k3s-killall.sh, the uninstall
# script, the unit file and its .env file, then `systemctl enable` + `systemctl restart` —
# unless the binary, unit and env file are unchanged ("No change detected so skipping service
# start"). The stand-in appends `<time> install <service>` to /var/log/aip/events.log.
set -e
set -o noglob

EVENTS=/var/log/aip/events.log

info() { echo '[INFO] ' "$@"; }
warn() { echo '[WARN] ' "$@" >&2; }
fatal() {
    echo '[ERROR] ' "$@" >&2
    exit 1
}

event() {
    $SUDO mkdir -p "$(dirname "${EVENTS}")"
    printf '%s %s %s\n' "$(date +%s.%3N)" "$1" "$2" | $SUDO tee -a "${EVENTS}" >/dev/null
}

# --- add quotes to command arguments (as the real installer) ---
quote() {
    for arg in "$@"; do
        printf '%s\n' "$arg" | sed "s/'/'\\\\''/g;1s/^/'/;\$s/\$/'/"
    done
}

# --- add indentation and trailing slash to quoted args ---
quote_indent() {
    printf ' \\\n'
    for arg in "$@"; do
        printf '\t%s \\\n' "$(quote "$arg")"
    done
}

# --- escape most punctuation characters, except quotes, forward slash, and space ---
escape() {
    printf '%s' "$@" | sed -e 's/\([][!#$%&()*;<=>?\_`{|}]\)/\\\1/g;'
}

verify_system() {
    if [ -x /usr/local/sbin/systemctl ] || command -v systemctl >/dev/null 2>&1; then
        return
    fi
    fatal 'Can not find systemd or openrc to use as a process supervisor for k3s'
}

verify_k3s_url() {
    case "${K3S_URL}" in
        "") ;;
        https://*) ;;
        *) fatal "Only https:// URLs are supported for K3S_URL (have ${K3S_URL})" ;;
    esac
}

setup_env() {
    case "$1" in
        # --- if we only have flags discover if command should be server or agent ---
        (-*|"")
            if [ -z "${K3S_URL}" ]; then
                CMD_K3S=server
            else
                if [ -z "${K3S_TOKEN}" ] && [ -z "${K3S_TOKEN_FILE}" ]; then
                    fatal "Defaulted k3s exec command to 'agent' because K3S_URL is defined, but K3S_TOKEN or K3S_TOKEN_FILE is not defined."
                fi
                CMD_K3S=agent
            fi
            ;;
        # --- command is provided ---
        (*)
            CMD_K3S=$1
            shift
            ;;
    esac

    verify_k3s_url

    CMD_K3S_EXEC="${CMD_K3S}$(quote_indent "$@")"

    if [ -n "${INSTALL_K3S_NAME}" ]; then
        SYSTEM_NAME=k3s-${INSTALL_K3S_NAME}
    else
        if [ "${CMD_K3S}" = server ]; then
            SYSTEM_NAME=k3s
        else
            SYSTEM_NAME=k3s-${CMD_K3S}
        fi
    fi
    valid_chars=$(printf '%s' "${SYSTEM_NAME}" | sed -e 's/[][!#$%&()*;<=>?\_`{|}/[:space:]]/^/g;')
    if [ "${SYSTEM_NAME}" != "${valid_chars}" ]; then
        fatal "Invalid characters for system name: ${SYSTEM_NAME}"
    fi

    SUDO=sudo
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=
    fi

    BIN_DIR=${INSTALL_K3S_BIN_DIR:-/usr/local/bin}
    SYSTEMD_DIR=${INSTALL_K3S_SYSTEMD_DIR:-/etc/systemd/system}
    SERVICE_K3S=${SYSTEM_NAME}.service
    UNINSTALL_K3S_SH=${UNINSTALL_K3S_SH:-${BIN_DIR}/${SYSTEM_NAME}-uninstall.sh}
    KILLALL_K3S_SH=${KILLALL_K3S_SH:-${BIN_DIR}/k3s-killall.sh}
    FILE_K3S_SERVICE=${SYSTEMD_DIR}/${SERVICE_K3S}
    FILE_K3S_ENV=${SYSTEMD_DIR}/${SERVICE_K3S}.env

    if [ "${CMD_K3S}" = server ]; then
        SYSTEMD_TYPE=notify
    else
        SYSTEMD_TYPE="exec"
    fi

    PRE_INSTALL_HASHES=$(get_installed_hashes)
}

get_installed_hashes() {
    $SUDO sha256sum "${BIN_DIR}/k3s" "${FILE_K3S_SERVICE}" "${FILE_K3S_ENV}" 2>&1 || true
}

verify_k3s_is_executable() {
    if [ ! -x "${BIN_DIR}/k3s" ]; then
        fatal "Executable k3s binary not found at ${BIN_DIR}/k3s"
    fi
}

download_and_verify() {
    if [ "${INSTALL_K3S_SKIP_DOWNLOAD}" = true ]; then
        info 'Skipping k3s download and verify'
        verify_k3s_is_executable
        return
    fi
    fatal "no network in stand-in: cannot download k3s ${INSTALL_K3S_VERSION:-(latest)}; use INSTALL_K3S_SKIP_DOWNLOAD=true with the binary at ${BIN_DIR}/k3s (airgap install)"
}

create_symlinks() {
    [ "${INSTALL_K3S_BIN_DIR_READ_ONLY}" = true ] && return
    [ "${INSTALL_K3S_SYMLINK}" = skip ] && return

    for cmd in kubectl crictl ctr; do
        if [ ! -e "${BIN_DIR}/${cmd}" ] || [ "${INSTALL_K3S_SYMLINK}" = force ]; then
            which_cmd=$(command -v "${cmd}" 2>/dev/null || true)
            if [ -z "${which_cmd}" ] || [ "${INSTALL_K3S_SYMLINK}" = force ]; then
                info "Creating ${BIN_DIR}/${cmd} symlink to k3s"
                $SUDO ln -sf k3s "${BIN_DIR}/${cmd}"
            else
                info "Skipping ${BIN_DIR}/${cmd} symlink to k3s, command exists in PATH at ${which_cmd}"
            fi
        else
            info "Skipping ${BIN_DIR}/${cmd} symlink to k3s, already exists"
        fi
    done
}

create_killall() {
    [ "${INSTALL_K3S_BIN_DIR_READ_ONLY}" = true ] && return
    info "Creating killall script ${KILLALL_K3S_SH}"
    $SUDO tee "${KILLALL_K3S_SH}" >/dev/null <<EOF
#!/bin/sh
# k3s-killall.sh of the stand-in K3s (tests/standin): stops every k3s service and process.
[ \$(id -u) -eq 0 ] || exec sudo \$0 \$@

for service in ${SYSTEMD_DIR}/k3s*.service; do
    [ -s \$service ] && systemctl stop \$(basename \$service)
done

# leftover stand-in daemons, by their pid files (the stand-in systemctl writes them)
for pidfile in /run/aip/k3s*.pid; do
    [ -f "\$pidfile" ] || continue
    pid=\$(cat "\$pidfile")
    kill -9 "\$pid" 2>/dev/null || true
    rm -f "\$pidfile"
done
rm -rf /run/k3s /run/flannel
printf '%s killall -\n' "\$(date +%s.%3N)" >>${EVENTS}
EOF
    $SUDO chmod 755 "${KILLALL_K3S_SH}"
    $SUDO chown root:root "${KILLALL_K3S_SH}"
}

create_uninstall() {
    [ "${INSTALL_K3S_BIN_DIR_READ_ONLY}" = true ] && return
    info "Creating uninstall script ${UNINSTALL_K3S_SH}"
    $SUDO tee "${UNINSTALL_K3S_SH}" >/dev/null <<EOF
#!/bin/sh
# ${SYSTEM_NAME}-uninstall.sh of the stand-in K3s (tests/standin).
set -x
[ \$(id -u) -eq 0 ] || exec sudo --preserve-env=K3S_DATA_DIR \$0 \$@

K3S_DATA_DIR=\${K3S_DATA_DIR:-/var/lib/rancher/k3s}

printf '%s uninstall ${SYSTEM_NAME}\n' "\$(date +%s.%3N)" >>${EVENTS}

${KILLALL_K3S_SH}

if command -v systemctl; then
    systemctl disable ${SYSTEM_NAME}
    systemctl reset-failed ${SYSTEM_NAME}
    systemctl daemon-reload
fi

rm -f ${FILE_K3S_SERVICE}
rm -f ${FILE_K3S_ENV}

remove_uninstall() {
    rm -f ${UNINSTALL_K3S_SH}
}
trap remove_uninstall EXIT

if (ls ${SYSTEMD_DIR}/k3s*.service || ls /etc/init.d/k3s*) >/dev/null 2>&1; then
    set +x; echo 'Additional k3s services installed, skipping uninstall of k3s'; set -x
    exit
fi

for cmd in kubectl crictl ctr; do
    if [ -L ${BIN_DIR}/\$cmd ]; then
        rm -f ${BIN_DIR}/\$cmd
    fi
done

rm -rf /etc/rancher/k3s
rm -rf /run/k3s
rm -rf /run/flannel
rm -rf \${K3S_DATA_DIR}
rm -rf /var/lib/kubelet
rm -f ${BIN_DIR}/k3s
rm -f ${KILLALL_K3S_SH}
EOF
    $SUDO chmod 755 "${UNINSTALL_K3S_SH}"
    $SUDO chown root:root "${UNINSTALL_K3S_SH}"
}

systemd_disable() {
    $SUDO systemctl disable "${SYSTEM_NAME}" >/dev/null 2>&1 || true
    $SUDO rm -f "/etc/systemd/system/${SERVICE_K3S}" || true
    $SUDO rm -f "/etc/systemd/system/${SERVICE_K3S}.env" || true
}

create_env_file() {
    info "env: Creating environment file ${FILE_K3S_ENV}"
    $SUDO touch "${FILE_K3S_ENV}"
    $SUDO chmod 0600 "${FILE_K3S_ENV}"
    sh -c export | while read -r _ v; do echo "$v"; done | grep -E '^(K3S|CONTAINERD)_' | $SUDO tee "${FILE_K3S_ENV}" >/dev/null || true
    sh -c export | while read -r _ v; do echo "$v"; done | grep -Ei '^(NO|HTTP|HTTPS)_PROXY' | $SUDO tee -a "${FILE_K3S_ENV}" >/dev/null || true
}

create_systemd_service_file() {
    info "systemd: Creating service file ${FILE_K3S_SERVICE}"
    $SUDO tee "${FILE_K3S_SERVICE}" >/dev/null <<EOF
[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=${SYSTEMD_TYPE}
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-${FILE_K3S_ENV}
KillMode=process
Delegate=yes
User=root
# Having non-zero Limit*s causes performance problems due to accounting overhead
# in the kernel. We recommend using cgroups to do container-local accounting.
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=${BIN_DIR}/k3s \\
    ${CMD_K3S_EXEC}

EOF
}

service_enable_and_start() {
    [ "${INSTALL_K3S_SKIP_ENABLE}" = true ] && return

    info "systemd: Enabling ${SYSTEM_NAME} unit"
    $SUDO systemctl enable "${FILE_K3S_SERVICE}" >/dev/null
    $SUDO systemctl daemon-reload >/dev/null

    [ "${INSTALL_K3S_SKIP_START}" = true ] && return

    POST_INSTALL_HASHES=$(get_installed_hashes)
    if [ "${PRE_INSTALL_HASHES}" = "${POST_INSTALL_HASHES}" ] && [ "${INSTALL_K3S_FORCE_RESTART}" != true ]; then
        info 'No change detected so skipping service start'
        return
    fi

    info "systemd: Starting ${SYSTEM_NAME}"
    $SUDO systemctl restart "${SYSTEM_NAME}"
}

# --- re-evaluate args to include env command ---
eval set -- "$(escape "${INSTALL_K3S_EXEC}")" "$(quote "$@")"

# --- run the install process --
{
    verify_system
    setup_env "$@"
    download_and_verify
    event install "${SYSTEM_NAME}"
    create_symlinks
    create_killall
    create_uninstall
    systemd_disable
    create_env_file
    create_systemd_service_file
    service_enable_and_start
}
