"""Data lifecycle costs, through the `cuve` binary users run, with DuckDB on the same files or
rows in the same run:

1. one day written as --batches INSERTs of --rows-per-batch rows into a 16-bucket table: files,
   and the median time of three queries (a full aggregate, a one-user lookup, a GROUP BY) before
   and after `ALTER TABLE ... COMPACT`, and the compaction's seconds; DuckDB's read_parquet of the
   same directory before and after;
2. sensitive expiry of that day (`cuve table maintain` with CUVE_NOW a month later): seconds;
3. a month (30 days x --month-rows rows): `DELETE FROM ... WHERE user_id = ...` seconds and files
   rewritten, next to DuckDB's DELETE on a native table with the same rows.

Writes the lifecycle section of benches/RESULTS.md (between its markers) and
lifecycle-results.json.

Usage: lifecycle_bench.py CUVE DATA_DIR [--batches 1000] [--rows-per-batch 100] [--month-rows 20000]
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

import duckdb

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benches"))
from run import write_section  # noqa: E402
RUNS = 5


def cuve_sql(cuve, home, sql, env=None, fmt="csv"):
    e = dict(os.environ, **(env or {}))
    out = subprocess.run([cuve, "--home", home, "sql", "--format", fmt, "-e", sql],
                         check=True, capture_output=True, text=True, env=e)
    return out.stdout


def timed(f):
    t = time.perf_counter()
    r = f()
    return time.perf_counter() - t, r


def median_secs(f, runs=RUNS):
    return statistics.median(timed(f)[0] for _ in range(runs))


def data_files(d):
    return sorted(p for p in pathlib.Path(d).rglob("*.parquet") if ".cuve-tmp-" not in p.name)


QUERIES = {
    "aggregate": "SELECT COUNT(*), SUM(n) FROM {t}",
    "lookup": "SELECT COUNT(*) FROM {t} WHERE user_id = 'u77'",
    "group by": "SELECT user_id, COUNT(*) AS c FROM {t} GROUP BY user_id ORDER BY c DESC, user_id LIMIT 10",
}


def insert(table, day, first, rows, users):
    return (f"INSERT INTO {table} SELECT 'u' || CAST(v % {users} AS VARCHAR), "
            f"'10.0.' || CAST(v % 250 AS VARCHAR) || '.1', 'raw line ' || CAST(v AS VARCHAR), v, '{day}' "
            f"FROM generate_series({first}, {first + rows - 1}) AS s(v)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cuve")
    ap.add_argument("data")
    ap.add_argument("--batches", type=int, default=1000)
    ap.add_argument("--rows-per-batch", type=int, default=100)
    ap.add_argument("--month-rows", type=int, default=20000)
    a = ap.parse_args()
    data = pathlib.Path(a.data).resolve()
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    home = data / "home"
    cuve = a.cuve
    ddl = ("CREATE TABLE bench.{name} (user_id STRING, ip STRING, raw STRING, n BIGINT) "
           "PARTITIONED BY (dt STRING) CLUSTERED BY (user_id) INTO 16 BUCKETS STORED AS PARQUET "
           "TBLPROPERTIES ('sensitive_columns'='ip')")
    cuve_sql(cuve, home, "CREATE DATABASE bench; " + ddl.format(name="day") + "; " + ddl.format(name="month"))
    results = {"batches": a.batches, "rows_per_batch": a.rows_per_batch, "month_rows": a.month_rows}

    # 1. Many small batches into one day.
    t0 = time.perf_counter()
    stmts = [insert("bench.day", "2026-11-01", i * a.rows_per_batch, a.rows_per_batch, 1000)
             for i in range(a.batches)]
    for i in range(0, len(stmts), 200):
        cuve_sql(cuve, home, ";\n".join(stmts[i:i + 200]))
    results["write_secs"] = time.perf_counter() - t0
    day_dir = home / "warehouse" / "bench" / "day"
    glob = f"{day_dir}/**/*.parquet"
    duck = duckdb.connect()

    def measure():
        out = {"files": len(data_files(day_dir)),
               "bytes": sum(p.stat().st_size for p in data_files(day_dir))}
        for name, q in QUERIES.items():
            out["cuve " + name] = median_secs(lambda: cuve_sql(cuve, home, q.format(t="bench.day")))
            dq = q.format(t=f"read_parquet('{glob}', hive_partitioning = true)")
            out["duckdb " + name] = median_secs(lambda: duck.execute(dq).fetchall())
        return out

    results["before"] = measure()
    results["cuve startup"] = median_secs(lambda: cuve_sql(cuve, home, "SELECT 1"))
    results["compact_secs"], _ = timed(lambda: cuve_sql(cuve, home, "ALTER TABLE bench.day COMPACT"))
    results["after"] = measure()
    expected = cuve_sql(cuve, home, QUERIES["aggregate"].format(t="bench.day"))
    assert expected.splitlines()[1].startswith(f"{a.batches * a.rows_per_batch},"), expected

    # 2. Sensitive expiry of that day, a month later.
    cuve_sql(cuve, home, "ALTER TABLE bench.day SET TBLPROPERTIES ('sensitive.retention.days'='7')")
    env = dict(os.environ, CUVE_NOW="2026-12-01")
    results["expiry_secs"], _ = timed(lambda: subprocess.run(
        [cuve, "--home", home, "table", "maintain", "--table", "bench.day"],
        check=True, capture_output=True, env=env))

    # 3. DELETE of one user over a month.
    for d in range(1, 31):
        cuve_sql(cuve, home, insert("bench.month", f"2026-11-{d:02}", 0, a.month_rows, 1000))
    month_dir = home / "warehouse" / "bench" / "month"
    before = {str(p) for p in data_files(month_dir)}
    results["delete_secs"], out = timed(
        lambda: cuve_sql(cuve, home, "DELETE FROM bench.month WHERE user_id = 'u77'"))
    after = {str(p) for p in data_files(month_dir)}
    results["delete_rows"] = int(out.splitlines()[1])
    results["delete_files_total"] = len(before)
    results["delete_files_rewritten"] = len(before - after)
    # The same erasure again (the user is gone): footers and bloom filters only, no file read.
    results["delete_again_secs"], out = timed(
        lambda: cuve_sql(cuve, home, "DELETE FROM bench.month WHERE user_id = 'u77'"))
    assert int(out.splitlines()[1]) == 0, out
    assert {str(p) for p in data_files(month_dir)} == after
    duck.execute("CREATE TABLE month AS SELECT 'u' || CAST(v % 1000 AS VARCHAR) AS user_id, "
                 "'10.0.' || CAST(v % 250 AS VARCHAR) || '.1' AS ip, 'raw line ' || CAST(v AS VARCHAR) AS raw, "
                 "v AS n, DATE '2026-11-01' + CAST(d AS INTEGER) AS dt "
                 f"FROM range(0, 30) t(d), range(0, {a.month_rows}) s(v)")
    results["duckdb_delete_secs"], _ = timed(
        lambda: duck.execute("DELETE FROM month WHERE user_id = 'u77'").fetchall())

    (data / "lifecycle-results.json").write_text(json.dumps(results, indent=2))
    profile = "debug" if "/debug/" in cuve else "release"
    b, f = results["before"], results["after"]
    qrows = "\n".join(
        f"| {n} | {b['cuve ' + n]:.3f} | {f['cuve ' + n]:.3f} | {b['cuve ' + n] / f['cuve ' + n]:.1f}x "
        f"| {b['duckdb ' + n]:.3f} | {f['duckdb ' + n]:.3f} | {b['duckdb ' + n] / f['duckdb ' + n]:.1f}x |"
        for n in QUERIES)
    rows = a.batches * a.rows_per_batch
    write_section("lifecycle", f"""
## Data lifecycle (`benches/lifecycle_bench.sh`, {profile} build)

One day written as {a.batches:,} INSERTs of {a.rows_per_batch} rows ({rows:,} rows) into a
16-bucket table: {b['files']:,} files ({b['bytes']:,} bytes) before `ALTER TABLE ... COMPACT`,
{f['files']:,} ({f['bytes']:,} bytes) after; the compaction took {results['compact_secs']:.1f} s.
Query seconds are medians of {RUNS} runs of `cuve sql` (a new process each time: its start-up,
`SELECT 1`, is {results['cuve startup']:.3f} s) and of DuckDB's `read_parquet` over the same
directory in process.

| query | Cuve before, s | Cuve after, s | Cuve speed-up | DuckDB before, s | DuckDB after, s | DuckDB speed-up |
|---|---:|---:|---:|---:|---:|---:|
{qrows}

Sensitive expiry of that day (every file rewritten with `ip` and `raw` NULL, `cuve table
maintain` with `CUVE_NOW` a month later): {results['expiry_secs']:.1f} s.

`DELETE FROM bench.month WHERE user_id = 'u77'` on a month (30 days x {a.month_rows:,} rows, 16
buckets): {results['delete_rows']:,} rows deleted in {results['delete_secs']:.2f} s, rewriting
{results['delete_files_rewritten']} of {results['delete_files_total']} files (bucket pruning reads
only the user's bucket of each day). The same DELETE again, once the user is gone, deletes 0 rows
in {results['delete_again_secs']:.2f} s: each of the 30 files' footer and `user_id` bloom filter
is read, no row group. DuckDB's DELETE of the same rows from a native table in
memory: {results['duckdb_delete_secs']:.3f} s. A debug build's absolute times say little (Cuve's
are unoptimised, DuckDB's are not); the before/after ratios and the files touched are the point.
The release run is `benches/lifecycle_bench.sh`.
""")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
