"""The peers of the benchmark, one engine per process (so each one's peak RSS is its own):

- `duckdb`: DuckDB over the Parquet files Cuve wrote (`read_parquet`, `hive_partitioning`);
- `duckdb-native`: DuckDB with the data loaded once into its own storage file, sorted like
  Cuve's layout (dt, user_id, log_time);
- `chdb`: ClickHouse (chDB) over the same Parquet files (`file(...)`, hive partitioning);
- `chdb-mergetree`: ClickHouse with the data loaded once into MergeTree tables ordered by
  (dt, user_id, log_time);
- `ingest`: DuckDB's COPY ... PARTITION_BY of the raw JSON lines (the ingest peer).

Usage:
  peers.py queries ENGINE HOME QUERY_DIR USER RUNS OUT.json [STORE_DIR]
  peers.py ingest RAW_DIR OUT_DIR

Every timed run computes its answer: no engine here has a query-result cache turned on
(DuckDB has none; ClickHouse's query cache is off by default and `use_query_cache` is never
set). What the engines cache between runs (the OS page cache, DuckDB's buffer manager,
ClickHouse's mark and uncompressed caches) is named in RESULTS.md.
"""

import json
import pathlib
import re
import shutil
import sys
import time

# Rewrites of the benchmark's SQL per engine, applied in order (regular expression, replacement).
# RESULTS.md prints this table. DuckDB and DataFusion take every query as written.
REWRITES = {}  # engine -> [(pattern, replacement)]; none needed so far (ClickHouse 26 has LAG).


def rewrite(engine, sql):
    for pat, rep in REWRITES.get(engine, []):
        sql = re.sub(pat, rep, sql)
    return sql


def reset_peak():
    try:
        pathlib.Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss(pid="self"):
    """Peak RSS in bytes of a process (this one by default) since its last reset."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def fmt(v):
    if v is None:
        return "NULL"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def arrow_rows(table):
    """Rows of an Arrow table as text cells joined by '|' (timestamps as text, nulls as NULL)."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    cols = []
    for col in table.columns:
        if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
            col = pc.utf8_rtrim(pc.cast(col, pa.string()), characters="Z")
        cols.append(col.to_pylist())
    return ["|".join(fmt(c[i]) for c in cols) for i in range(table.num_rows)]


def sorts(name, sql):
    return "ORDER BY" not in sql.upper().rsplit(")", 1)[-1] or name.startswith("q9")


def size_of(path):
    p = pathlib.Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


class Duck:
    def __init__(self, engine, wh, store):
        import duckdb  # noqa: PLC0415

        self.load = None
        files = f"read_parquet('{wh}/stream_log/*/*.parquet', hive_partitioning = true, hive_types = {{'dt': VARCHAR}})"
        profiles = f"read_parquet('{wh}/user_profile/*.parquet')"
        if engine == "duckdb":
            self.con = duckdb.connect()
            self.con.execute(f"CREATE VIEW stream_log AS SELECT * FROM {files}")
            self.con.execute(f"CREATE VIEW user_profile AS SELECT * FROM {profiles}")
            return
        db = pathlib.Path(store) / "duckdb-native.duckdb"
        meta = db.with_suffix(".json")
        if not (db.exists() and meta.exists()):
            db.unlink(missing_ok=True)
            con = duckdb.connect(str(db))
            t = time.perf_counter()
            con.execute(f"CREATE TABLE stream_log AS SELECT * FROM {files} ORDER BY dt, user_id, log_time")
            con.execute(f"CREATE TABLE user_profile AS SELECT * FROM {profiles} ORDER BY user_id")
            con.execute("CHECKPOINT")
            secs = time.perf_counter() - t
            con.close()
            meta.write_text(json.dumps({"seconds": secs, "bytes": db.stat().st_size}))
        self.load = json.loads(meta.read_text())
        self.con = duckdb.connect(str(db), read_only=True)

    def run(self, sql):
        return ["|".join(fmt(v) for v in row) for row in self.con.execute(sql).fetchall()]


class Chdb:
    def __init__(self, engine, wh, store):
        from chdb import session  # noqa: PLC0415

        self.load = None
        # dt is the hive partition directory's value, text as in the other engines.
        files = f"file('{wh}/stream_log/*/*.parquet', Parquet)"
        profiles = f"file('{wh}/user_profile/*.parquet', Parquet)"
        settings = "SETTINGS use_hive_partitioning = 1"
        if engine == "chdb":
            path = pathlib.Path(store) / "chdb-views"
            shutil.rmtree(path, ignore_errors=True)
            self.s = session.Session(str(path))
            self.s.query("CREATE DATABASE IF NOT EXISTS b ENGINE = Atomic")
            self.s.query(
                f"CREATE VIEW b.stream_log AS SELECT * EXCEPT (dt), toString(dt) AS dt FROM {files} {settings}"
            )
            self.s.query(f"CREATE VIEW b.user_profile AS SELECT * FROM {profiles}")
            self.s.query("USE b")
            return
        path = pathlib.Path(store) / "chdb-mergetree"
        meta = pathlib.Path(store) / "chdb-mergetree.json"
        if not (path.exists() and meta.exists()):
            shutil.rmtree(path, ignore_errors=True)
            s = session.Session(str(path))
            s.query("CREATE DATABASE IF NOT EXISTS b ENGINE = Atomic")
            t = time.perf_counter()
            s.query(
                "CREATE TABLE b.stream_log ENGINE = MergeTree ORDER BY (dt, user_id, log_time) "
                f"AS SELECT * EXCEPT (dt), toString(dt) AS dt FROM {files} "
                f"{settings}, schema_inference_make_columns_nullable = 0"
            )
            s.query(
                "CREATE TABLE b.user_profile ENGINE = MergeTree ORDER BY user_id "
                f"AS SELECT * FROM {profiles} SETTINGS schema_inference_make_columns_nullable = 0"
            )
            s.query("OPTIMIZE TABLE b.stream_log FINAL")
            secs = time.perf_counter() - t
            s.close()
            meta.write_text(json.dumps({"seconds": secs, "bytes": size_of(path / "store") if (path / "store").exists() else size_of(path)}))
        self.load = json.loads(meta.read_text())
        self.s = session.Session(str(path))
        self.s.query("USE b")

    def run(self, sql):
        return arrow_rows(self.s.query(sql, "ArrowTable"))


def queries(args):
    engine, home, qdir, user, runs, out = args[:6]
    store = args[6] if len(args) > 6 else str(pathlib.Path(out).parent)
    wh = pathlib.Path(home) / "warehouse" / "korea_naver_log"
    db = (Duck if engine.startswith("duckdb") else Chdb)(engine, wh, store)
    results = {"_load": db.load}
    for path in sorted(pathlib.Path(qdir).glob("*.sql")):
        sql = rewrite(engine, path.read_text().replace("{user}", user))
        name = path.stem
        times, peak, rows = [], 0, []
        try:
            db.run(sql)  # warm-up, not timed (as for Cuve and DataFusion)
            for i in range(int(runs)):
                reset_peak()
                t = time.perf_counter()
                r = db.run(sql)
                times.append(time.perf_counter() - t)
                peak = max(peak, peak_rss())
                if i == 0:
                    rows = r
                    if sorts(name, sql):
                        rows.sort()
        except Exception as e:  # noqa: BLE001 - a query an engine cannot run is reported, not fatal
            print(f"{engine} {name}: {e}", file=sys.stderr)
            results[name] = {"error": str(e)[:300]}
            continue
        print(engine, name, f"{sorted(times)[len(times) // 2] * 1000:.1f} ms", file=sys.stderr)
        results[name] = {"times": times, "median": sorted(times)[len(times) // 2], "peak_rss": peak, "rows": rows}
    pathlib.Path(out).write_text(json.dumps(results, indent=1))


def ingest(args):
    import duckdb  # noqa: PLC0415

    raw, out = args
    con = duckdb.connect()
    reset_peak()
    t = time.perf_counter()
    n = con.execute(
        f"""SELECT COUNT(*) FROM read_json('{raw}/*/*.jsonl', format = 'newline_delimited', filename = true,
            columns = {{log_time: 'TIMESTAMP', user_id: 'VARCHAR', session_id: 'VARCHAR', query: 'VARCHAR',
                        section: 'VARCHAR', event: 'VARCHAR', doc_id: 'VARCHAR', rank: 'INTEGER', referrer: 'VARCHAR',
                        user_agent: 'VARCHAR', client_ip: 'VARCHAR'}})"""
    ).fetchone()[0]
    con.execute(
        f"""COPY (SELECT *, split_part(filename, '/', -2) AS sender_ip, strftime(log_time, '%Y-%m-%d') AS dt
            FROM read_json('{raw}/*/*.jsonl', format = 'newline_delimited', filename = true,
            columns = {{log_time: 'TIMESTAMP', user_id: 'VARCHAR', session_id: 'VARCHAR', query: 'VARCHAR',
                        section: 'VARCHAR', event: 'VARCHAR', doc_id: 'VARCHAR', rank: 'INTEGER', referrer: 'VARCHAR',
                        user_agent: 'VARCHAR', client_ip: 'VARCHAR'}}))
            TO '{out}' (FORMAT parquet, PARTITION_BY (dt), OVERWRITE_OR_IGNORE true)"""
    )
    secs = time.perf_counter() - t
    print(json.dumps({"lines": n, "seconds": secs, "lines_per_s": n / secs, "peak_rss": peak_rss()}))


if __name__ == "__main__":
    {"queries": queries, "ingest": ingest}[sys.argv[1]](sys.argv[2:])
