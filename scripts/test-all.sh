#!/usr/bin/env bash
# Installs what the test suite needs when it is missing (pnpm, redis-server,
# etcd from Debian's etcd-server package, rabbitmq-server), the project's dependencies, then runs
# format/lint, the type checker and every test (unit, conformance, multi-process
# fault tests, chaos). Tests start their own servers on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.9
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]} with apt-get"
  $SUDO apt-get update -qq
  # A package whose service cannot start on this machine (no init system) makes apt-get
  # fail after unpacking it; the binaries are there, and the tests start their own servers.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null ||
    echo "apt-get reported an error; checking that the servers are installed"
  for bin in redis-server etcd /usr/lib/rabbitmq/bin/rabbitmq-server chromium; do
    command -v "$bin" >/dev/null 2>&1 || { echo "missing after apt-get: $bin" >&2; exit 1; }
  done
fi
# Debian starts the packaged services; the tests never use them (they start their own
# brokers and servers on free loopback ports).

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1 || $SUDO npm install -g "pnpm@$PNPM_VERSION" >/dev/null
fi

pnpm install --frozen-lockfile
pnpm lint
pnpm typecheck
# The CLI tests run the built `shardwork` binary.
pnpm build
mkdir -p .tmp
pnpm test --reporter=default --reporter=json --outputFile=.tmp/vitest-results.json
# A plain closing line with the counts.
node -e "const r = require('./.tmp/vitest-results.json'); console.log(r.numPassedTests + ' passed, ' + r.numFailedTests + ' failed' + (r.numPendingTests ? ', ' + r.numPendingTests + ' skipped' : ''))"
