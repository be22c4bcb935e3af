#!/usr/bin/env bash
# The object-storage benchmark: the queries on an S3 warehouse (moto's server on loopback)
# against the same data on local disk, through `cuve serve` (benches/s3_bench.py). Builds the
# release binaries as benches/run.sh does (CUVE_BENCH_PROFILE=debug uses the debug build).
# Options: --scale S (default 0.01) --runs N.
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
if ! .venv/bin/python -c "import adbc_driver_flightsql, pyarrow, boto3, moto" 2>/dev/null; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet adbc-driver-flightsql pyarrow "moto[s3]==5.2.5" flask flask-cors boto3
fi
exec .venv/bin/python benches/s3_bench.py "$bin/cuve" "$bin/cuve-bench" benches/data "$@"
