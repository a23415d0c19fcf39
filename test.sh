#!/usr/bin/env bash
# Runs tributary's whole test suite: host, capabilities, extraction, fake servers, end-to-end
# tests of every plugin through the real host, and the guest SDK's own tests.
# Usage: ./test.sh [extra cargo test arguments, e.g. a test name filter]
set -euo pipefail
cd "$(dirname "$0")"
# Reuse a build cache outside the clone when there is one (a fresh machine simply fills it).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tributary-target}"
# Plugins are built for wasm32-wasip2; machines with RUSTUP_AUTO_INSTALL=0 never add it on
# their own (host/build.rs also checks, this just makes the first build quieter).
rustup target add wasm32-wasip2 >/dev/null
# The JavaScript and Python toolchains (pinned in plugins/toolchain/) and the plugins written
# with them, installed and built outside the clone (~/.cache/tributary-tools) and reused.
bash plugins/build-foreign.sh
cargo test --workspace "$@"
(cd plugins && CARGO_TARGET_DIR="$CARGO_TARGET_DIR/wasm-plugins" cargo test -p tributary-sdk "$@")
