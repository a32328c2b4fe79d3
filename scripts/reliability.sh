#!/usr/bin/env bash
# The reliability and security suite: crash the host, race it, feed it bad input, look for leaked
# secrets (scripts/reliability.py has the cases). Prints a table; exits 1 when any check failed.
#   scripts/reliability.sh            the full form (release build, 20 crashes, 3 rounds of signals)
#   scripts/reliability.sh --quick    the CI form (debug build, 5 crashes, 1 round), about a minute
# Further arguments go to reliability.py: --seed N, --only crash,races,config,secrets,payloads,faults,signals, --keep.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--quick" ]; then
    shift
    swift build --product connector-host >&2
    exec python3 scripts/reliability.py --bin "$(swift build --show-bin-path)" --quick --json .build/reliability-quick.json "$@"
fi
swift build -c release --product connector-host >&2
exec python3 scripts/reliability.py --bin "$(swift build -c release --show-bin-path)" --json scripts/reliability-results.json "$@"
