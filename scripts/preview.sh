#!/usr/bin/env bash
# preview.sh STACK — the real `pulumi preview --diff`, with a local file backend in the
# project's ignored .pulumi-state/ unless you are logged in elsewhere.
#
# The Pulumi CLI: an installed `pulumi` if there is one (plugins install themselves as
# usual); else the one built here from the Go module proxy (scripts/tools.sh), with the
# Python language host and the Kubernetes provider built beside it — its code is the
# January 2026 pulumi-kubernetes commit, stamped 4.34.2, not the 4.34.2 release — in a
# PULUMI_HOME of its own, nothing downloaded (docs/engine.md). The command and random
# providers cannot be built here: with the built CLI, only a stack that needs neither
# (existing-cluster mode, every generated secret supplied) previews.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:-dev}
policy=(--policy-pack policy)
if ! command -v pulumi >/dev/null 2>&1; then
  if ! command -v go >/dev/null 2>&1; then
    cat >&2 <<MSG
make preview: the Pulumi CLI is not installed on this machine, and Go (to build it) is not either.
  Install it: https://www.pulumi.com/docs/install/  (curl -fsSL https://get.pulumi.com | sh)
  Meanwhile, 'make plan STACK=${stack}' shows offline everything the program declares.
MSG
    exit 1
  fi
  echo "preview: no Pulumi CLI installed; using the one built here (scripts/tools.sh, docs/engine.md)" >&2
  assignments=$(.venv/bin/python -m tests.engine.engine env)
  eval "$assignments"
  : "${PULUMI_CONFIG_PASSPHRASE=}" # the local backend's passphrase: yours, or empty
  export PULUMI_CONFIG_PASSPHRASE
  # The built Python host (v3.79.0) cannot start a policy pack for this CLI: it runs the
  # project's program instead of the pack's ("policy pack ... failed to start: could not
  # read plugin"). `make plan` checks the same rules (stacks/rules.py) offline.
  policy=()
  echo "preview: the policy pack is not run with the built CLI (docs/engine.md); make plan checks its rules" >&2
fi
if [ -z "${PULUMI_BACKEND_URL:-}" ] && ! pulumi whoami >/dev/null 2>&1; then
  mkdir -p .pulumi-state
  export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
  echo "preview: using the local file backend in .pulumi-state/" >&2
fi
pulumi stack select "$stack" 2>/dev/null || pulumi stack init "$stack"
exec pulumi preview --diff --stack "$stack" "${policy[@]}"
