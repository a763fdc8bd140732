#!/usr/bin/env bash
# Sets up, builds, and runs the whole test suite through ctest. On a machine without a
# sound card it starts a JACK dummy server (real-time paced) for the PortAudio tests and
# stops it again afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
source scripts/jack.sh
jack_ensure_running
trap jack_stop_if_ours EXIT
cd build
ctest --output-on-failure -j "${TUNELOOP_TEST_JOBS:-2}" "$@"
