#!/usr/bin/env bash
# Installs every system package tuneloop needs to build, run and test, from Debian's
# archive. Non-interactive and idempotent: when everything is present it prints nothing
# and returns in well under a second.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libtorch-dev libopenblas0-openmp
  libsqlite3-dev sqlite3
  libasio-dev
  portaudio19-dev libasound2-dev jackd2
  libsndfile1-dev libsoxr-dev
  libyaml-cpp-dev
  libgtest-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libcpp-httplib-dev
  libfluidsynth-dev fluid-soundfont-gm musescore-general-soundfont-small timgm6mb-soundfont
  gnuplot-nox
  clang-14 libclang-rt-14-dev
  python3
  mpc python3-mpd
  chromium nodejs
)

missing=()
# Debian's nodejs 18 ships npm separately; NodeSource's nodejs includes it.
command -v npm >/dev/null 2>&1 || packages+=(npm)
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
((${#missing[@]} == 0)) && exit 0

echo "setup: installing ${#missing[@]} package(s): ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done" >&2
