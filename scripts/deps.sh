#!/bin/sh
# deps.sh [build|test|bench]...: installs the Debian packages weft needs for that purpose, only
# those missing. Run as root on Debian 12 (uses apt-get); prints nothing when all are there.
set -eu

build_pkgs="gcc libc6-dev cmake ninja-build pkg-config libssl-dev libjansson-dev libconfig-dev libhiredis-dev liburing-dev"
test_pkgs="libcmocka-dev clang libclang-rt-14-dev python3 python3-pytest curl wrk procps clang-format redis-server nodejs npm chromium nginx-light"
bench_pkgs="wrk nginx-light iperf3 procps valgrind python3 nodejs npm"

want=""
for purpose in "${@:-build}"; do
    case "$purpose" in
    build) want="$want $build_pkgs" ;;
    test) want="$want $build_pkgs $test_pkgs" ;;
    bench) want="$want $build_pkgs $bench_pkgs" ;;
    *) echo "deps.sh: unknown purpose '$purpose' (build, test or bench)" >&2; exit 2 ;;
    esac
done

missing=""
for p in $want; do
    case " $missing " in *" $p "*) continue ;; esac
    # Node.js from elsewhere (NodeSource, nvm) is as good as Debian's, and Debian's npm package
    # conflicts with NodeSource's nodejs: a working command counts as installed.
    case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages:$missing; run as root or install them" >&2
    exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# nginx-light and redis-server start system services when installed; policy-rc.d keeps them
# from starting (the tests and benchmarks start their own, on ephemeral ports).
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
