#!/usr/bin/env bash
# Flight SQL round-trip latency through `cuve serve` with the ADBC driver: builds the release
# binary (the same build as benches/run.sh), makes sure the driver is in .venv, runs
# benches/flight_latency.py, which writes benches/LATENCY.md.  Options: --n RUNS.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/cuve-target}"
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-cpu=native"
export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/native"
cargo build --release -p cuve-cli
if ! .venv/bin/python -c "import adbc_driver_flightsql, pyarrow" 2>/dev/null; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet adbc-driver-flightsql pyarrow
fi
exec .venv/bin/python benches/flight_latency.py --cuve "$CARGO_TARGET_DIR/release/cuve" "$@"
