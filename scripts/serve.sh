#!/bin/sh
# serve.sh [weft serve options]: installs what the build needs, builds weft (release) and runs
# `weft serve` with all services on their defaults (or the options given).
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh build
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build-release weft >/dev/null
exec ./build-release/weft serve "$@"
