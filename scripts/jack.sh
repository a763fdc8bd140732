# Sourced by the test and run scripts: a JACK dummy server so PortAudio has a device
# that consumes audio at real-time pace on machines without a sound card.
TUNELOOP_JACK_RATE=${TUNELOOP_JACK_RATE:-16000}
_tuneloop_jack_pid=""

jack_ensure_running() {
  # jack_wait -c exits 0 either way; only its output says whether a server runs.
  if jack_wait -c 2>/dev/null | grep -qx running; then return 0; fi
  jackd --no-realtime -d dummy -r "$TUNELOOP_JACK_RATE" -p 256 >/tmp/tuneloop-jackd.log 2>&1 &
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
