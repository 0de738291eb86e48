#!/usr/bin/env bash
# The whole test suite: unit tests, in-process HTTP tests, and end-to-end
# tests that start the real faztd/faztctl binaries.
#
# Builds once (debug), then runs every test against those binaries.
# When run as root it first installs the Debian packages the tests need
# (scripts/test-deps.sh says which); as a normal user it tells you.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/test-deps.sh

echo "==> building the workspace (debug, shared by every test)"
cargo build --workspace --all-targets --locked

echo "==> running the tests"
export FAZT_BIN_DIR="$PWD/target/debug"
cargo test --workspace --locked -- --test-threads="${TEST_THREADS:-4}"
