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
# The real-time playback tests first, one at a time, while the JACK dummy server is fresh:
# they compare listening time with the wall clock within 5 %, and at the end of a full suite
# (session 18) they read 5-13 % over on this virtual machine, though they pass run alone.
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
