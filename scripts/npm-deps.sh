#!/bin/sh
# npm-deps.sh: installs the npm packages the end-to-end tests use (tests/e2e/package-lock.json:
# ws, a WebSocket client for the chat tests, and playwright-core) into tests/e2e/node_modules,
# with `npm ci`, only when node_modules is missing or older than package-lock.json. Prints
# nothing when there is nothing to do; exits non-zero with a message when node or npm is missing
# (on Debian: apt-get install nodejs npm) or the install fails.
set -eu
cd "$(dirname "$0")/../tests/e2e"

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "npm-deps.sh: '$tool' not found; install Node.js and npm (Debian: apt-get install nodejs npm)" >&2
        exit 1
    fi
done

stamp=node_modules/.package-lock.json   # written by npm ci / npm install
if [ -d node_modules ] && [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ] \
    && [ ! package.json -nt "$stamp" ]; then
    exit 0
fi

# Node trusts only its own CA list; behind a proxy whose CA the machine's admin installed in the
# system store, npm needs the system store too.
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
    export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
    cat "$log" >&2
    echo "npm-deps.sh: 'npm ci' failed in tests/e2e" >&2
    exit 1
fi
# npm ci keeps the lock's mtime; mark the install as newer than the lock.
touch "$stamp"
