#!/usr/bin/env bash
# Builds one libFuzzer target (clang 14, AddressSanitizer + UndefinedBehaviorSanitizer) into
# build-fuzz/ and runs it for SECONDS on its seed corpus (tests/fuzz/corpus/TARGET, in git);
# new inputs it finds go to build-fuzz/corpus/TARGET, crashes to build-fuzz/crashes/.
#   bash scripts/fuzz.sh dispatcher 600        # one target, ten minutes
#   bash scripts/fuzz.sh all 8                 # every target, 8 s each (the test suite's smoke)
#   bash scripts/fuzz.sh dispatcher 0 FILE     # replay one input
# Targets: dispatcher safetensors config http audio mpd. Extra libFuzzer flags: FUZZ_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET|all SECONDS [INPUT]}
seconds=${2:-60}
cxx=${FUZZ_CXX:-clang++-14}
out=${FUZZ_BUILD:-build-fuzz}
mkdir -p "$out/crashes"
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -DASIO_DISABLE_STD_ALIGNED_ALLOC -I. -w)

sources_of() {
  case "$1" in
    dispatcher) echo "rpc/dispatcher.cpp rpc/commands.cpp rpc/errors.cpp" ;;
    safetensors) echo "adapters/safetensors.cpp" ;;
    config) echo "config/config.cpp" ;;
    http) echo "daemon/http_server.cpp rpc/dispatcher.cpp rpc/commands.cpp rpc/errors.cpp" ;;
    audio) echo "audio/audio_file.cpp" ;;
    mpd) echo "$(ls mpd/*.cpp | grep -v mpd/server.cpp) rpc/dispatcher.cpp rpc/commands.cpp rpc/errors.cpp rpc/session.cpp" ;;
    *) echo "fuzz.sh: unknown target '$1' (dispatcher safetensors config http audio mpd)" >&2; exit 2 ;;
  esac
}
libs_of() {
  case "$1" in
    dispatcher|mpd) echo "-lspdlog -lfmt -pthread" ;;
    config) echo "-lyaml-cpp" ;;
    http) echo "$(pkg-config --libs cpp-httplib) -lspdlog -lfmt -pthread" ;;
    audio) echo "$(pkg-config --libs sndfile soxr)" ;;
    *) echo "" ;;
  esac
}
# Longest input each target takes (the dispatcher's lines, a model file's header, …).
max_len_of() {
  case "$1" in
    audio) echo 65536 ;;
    mpd) echo 2048 ;;
    safetensors) echo 16384 ;;
    *) echo 8192 ;;
  esac
}

build() {
  local t=$1 bin="$out/fuzz_$1"
  local srcs; srcs=$(sources_of "$t")
  local newest; newest=$(ls -t tests/fuzz/fuzz_"$t".cpp tests/mpd/fake_daemon.hpp $srcs | head -1)
  if [[ ! -x "$bin" || "$newest" -nt "$bin" ]]; then
    echo "fuzz: building $t" >&2
    # shellcheck disable=SC2046
    "$cxx" "${flags[@]}" tests/fuzz/fuzz_"$t".cpp $srcs $(libs_of "$t") -o "$bin"
  fi
}

run() {
  local t=$1
  build "$t"
  if [[ $# -ge 2 ]]; then "$out/fuzz_$t" "$2"; return; fi
  mkdir -p "$out/corpus/$t" "tests/fuzz/corpus/$t"
  # Targets that go through files (audio) write them in memory when /dev/shm is there.
  local tmp=${TMPDIR:-/tmp}
  [[ -d /dev/shm && -w /dev/shm ]] && tmp=/dev/shm
  # shellcheck disable=SC2086
  TMPDIR=$tmp ASAN_OPTIONS=detect_leaks=1 "$out/fuzz_$t" -max_total_time="$seconds" -max_len="$(max_len_of "$t")" \
    -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/crashes/$t-" -print_final_stats=1 \
    ${FUZZ_FLAGS:-} "$out/corpus/$t" "tests/fuzz/corpus/$t" 2>&1 |
    grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==ERROR|SUMMARY|INFO: Running)" || true
  local status=${PIPESTATUS[0]}
  if [[ $status -ne 0 ]]; then
    echo "fuzz: $t FAILED (exit $status); inputs in $out/crashes/" >&2
    return 1
  fi
}

if [[ "$target" == all ]]; then
  status=0
  for t in dispatcher safetensors config http audio mpd; do run "$t" || status=1; done
  exit $status
fi
if [[ $# -ge 3 ]]; then run "$target" "$3"; else run "$target"; fi
