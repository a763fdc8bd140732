#!/usr/bin/env bash
# Sets up, builds, and runs the tuneloop daemon in the foreground on the built-in
# defaults (config/default.yaml); Ctrl-C stops it. Extra arguments go to tuneloopd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec build/daemon/tuneloopd "$@"
