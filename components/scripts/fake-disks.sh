# shellcheck shell=bash
# fake-disks.sh — seed 000's test disks: COUNT directories under BACKING, each bind-mounted
# at DIR/volN (and in /etc/fstab, so they survive a reboot), for local-static-provisioner.
# action=delete unmounts and removes them. Idempotent both ways.
# Arguments: action=create|delete count=N dir=/mnt/fake-disks backing=/var/lib/ai-platform/disks
action=$(arg action)
count=$(arg count)
dir=$(arg dir)
backing=$(arg backing)
fstab="${ROOT}/etc/fstab"
touch "${fstab}"
changed=0
for i in $(seq 1 "${count}"); do
  src="${ROOT}${backing}/vol${i}" dst="${ROOT}${dir}/vol${i}"
  line="${backing}/vol${i} ${dir}/vol${i} none bind 0 0"
  if [ "${action}" = create ]; then
    [ -d "${src}" ] || { mkdir -p "${src}"; changed=1; }
    [ -d "${dst}" ] || { mkdir -p "${dst}"; changed=1; }
    grep -qxF "${line}" "${fstab}" || { printf '%s\n' "${line}" >>"${fstab}"; changed=1; }
    if [ -z "${ROOT}" ] && ! mountpoint -q "${dst}"; then mount --bind "${src}" "${dst}"; changed=1; fi
  else
    if [ -z "${ROOT}" ] && mountpoint -q "${dst}"; then umount "${dst}"; changed=1; fi
    if grep -qxF "${line}" "${fstab}"; then
      grep -vxF "${line}" "${fstab}" >"${fstab}.aip-new" || true
      cat "${fstab}.aip-new" >"${fstab}" && rm -f "${fstab}.aip-new"
      changed=1
    fi
    [ -d "${dst}" ] && { rmdir "${dst}" 2>/dev/null || true; changed=1; }
  fi
done
if [ "${changed}" = 1 ]; then log "fake disks ${action}d (${count} under ${dir})"; else log "unchanged"; fi
