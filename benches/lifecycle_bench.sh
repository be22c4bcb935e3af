#!/usr/bin/env bash
# The data lifecycle benchmark (benches/lifecycle_bench.py): files and query time before and
# after COMPACT of a day written in many small batches, the cost of sensitive expiry, and a
# DELETE of one user over a month, with DuckDB on the same data in the same run. Builds the
# release binaries as benches/run.sh does (CUVE_BENCH_PROFILE=debug uses the debug build).
# Options: --batches N (default 1000) --rows-per-batch N (100) --month-rows N (20000 a day).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/cuve-target}"
if [ "${CUVE_BENCH_PROFILE:-release}" = debug ]; then
  cargo build -p cuve-cli
  bin="$CARGO_TARGET_DIR/debug"
else
  export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-cpu=native"
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/native"
  cargo build --release -p cuve-cli
  bin="$CARGO_TARGET_DIR/release"
fi
if ! .venv/bin/python -c "import duckdb" 2>/dev/null; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet duckdb
fi
exec .venv/bin/python benches/lifecycle_bench.py "$bin/cuve" benches/data/lifecycle "$@"
