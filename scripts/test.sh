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
# The real-time playback tests first, one at a time, on an otherwise quiet machine: they
# compare listening time with the wall clock within 5 %, which holds only while the JACK
# server keeps real time (see scripts/jack.sh; a failure names the xruns it saw).
# Arguments (e.g. -R PATTERN) run one ctest as given.
status=0
if [[ $# -gt 0 ]]; then
  ctest --output-on-failure -j "${TUNELOOP_TEST_JOBS:-2}" "$@" || status=$?
else
  realtime='^(RealtimePlayer|PlaybackTest)\.'
  ctest --output-on-failure -R "$realtime" || status=$?
  ctest --output-on-failure -j "${TUNELOOP_TEST_JOBS:-2}" -E "$realtime" || status=$?
fi
exit "$status"
