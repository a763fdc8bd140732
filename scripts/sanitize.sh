#!/usr/bin/env bash
# Builds the whole suite with a sanitiser into its own folder and runs it there. Not part
# of .ci/run: a build takes about as long as the normal one, the run two to ten times longer.
#
#   scripts/sanitize.sh address [ctest args]   # AddressSanitizer + UndefinedBehaviorSanitizer
#   scripts/sanitize.sh thread  [ctest args]   # ThreadSanitizer
#
# LibTorch, OpenMP, PortAudio and JACK come from Debian uninstrumented; ThreadSanitizer
# reports inside them are suppressed in tests/sanitize/tsan.supp (each entry says why).
# The real-time playback tests are left out: instrumented code cannot keep the wall clock
# they compare listening time with.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-}
shift || true
case "$kind" in
  address) flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" ;;
  thread) flags="-fsanitize=thread -fno-omit-frame-pointer" ;;
  *) echo "usage: scripts/sanitize.sh address|thread [ctest arguments]" >&2; exit 2 ;;
esac
bash scripts/setup.sh
build="build-$kind"
# The benchmarks are left out: nothing in the suite runs them.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUNELOOP_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
  -DCMAKE_SHARED_LINKER_FLAGS="$flags" >/dev/null
cmake --build "$build" -j "${TUNELOOP_JOBS:-$(nproc)}"
source scripts/jack.sh
jack_ensure_running
trap jack_stop_if_ours EXIT
# Tests that measure memory (the exhaustion test's RSS bound) know not to.
export TUNELOOP_SANITIZER=$kind
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="suppressions=$PWD/tests/sanitize/tsan.supp:halt_on_error=1:second_deadlock_stack=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitize/lsan.supp"
cd "$build"
# Instrumented code is slower: generous per-test limits, the fuzz smoke left to scripts/fuzz.sh
# (it builds with clang's libFuzzer, another sanitiser runtime).
ctest --output-on-failure -j "${TUNELOOP_TEST_JOBS:-2}" --timeout 3600 \
  -E '^(RealtimePlayer|PlaybackTest)\.|^fuzz_smoke$' "$@"
