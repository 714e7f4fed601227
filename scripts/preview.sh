#!/usr/bin/env bash
# preview.sh STACK — the real `pulumi preview --diff`, with a local file backend in the
# project's ignored .pulumi-state/ unless you are logged in elsewhere. Needs the Pulumi CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:-dev}
if ! command -v pulumi >/dev/null 2>&1; then
  cat >&2 <<MSG
make preview: the Pulumi CLI is not installed on this machine.
  Install it: https://www.pulumi.com/docs/install/  (curl -fsSL https://get.pulumi.com | sh)
  Meanwhile, 'make plan STACK=${stack}' shows offline everything the program declares.
MSG
  exit 1
fi
if [ -z "${PULUMI_BACKEND_URL:-}" ] && ! pulumi whoami >/dev/null 2>&1; then
  mkdir -p .pulumi-state
  export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
  echo "preview: using the local file backend in .pulumi-state/" >&2
fi
pulumi stack select "$stack" 2>/dev/null || pulumi stack init "$stack"
exec pulumi preview --diff --stack "$stack" --policy-pack policy
