# Sourced by the test and run scripts: a JACK dummy server so PortAudio has a device
# that consumes audio at real-time pace on machines without a sound card.
#
# The period is 1024 frames (64 ms at 16 kHz), not 256: the dummy driver sleeps to a
# schedule, and when a cycle runs late (its thread held up; plain CPU contention did not do
# it here, stopping jackd with SIGSTOP does) it counts an xrun and restarts the schedule from
# then, so it falls behind the wall clock by however late it was. With 256 frames (16 ms) a
# 30-50 ms stall every 200 ms puts it 7-14 % behind, past the 5 % the wall-clock playback
# tests allow; with 1024 frames the same stalls cause no xrun.
TUNELOOP_JACK_RATE=${TUNELOOP_JACK_RATE:-16000}
TUNELOOP_JACK_PERIOD=${TUNELOOP_JACK_PERIOD:-1024}
_tuneloop_jack_pid=""

jack_ensure_running() {
  # jack_wait -c exits 0 either way; only its output says whether a server runs.
  if jack_wait -c 2>/dev/null | grep -qx running; then return 0; fi
  jackd --no-realtime -d dummy -r "$TUNELOOP_JACK_RATE" -p "$TUNELOOP_JACK_PERIOD" >/tmp/tuneloop-jackd.log 2>&1 &
  _tuneloop_jack_pid=$!
  if ! jack_wait -w -t 10 >/dev/null 2>&1; then
    echo "jack: the dummy server did not start; see /tmp/tuneloop-jackd.log" >&2
    return 1
  fi
}

jack_stop_if_ours() {
  if [[ -n $_tuneloop_jack_pid ]]; then
    kill "$_tuneloop_jack_pid" 2>/dev/null || true
    wait "$_tuneloop_jack_pid" 2>/dev/null || true
  fi
}
