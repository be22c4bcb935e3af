"""HTTP intake against file ingest: the same raw files (cuve-bench generate) sent to
`cuve serve --http` in batches of --batch lines by 1 and by 8 concurrent senders (one source
each, keep-alive connections), then loaded with `cuve ingest` and with DuckDB's COPY. Reports
lines/s (until every acknowledged row is queryable) and the p50/p99 time from sending a batch to
its 200. Writes the HTTP section of benches/RESULTS.md (between its markers) and
http-results.json.

Usage: http_bench.py CUVE CUVE_BENCH DATA_DIR [--scale 0.01] [--batch 1000]
"""

import argparse
import http.client
import json
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benches"))
from run import write_section  # noqa: E402
TABLE = "korea_naver_log.stream_log"


def sh(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def count(cuve, home):
    out = sh([cuve, "--home", home, "sql", "--format", "csv", "-e", f"SELECT COUNT(*) FROM {TABLE}"],
             capture_output=True, text=True).stdout
    return int(out.splitlines()[1])


def fresh_home(cuve, bench, base, name):
    home = base / name
    shutil.rmtree(home, ignore_errors=True)
    sh([bench, "setup", "--home", home], capture_output=True)
    # The local admin ticket is made on first use.
    sh([cuve, "--home", home, "sql", "-e", "SELECT 1"], capture_output=True)
    secret = re.search(r"^ticket=(\S+)", (home / "credentials").read_text(), re.M).group(1)
    return home, secret


def sources(raw, senders):
    """The raw files as `senders` lists of (sender, source, lines), split evenly."""
    files = sorted(raw.glob("*/*.jsonl"))
    out = [[] for _ in range(senders)]
    for i, f in enumerate(files):
        out[i % senders].append((f.parent.name, f.name, f.read_bytes().split(b"\n")))
    return out


def run_http(cuve, bench, base, raw, senders, batch):
    home, secret = fresh_home(cuve, bench, base, f"http-{senders}")
    proc = subprocess.Popen([cuve, "--home", home, "serve", "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0",
                             "--flush-interval", "1s"], stdout=subprocess.PIPE, text=True)
    addr = None
    for _ in range(4):
        m = re.search(r"http://(\S+)", proc.stdout.readline())
        if m:
            addr = m.group(1)
            break
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    work = sources(raw, senders)
    latencies, lock = [], threading.Lock()
    total = sum(len([l for l in lines if l]) for w in work for _, _, lines in w)

    def sender(items):
        host, port = addr.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        mine = []
        for ip, name, lines in items:
            lines = [l for l in lines if l]
            for at in range(0, len(lines), batch):
                body = b"\n".join(lines[at:at + batch]) + b"\n"
                headers = {"Authorization": "Bearer " + secret, "X-Cuve-Sender": ip, "X-Cuve-Source": name,
                           "X-Cuve-First-Line": str(at + 1), "Content-Type": "application/x-ndjson"}
                while True:
                    t = time.perf_counter()
                    conn.request("POST", f"/v1/logs/{TABLE}", body, headers)
                    r = conn.getresponse()
                    r.read()
                    if r.status == 200:
                        mine.append(time.perf_counter() - t)
                        break
                    if r.status in (429, 503):
                        time.sleep(float(r.getheader("Retry-After", "1")))
                        continue
                    raise SystemExit(f"HTTP {r.status}")
        with lock:
            latencies.extend(mine)

    t = time.perf_counter()
    threads = [threading.Thread(target=sender, args=(w,)) for w in work if w]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    acked = time.perf_counter() - t
    while count(cuve, home) < total:
        time.sleep(0.2)
    visible = time.perf_counter() - t
    proc.terminate()
    proc.wait()
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000  # noqa: E731
    return {"senders": senders, "lines": total, "batch": batch, "requests": len(latencies),
            "acked_secs": acked, "visible_secs": visible, "lines_per_s": total / visible,
            "p50_ms": q(0.50), "p99_ms": q(0.99), "files": len(list((home).rglob("*.parquet")))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cuve")
    ap.add_argument("bench")
    ap.add_argument("data")
    ap.add_argument("--scale", type=float, default=0.01)
    ap.add_argument("--batch", type=int, default=1000)
    a = ap.parse_args()
    data = pathlib.Path(a.data).resolve()
    data.mkdir(parents=True, exist_ok=True)
    sh([a.bench, "generate", "--dir", data, "--scale", str(a.scale)], capture_output=True)
    raw = data / "raw"
    results = {"http": [run_http(a.cuve, a.bench, data, raw, n, a.batch) for n in (1, 8)]}
    home, _ = fresh_home(a.cuve, a.bench, data, "ingest")
    t = time.perf_counter()
    ing = json.loads(sh([a.cuve, "--home", home, "ingest", "--table", TABLE, "--json", raw],
                        capture_output=True, text=True).stdout)
    secs = time.perf_counter() - t
    results["ingest"] = {"lines": ing["written"], "seconds": secs, "lines_per_s": ing["written"] / secs}
    duck = data / "duck"
    shutil.rmtree(duck, ignore_errors=True)
    results["duckdb"] = json.loads(sh([sys.executable, ROOT / "benches/peers.py", "ingest", raw, duck],
                                      capture_output=True, text=True).stdout)
    (data / "http-results.json").write_text(json.dumps(results, indent=2))
    profile = "debug" if "/debug/" in a.cuve else "release"
    rows = "\n".join(
        f"| `cuve serve --http`, {h['senders']} sender{'s' if h['senders'] > 1 else ''}, {h['batch']} lines per request "
        f"| {h['lines']:,} | {h['acked_secs']:.1f} | {h['visible_secs']:.1f} | {h['lines_per_s']:,.0f} | {h['p50_ms']:.1f} | {h['p99_ms']:.1f} | {h['files']} |"
        for h in results["http"])
    write_section("http-intake", f"""
## HTTP intake (`benches/http_bench.sh`, {profile} build, scale {a.scale})

The same raw files sent over HTTP (`POST /v1/logs/{TABLE}`, NDJSON, keep-alive, one source per
file), loaded with `cuve ingest`, and with DuckDB's COPY. HTTP seconds run until every
acknowledged row is queryable (`--flush-interval 1s`); latency is from sending a batch to its
200 (synced to the write-ahead log).

| path | lines | all acknowledged, s | all queryable, s | lines/s (queryable) | p50 ack ms | p99 ack ms | Parquet files |
|---|---:|---:|---:|---:|---:|---:|---:|
{rows}
| `cuve ingest` (files) | {results['ingest']['lines']:,} | | {results['ingest']['seconds']:.1f} | {results['ingest']['lines_per_s']:,.0f} | | | |
| DuckDB COPY ... PARTITION_BY (dt) | {results['duckdb']['lines']:,} | | {results['duckdb']['seconds']:.1f} | {results['duckdb']['lines_per_s']:,.0f} | | | |

Each flush writes one file per (partition, bucket) it holds rows for: the benchmark's month of
data spread over few lines makes flushes file-bound (30 days × 16 buckets), which is where the
time between "acknowledged" and "queryable" goes. A debug build's numbers say little about
absolute speed; the release run is `benches/http_bench.sh`.
""")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
