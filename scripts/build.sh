#!/usr/bin/env bash
# Installs what is missing (scripts/setup.sh), then configures and builds tuneloop
# (Release) into ./build. Extra arguments go to the build tool.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=${TUNELOOP_JOBS:-$(nproc)}
if [[ ! -f build/CMakeCache.txt ]]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build build -j "$jobs" "$@"
