#!/usr/bin/env bash
# One command for the whole benchmark: builds release binaries for this CPU, makes sure DuckDB,
# chDB and the ADBC driver are installed in .venv, then runs benches/run.py (generate or reuse
# data, ingest, every query on Cuve in process and through `cuve serve`, plain DataFusion,
# DuckDB, chDB and their native stores, compare, write benches/RESULTS.md).
# Options: --scale S --runs N.
# `benches/run.sh --cluster [--scale S] [--runs N]` instead runs benches/cluster_bench.py: the
# queries through `cuve serve` on a scheduler and two executors on this machine next to single
# node, written to benches/CLUSTER.md (default: the month, as the main benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/cuve-target}"
# Built for this machine's CPU (AES hashing in the Parquet dictionary encoder, AVX-512 in the
# Arrow kernels; ~10% less ingest CPU measured), like DataFusion's own benchmarks; Cuve and plain
# DataFusion share the binary, DuckDB picks its CPU features at run time. A separate target
# directory, so these flags never force a rebuild of the ordinary release build.
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-cpu=native"
export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/native"
cargo build --release -p cuve-cli -p cuve-bench
if ! .venv/bin/python -c "import duckdb, chdb, adbc_driver_flightsql, pyarrow" 2>/dev/null; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet duckdb chdb adbc-driver-flightsql pyarrow
fi
if [ "${1:-}" = "--cluster" ]; then
  shift
  exec .venv/bin/python benches/cluster_bench.py "$@"
fi
exec .venv/bin/python benches/run.py "$@"
