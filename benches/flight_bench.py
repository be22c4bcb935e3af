"""The benchmark's queries through `cuve serve` with the ADBC Flight SQL driver, the way a
notebook runs them: one server on the benchmark's warehouse (loopback, port 0), one connection,
an untimed warm-up, then RUNS timed executions of each query (execute + fetch of the whole
Arrow result), and `SELECT 1` latency (median and 99th percentile of 300).

Usage: flight_bench.py CUVE_BINARY HOME QUERY_DIR USER RUNS OUT.json
"""

import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

import adbc_driver_flightsql.dbapi as flight

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from peers import arrow_rows, peak_rss, sorts  # noqa: E402


def main():
    cuve, home, qdir, user, runs, out = sys.argv[1:7]
    runs = int(runs)
    secret = re.search(r"^ticket=(\S+)", pathlib.Path(home, "credentials").read_text(), re.M).group(1)
    server = subprocess.Popen(
        [cuve, "--home", home, "serve", "--addr", "127.0.0.1:0"],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    results = {}
    try:
        uri = re.search(r"(grpc://\S+)", server.stdout.readline()).group(1)
        conn = flight.connect(uri, db_kwargs={"adbc.flight.sql.authorization_header": "Bearer " + secret})
        cur = conn.cursor()

        def run(sql):
            cur.execute(sql)
            return cur.fetch_arrow_table()

        for path in sorted(pathlib.Path(qdir).glob("*.sql")):
            name = path.stem
            sql = path.read_text().replace("{user}", user)
            # Flight sessions are stateless: qualify the benchmark's tables.
            sql = re.sub(r"\b(FROM|JOIN)\s+(stream_log|user_profile)\b", r"\1 korea_naver_log.\2", sql)
            run(sql)
            times, rows = [], []
            for i in range(runs):
                t = time.perf_counter()
                table = run(sql)
                times.append(time.perf_counter() - t)
                if i == 0:
                    rows = arrow_rows(table)
                    if sorts(name, sql):
                        rows.sort()
            print("flight", name, f"{statistics.median(times) * 1000:.1f} ms", file=sys.stderr)
            results[name] = {"times": times, "median": sorted(times)[len(times) // 2], "rows": rows}

        lat = []
        for i in range(330):
            t = time.perf_counter()
            run("SELECT 1")
            if i >= 30:
                lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        results["_select1"] = {"p50_ms": statistics.median(lat), "p99_ms": lat[int(len(lat) * 0.99)], "n": len(lat)}
        results["_server_peak_rss"] = peak_rss(server.pid)
        cur.close()
        conn.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    pathlib.Path(out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
