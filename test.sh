#!/usr/bin/env bash
# Runs tributary's whole test suite: host, capabilities, extraction, fake servers, end-to-end
# tests of every plugin through the real host, the binary's own tests, and the guest SDK's tests.
# Usage: ./test.sh [extra cargo test arguments, e.g. a test name filter]
set -euo pipefail
cd "$(dirname "$0")"
# The build directory is cargo's own choice (./target, or CARGO_TARGET_DIR when set), the same
# one `cargo run -- demo` uses, so the two share one build.
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
# Plugins are built for wasm32-wasip2; machines with RUSTUP_AUTO_INSTALL=0 never add it on
# their own (the build scripts also check, this just makes the first build quieter).
rustup target add wasm32-wasip2 >/dev/null
# The JavaScript and Python toolchains (pinned in plugins/toolchain/) and the plugins written
# with them, installed and built outside the clone (~/.cache/tributary-tools) and reused.
bash plugins/build-foreign.sh
cargo test --workspace "$@"
(cd plugins && CARGO_TARGET_DIR="$target_dir/wasm-plugins" cargo test -p tributary-sdk "$@")
