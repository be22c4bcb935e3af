#!/usr/bin/env bash
# One command for the whole benchmark: builds release binaries, makes sure DuckDB is installed
# in .venv, then runs benches/run.py (generate or reuse data, ingest, q1..q9 on Cuve, plain
# DataFusion and DuckDB, compare, write benches/RESULTS.md).  Options: --scale S --runs N.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/cuve-target}"
cargo build --release -p cuve-cli -p cuve-bench
if ! .venv/bin/python -c "import duckdb" 2>/dev/null; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet duckdb
fi
exec .venv/bin/python benches/run.py "$@"
