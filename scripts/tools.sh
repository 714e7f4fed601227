#!/usr/bin/env bash
# tools.sh NAME — print the path of a pinned Go tool, building it once into
# ~/.cache/ai-platform/<name>-<version>/ (keyed by version; rebuilt when missing).
set -euo pipefail
name=${1:?usage: tools.sh actionlint}
case "$name" in
  actionlint) module=github.com/rhysd/actionlint/cmd/actionlint version=v1.7.7 ;;
  *) echo "tools.sh: unknown tool $name" >&2; exit 2 ;;
esac
cache=${AIP_CACHE:-$HOME/.cache/ai-platform}/$name-$version
bin=$cache/$name
if [ ! -x "$bin" ]; then
  command -v go >/dev/null || { echo "tools.sh: go is needed to build $name" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "tools.sh: building $name $version (once)" >&2
  (cd "$work" && go mod init tools >/dev/null 2>&1 && go get -tool "$module@$version" >/dev/null 2>&1 &&
    mkdir -p "$cache" && go build -o "$bin.tmp" "$module") >&2
  mv "$bin.tmp" "$bin"
fi
printf '%s\n' "$bin"
