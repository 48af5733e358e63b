#!/bin/sh
# test.sh: installs what the tests need, then builds and runs the whole suite:
#   1. release build with -Werror: unit tests (cmocka, CTest) and end-to-end tests (pytest),
#      the end-to-end tests twice: on the default epoll backend and on --io uring
#   2. the same under AddressSanitizer and UndefinedBehaviorSanitizer
#   3. every libFuzzer target, briefly, on its committed corpus (clang)
#   4. formatting (clang-format) of the C sources
# Exits non-zero at the first failing step.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh test
./scripts/npm-deps.sh
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

step() { printf '\n==== %s\n' "$*"; }

step "format check"
find src tests -name '*.[ch]' | xargs clang-format --dry-run -Werror

step "release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=ON >/dev/null
ninja -C build
step "unit tests"
(cd build && ctest --output-on-failure)
step "end-to-end tests"
WEFT_BIN="$PWD/build/weft" /usr/bin/python3 -m pytest -q tests/e2e
step "end-to-end tests with --io uring"
WEFT_BIN="$PWD/build/weft" WEFT_TEST_IO=uring /usr/bin/python3 -m pytest -q tests/e2e

step "sanitizer build (ASan + UBSan)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DWEFT_WERROR=ON -DWEFT_SANITIZE=ON >/dev/null
ninja -C build-asan
step "unit tests under sanitizers"
(cd build-asan && ctest --output-on-failure)
step "end-to-end tests under sanitizers"
WEFT_BIN="$PWD/build-asan/weft" WEFT_SANITIZED=1 /usr/bin/python3 -m pytest -q tests/e2e

step "fuzz targets (${FUZZ_SECONDS}s each)"
CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DWEFT_FUZZ=ON >/dev/null
ninja -C build-fuzz $(cd tests/fuzz && ls fuzz_*.c | sed "s/\.c$//")
passed=0
for f in build-fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f" | sed 's/^fuzz_//')
    work=$(mktemp -d)
    mkdir "$work/corpus"
    [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/corpus/"
    if ! (cd "$work" && "$OLDPWD/$f" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 corpus >fuzz.log 2>&1); then
        tail -n 40 "$work/fuzz.log"
        echo "fuzz target $f failed; the input is in $work"
        exit 1
    fi
    echo "$f: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/fuzz.log" | grep -o '[0-9]*$') runs in ${FUZZ_SECONDS}s, no failure"
    passed=$((passed + 1))
    rm -rf "$work"
done
echo "fuzz: $passed passed, 0 failed"
