#!/usr/bin/env bash
# The HTTP intake benchmark: lines/s and acknowledgement latency of `cuve serve --http` with 1
# and 8 concurrent senders, next to `cuve ingest` and DuckDB's COPY of the same raw files
# (benches/http_bench.py). Builds the release binaries as benches/run.sh does
# (CUVE_BENCH_PROFILE=debug uses the debug build). Options: --scale S (default 0.01).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/cuve-target}"
if [ "${CUVE_BENCH_PROFILE:-release}" = debug ]; then
  cargo build -p cuve-cli -p cuve-bench
  bin="$CARGO_TARGET_DIR/debug"
else
  export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-cpu=native"
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/native"
  cargo build --release -p cuve-cli -p cuve-bench
  bin="$CARGO_TARGET_DIR/release"
fi
if ! .venv/bin/python -c "import duckdb" 2>/dev/null; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet duckdb
fi
exec .venv/bin/python benches/http_bench.py "$bin/cuve" "$bin/cuve-bench" benches/data/http "$@"
