#!/usr/bin/env bash
# setup.sh — everything `make plan` and `make test` need, from a fresh clone:
# the Python venv with pinned packages, and the Debian tools the tests use.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need_apt=()
for tool in shellcheck:shellcheck sshd:openssh-server ssh:openssh-client sudo:sudo ip:iproute2 ps:procps openssl:openssl; do
  cmd=${tool%%:*} pkg=${tool#*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then need_apt+=("$pkg"); fi
done
# the stand-in K3s in the test hosts runs on the system python3 with PyYAML
if ! /usr/bin/python3 -c 'import yaml' >/dev/null 2>&1; then need_apt+=(python3-yaml); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: warning: missing ${need_apt[*]} (install them; the script and host tests need them)" >&2
  fi
fi

stamp="$VENV/.installed-$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  rm -f "$VENV"/.installed-*
  touch "$stamp"
  echo "setup: venv ready ($VENV)"
fi
