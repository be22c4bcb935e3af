"""The benchmark's queries on an S3 warehouse against the same data on local disk, through
`cuve serve` with the ADBC driver: moto's S3 server on loopback (in memory, and slow: absolute
times mean little), so it reports per query the time ratio S3 / local disk, and the requests
and bytes Cuve sent to the store in one warm execution (footers cached) and in the first
(cold) one. Results must be identical. Writes the object-storage section of
benches/RESULTS.md (between its markers) and s3-results.json.

Usage: s3_bench.py CUVE CUVE_BENCH DATA_DIR [--scale 0.01] [--runs 3]
(benches/s3_bench.sh builds the binaries and installs moto.)
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

import adbc_driver_flightsql.dbapi as flight

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benches"))
from peers import arrow_rows, sorts  # noqa: E402
from run import write_section  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`cuve serve` on HOME; its stderr (the per-request trace) is collected line by line."""

    def __init__(self, cuve, home, env):
        self.lines = []
        self.proc = subprocess.Popen(
            [cuve, "--home", home, "serve", "--addr", "127.0.0.1:0"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.uri = re.search(r"(grpc://\S+)", self.proc.stdout.readline()).group(1)
        threading.Thread(target=self._drain, daemon=True).start()
        secret = re.search(r"^ticket=(\S+)", pathlib.Path(home, "credentials").read_text(), re.M).group(1)
        self.conn = flight.connect(self.uri, db_kwargs={"adbc.flight.sql.authorization_header": "Bearer " + secret})
        self.cur = self.conn.cursor()

    def _drain(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    def run(self, sql):
        self.cur.execute(sql)
        return self.cur.fetch_arrow_table()

    def requests_during(self, fn):
        time.sleep(0.05)
        start = len(self.lines)
        fn()
        time.sleep(0.2)
        reqs = [l for l in self.lines[start:] if "s3 request:" in l]
        nbytes = sum(int(m.group(1)) for l in reqs if (m := re.search(r" (\d+) bytes", l)))
        return len(reqs), nbytes

    def close(self):
        self.cur.close()
        self.conn.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cuve")
    ap.add_argument("bench")
    ap.add_argument("data")
    ap.add_argument("--scale", type=float, default=0.01)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    data = pathlib.Path(a.data) / f"s3-scale-{a.scale}"
    data.mkdir(parents=True, exist_ok=True)
    user = subprocess.run([a.bench, "generate", "--dir", data, "--scale", str(a.scale)],
                          check=True, capture_output=True, text=True).stdout.strip()
    raw = data / "raw"
    lines = sum(1 for f in raw.glob("*/*.jsonl") for _ in open(f, "rb"))

    port = free_port()
    moto = subprocess.Popen([ROOT / ".venv/bin/moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
               AWS_ENDPOINT_URL=endpoint, AWS_ALLOW_HTTP="true", CUVE_LOG="debug")
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        import boto3

        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                     region_name="us-east-1").create_bucket(Bucket="bench")
        homes = {}
        ingest = {}
        for kind in ("local", "s3"):
            home = data / f"home-{kind}"
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir()
            if kind == "s3":
                subprocess.run([a.cuve, "--home", home, "--warehouse", "s3://bench/w", "sql", "-e", "SELECT 1"],
                               env=env, check=True, capture_output=True)
            subprocess.run([a.bench, "setup", "--home", home], env=env, check=True, capture_output=True)
            t = time.perf_counter()
            subprocess.run([a.cuve, "--home", home, "ingest", "--table", "korea_naver_log.stream_log", raw],
                           env=dict(env, CUVE_LOG="warn"), check=True, capture_output=True)
            ingest[kind] = time.perf_counter() - t
            subprocess.run([a.cuve, "--home", home, "ingest", "--table", "korea_naver_log.user_profile",
                            data / "profiles"], env=dict(env, CUVE_LOG="warn"), check=True, capture_output=True)
            homes[kind] = home

        servers = {k: Server(a.cuve, h, env) for k, h in homes.items()}
        results = {}
        for path in sorted((ROOT / "benches/queries").glob("*.sql"), key=lambda p: int(re.match(r"q(\d+)", p.stem).group(1))):
            name = path.stem
            sql = path.read_text().replace("{user}", user)
            sql = re.sub(r"\b(FROM|JOIN)\s+(stream_log|user_profile)\b", r"\1 korea_naver_log.\2", sql)
            r = {}
            for kind, srv in servers.items():
                cold = srv.requests_during(lambda: srv.run(sql))
                warm = srv.requests_during(lambda: srv.run(sql))
                times, rows = [], None
                for i in range(a.runs):
                    t = time.perf_counter()
                    table = srv.run(sql)
                    times.append(time.perf_counter() - t)
                    if rows is None:
                        rows = arrow_rows(table)
                        if sorts(name, sql):
                            rows.sort()
                r[kind] = {"median": statistics.median(times), "rows": rows, "cold": cold, "warm": warm}
            r["same"] = r["local"]["rows"] == r["s3"]["rows"]
            print(name, f"local {r['local']['median']*1000:.1f} ms, s3 {r['s3']['median']*1000:.1f} ms, "
                  f"requests {r['s3']['warm'][0]} ({r['s3']['cold'][0]} cold), same {r['same']}", file=sys.stderr)
            results[name] = r
        for s in servers.values():
            s.close()
    finally:
        moto.terminate()
        moto.wait(timeout=30)

    (data / "s3-results.json").write_text(json.dumps({"results": results, "ingest": ingest}, indent=1, default=str))
    mib = lambda b: f"{b / 2**20:.2f} MiB"
    rows = []
    for q, r in results.items():
        loc, s3 = r["local"], r["s3"]
        rows.append(
            f"| {q} | {loc['median']*1000:.1f} | {s3['median']*1000:.1f} | {s3['median']/loc['median']:.2f}x | "
            f"{s3['warm'][0]} | {mib(s3['warm'][1])} | {s3['cold'][0]} | {mib(s3['cold'][1])} | "
            f"{'yes' if r['same'] else '**NO**'} |"
        )
    ratios = [r["s3"]["median"] / r["local"]["median"] for r in results.values()]
    geo = pow(2.718281828459045, sum(map(lambda x: __import__("math").log(x), ratios)) / len(ratios))
    binary = "release" if "/release/" in str(a.cuve) else "debug"
    section = write_section("object-storage", f"""
## Object storage (S3): the same queries on an S3 warehouse

Regenerated by `benches/s3_bench.sh --scale {a.scale} --runs {a.runs}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}
({binary} build). {lines:,} log lines ingested twice with `cuve ingest`: into a local warehouse and
into `--warehouse s3://bench/w` on moto's S3 server (loopback, in memory); both queried through
`cuve serve` with the ADBC driver. moto is slow and single-threaded, so the ratio S3 / local
disk is what to read, not the times. Requests and bytes are what Cuve sent to the store
(`CUVE_LOG=debug` traces each request): in one warm execution (footers and page indexes already
cached) and in the first one after the server started (cold). A managed table's files come from
the catalog, so no query lists the bucket. Ingest: local {ingest['local']:.1f} s, S3 {ingest['s3']:.1f} s.
Geometric mean of the ratios: **{geo:.2f}x**.

| query | local ms | S3 ms | S3 / local | requests (warm) | bytes (warm) | requests (cold) | bytes (cold) | same result |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}
""")
    print(section)


if __name__ == "__main__":
    main()
