"""DuckDB side of the benchmark: the same queries on the same Parquet files
(hive_partitioning), and DuckDB's COPY ... PARTITION_BY of the same raw JSON lines."""

import json
import pathlib
import sys
import time

import duckdb


def reset_peak():
    try:
        pathlib.Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss():
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def fmt(v):
    if v is None:
        return "NULL"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def queries(args):
    home, qdir, user, runs, out = args
    wh = pathlib.Path(home) / "warehouse" / "korea_naver_log"
    con = duckdb.connect()
    con.execute(
        f"CREATE VIEW stream_log AS SELECT * FROM read_parquet('{wh}/stream_log/*/*.parquet', hive_partitioning = true, hive_types = {{'dt': VARCHAR}})"
    )
    con.execute(f"CREATE VIEW user_profile AS SELECT * FROM read_parquet('{wh}/user_profile/*.parquet')")
    results = {}
    for path in sorted(pathlib.Path(qdir).glob("*.sql")):
        sql = path.read_text().replace("{user}", user)
        name = path.stem
        times, peak, rows = [], 0, []
        con.execute(sql).fetchall()  # warm-up, not timed (as for Cuve and DataFusion)
        for i in range(int(runs)):
            reset_peak()
            t = time.perf_counter()
            r = con.execute(sql).fetchall()
            times.append(time.perf_counter() - t)
            peak = max(peak, peak_rss())
            if i == 0:
                rows = ["|".join(fmt(v) for v in row) for row in r]
                if "ORDER BY" not in sql.upper() or name.startswith("q9"):
                    rows.sort()
        print(name, file=sys.stderr)
        results[name] = {"times": times, "median": sorted(times)[len(times) // 2], "peak_rss": peak, "rows": rows}
    pathlib.Path(out).write_text(json.dumps(results, indent=1))


def ingest(args):
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
