#!/usr/bin/env bash
# Benchmarks: ConnectorHost's cost per task against the spawn lower bound (xargs -P2) and GNU
# parallel, fan-out, a flooding agent, memory. Prints a table and writes bench/results.json.
#   bench/run.sh           the full run (release build, 5 repetitions each, alternated, median)
#   bench/run.sh --quick   a few tasks on the debug build, to keep the script working (CI); no targets judged
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

if ! command -v parallel >/dev/null; then
    echo "installing GNU parallel (Debian package 'parallel')" >&2
    if [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq parallel >/dev/null) || echo "could not install parallel; its row is skipped" >&2
    else
        echo "not root: install the 'parallel' package to get its row" >&2
    fi
fi

if [ "$quick" = 1 ]; then
    swift build --product connector-host >&2
    swift build --product connector-host-bench >&2
    bin=$(swift build --show-bin-path)
    exec python3 bench/bench.py --bin "$bin" --quick --out .build/bench-quick.json
fi
# The form README recommends for deployment: Swift's runtime and Foundation linked in.
swift build -c release --static-swift-stdlib --product connector-host >&2
swift build -c release --static-swift-stdlib --product connector-host-bench >&2
exec python3 bench/bench.py --bin "$(swift build -c release --static-swift-stdlib --show-bin-path)" --build "release, --static-swift-stdlib" --out bench/results.json
