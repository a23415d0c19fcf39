#!/usr/bin/env bash
# Installs the pinned JavaScript and Python component toolchains and builds the plugins written
# in those languages (plugins/js-*, plugins/py-*) into WebAssembly components.
#
# Everything lands outside the clone, in $TRIBUTARY_TOOLS_DIR (default ~/.cache/tributary-tools):
#   js-<lock digest>/node_modules   @bytecodealliance/jco + componentize-js (plugins/toolchain/package-lock.json, `npm ci`)
#   py-<pins digest>/               componentize-py (plugins/toolchain/requirements.txt, `pip install --target`)
#   bin/jco, bin/componentize-py    launchers for the current pins (`tributary plugin build` uses them)
#   components/<plugin>-<digest>.wasm   built components, keyed by a digest of their sources, the WIT
#                                       and the pins: an unchanged plugin is never rebuilt
# A pin change installs into a new directory; nothing is ever installed into the repository.
#
# Usage: plugins/build-foreign.sh [--tools] [PLUGIN...]
#   no argument: install the tools and build every foreign plugin
#   --tools:     install the tools only
#   PLUGIN:      build these (e.g. js-rss); the last line of output is each component's path
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${TRIBUTARY_TOOLS_DIR:-$HOME/.cache/tributary-tools}"
toolchain="$root/plugins/toolchain"
mkdir -p "$tools/bin" "$tools/components"

log() { echo "build-foreign: $*" >&2; }
digest() { sha256sum "$@" | sha256sum | cut -c1-16; }

# One installer at a time (tests may call this script concurrently).
exec 9>"$tools/.lock"
flock 9

install_js() {
  local dir="$tools/js-$(digest "$toolchain/package-lock.json")"
  if [ ! -x "$dir/node_modules/.bin/jco" ]; then
    command -v npm >/dev/null || { log "npm is required to build JavaScript plugins (Node.js 20 or newer)"; exit 1; }
    log "installing jco + componentize-js into $dir"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    cp "$toolchain/package.json" "$toolchain/package-lock.json" "$dir.tmp/"
    (cd "$dir.tmp" && npm ci --no-audit --no-fund --loglevel=error >&2)
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  ln -sfn "$dir/node_modules/.bin/jco" "$tools/bin/jco"
}

install_py() {
  local dir="$tools/py-$(digest "$toolchain/requirements.txt")"
  if [ ! -x "$dir/bin/componentize-py" ]; then
    local python
    python="$(command -v python3 || command -v python || true)"
    [ -n "$python" ] || { log "python3 with pip is required to build Python plugins"; exit 1; }
    log "installing componentize-py into $dir"
    rm -rf "$dir.tmp"
    "$python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
      --root-user-action=ignore \
      --target "$dir.tmp" -r "$toolchain/requirements.txt" >&2
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  # A launcher that finds the package without touching the user's Python environment.
  cat >"$tools/bin/componentize-py.tmp" <<EOF
#!/bin/sh
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$dir\${PYTHONPATH:+:\$PYTHONPATH}" exec "$dir/bin/componentize-py" "\$@"
EOF
  chmod +x "$tools/bin/componentize-py.tmp"
  mv "$tools/bin/componentize-py.tmp" "$tools/bin/componentize-py"
}

# The version a foreign plugin pins must be the toolchain's (one source of truth).
check_pins() {
  local manifest="$1"
  local name
  for name in @bytecodealliance/jco @bytecodealliance/componentize-js; do
    local want got
    want="$(node -p "require('$toolchain/package.json').devDependencies['$name']")"
    got="$(node -p "require('$manifest').devDependencies['$name']")"
    if [ "$want" != "$got" ]; then
      log "$manifest pins $name $got, but plugins/toolchain pins $want"
      exit 1
    fi
  done
}

build() {
  local name="$1" src="$root/plugins/$1"
  [ -d "$src" ] || { log "no plugin directory $src"; exit 1; }
  local sum
  sum="$(cd "$root" && digest $(find "plugins/$name" wit plugins/toolchain -type f \
    -not -path '*/node_modules/*' -not -path '*/__pycache__/*' -not -name '*.wasm' | sort))"
  local out="$tools/components/$name-$sum.wasm"
  if [ -s "$out" ]; then
    log "$name is up to date"
    echo "$out"
    return
  fi
  local started=$SECONDS
  case "$name" in
    js-*)
      install_js
      check_pins "$src/package.json"
      log "componentizing $name (jco componentize, wasi:http disabled)"
      (cd "$src" && "$tools/bin/jco" componentize src/index.js --wit "$root/wit" \
        --world-name connector --disable http fetch-event -o "$out.tmp" >&2)
      ;;
    py-*)
      install_py
      log "componentizing $name (componentize-py)"
      (cd "$src" && "$tools/bin/componentize-py" -d "$root/wit" -w connector \
        componentize app -o "$out.tmp" >&2)
      ;;
    *) log "$name: foreign plugins are named js-* or py-*"; exit 1 ;;
  esac
  mv "$out.tmp" "$out"
  # Keep only the newest build of each plugin.
  find "$tools/components" -name "$name-*.wasm" -not -name "$(basename "$out")" -delete
  log "$name built in $((SECONDS - started)) s: $(du -h "$out" | cut -f1)"
  echo "$out"
}

tools_only=false
plugins=()
for arg in "$@"; do
  case "$arg" in
    --tools) tools_only=true ;;
    *) plugins+=("$arg") ;;
  esac
done
if $tools_only; then
  install_js
  install_py
  exit 0
fi
if [ ${#plugins[@]} -eq 0 ]; then
  install_js
  install_py
  for dir in "$root"/plugins/js-* "$root"/plugins/py-*; do
    [ -d "$dir" ] && plugins+=("$(basename "$dir")")
  done
fi
for name in "${plugins[@]}"; do
  build "$name"
done
