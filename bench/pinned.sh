#!/usr/bin/env bash
# Run the benchmarks on a frozen export of one commit, so that edits landing in
# the work tree during a long run cannot mix code versions between the replica
# processes it spawns. Reuses the installed node_modules of this checkout.
#
#   bash bench/pinned.sh [COMMIT] [-- bench flags…]
#   bash bench/pinned.sh HEAD -- --only handoff,failover --backend redis
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
commit=HEAD
if [[ $# -gt 0 && $1 != "--" ]]; then commit=$1; shift; fi
[[ $# -gt 0 && $1 == "--" ]] && shift
sha=$(git -C "$root" rev-parse "$commit")
pin=$(mktemp -d "${TMPDIR:-/tmp}/shardwork-bench-${sha:0:7}-XXXX")
trap 'rm -rf "$pin"' EXIT
git -C "$root" archive "$sha" | tar -x -C "$pin"
# Third-party packages are shared; the workspace packages resolve to the export.
mkdir "$pin/node_modules"
for entry in "$root"/node_modules/* "$root"/node_modules/.[!.]*; do
  name=$(basename "$entry")
  [[ $name == "@shardwork" ]] && continue
  ln -s "$entry" "$pin/node_modules/$name"
done
cp -a "$root/node_modules/@shardwork" "$pin/node_modules/@shardwork"
for pkg in "$root"/packages/*/; do
  name=$(basename "$pkg")
  [[ -d $pkg/node_modules && -d $pin/packages/$name ]] && cp -a "$pkg/node_modules" "$pin/packages/$name/node_modules"
done
echo "[bench] pinned ${sha:0:12} at $pin" >&2
cd "$pin"
SHARDWORK_BENCH_COMMIT=$sha node --conditions=@shardwork/source --import tsx bench/run.ts "$@"
