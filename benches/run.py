"""The benchmark, end to end (see shared/design/BENCHMARK.md): generate (or reuse) the data,
ingest it with `cuve ingest` into the bucketed layout and with DuckDB's COPY ... PARTITION_BY,
run every query of benches/queries/ on Cuve (in process and through `cuve serve` with the ADBC
driver), plain DataFusion, DuckDB and chDB over the same Parquet files, and on DuckDB and
ClickHouse MergeTree with the data loaded into their own storage; check the results are
identical, and write benches/RESULTS.md.

Usage: benches/run.sh [--scale 0.1] [--runs 5]
"""

import argparse
import json
import math
import os
import pathlib
import platform
import re
import resource
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benches"))
from peers import REWRITES  # noqa: E402

PEERS = ["duckdb", "chdb", "duckdb-native", "chdb-mergetree"]
PEER_NAMES = {"duckdb": "DuckDB", "chdb": "chDB", "duckdb-native": "DuckDB native", "chdb-mergetree": "ClickHouse MergeTree"}
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/cuve-target")) / os.environ.get("CUVE_BENCH_PROFILE", "release")


# Sections of RESULTS.md that other scripts write, between their markers: s3_bench.py,
# http_bench.py, lifecycle_bench.py and cluster_bench.py.
SECTIONS = {
    name: (f"<!-- {name} -->", f"<!-- /{name} -->")
    for name in ("object-storage", "http-intake", "lifecycle", "cluster")
}


def write_section(name, body):
    """Writes `body` as the section `name` of benches/RESULTS.md (between its markers, which
    `body` must not contain), in place of the last one or at the end."""
    begin, end = SECTIONS[name]
    section = f"{begin}\n{body.strip(chr(10))}\n{end}"
    path = ROOT / "benches" / "RESULTS.md"
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        new = old[: old.index(begin)] + section + old[old.index(end) + len(end):]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(new)
    return section


def sh(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


def canon(rows):
    out = []
    for r in rows:
        cells = []
        for c in r.split("|"):
            if len(c) >= 19 and c[4] == "-" and c[10] in "T ":
                # DuckDB keeps microseconds: compare times at that precision
                c = c.replace("T", " ")
                if "." in c:
                    head, frac = c.split(".", 1)
                    c = f"{head}.{frac[:6]}"
            try:
                f = float(c)
                c = f"{f:.6g}" if not c.lstrip("-").isdigit() else c
            except ValueError:
                pass
            cells.append(c)
        out.append("|".join(cells))
    return out


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM"


def measure(a, data):
    """Runs everything; what the report needs (also saved as run-state.json)."""
    cuve = TARGET / "cuve"
    bench = TARGET / "cuve-bench"
    user = sh([bench, "generate", "--dir", data, "--scale", str(a.scale)], capture_output=True, text=True).stdout.strip()
    raw = data / "raw"
    lines = sum(1 for f in raw.glob("*/*.jsonl") for _ in open(f, "rb"))

    # Ingest with Cuve into a fresh warehouse (the timed run), then once more to show it is idempotent.
    home = data / "cuve-home"
    shutil.rmtree(home, ignore_errors=True)
    sh([bench, "setup", "--home", home])
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    out = sh([cuve, "--home", home, "ingest", "--table", "korea_naver_log.stream_log", "--json", raw], capture_output=True, text=True)
    cuve_secs = time.perf_counter() - t
    cuve_ingest = json.loads(out.stdout)
    cuve_peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) * 1024
    sh([cuve, "--home", home, "ingest", "--table", "korea_naver_log.user_profile", "--json", data / "profiles"], capture_output=True)
    again = json.loads(sh([cuve, "--home", home, "ingest", "--table", "korea_naver_log.stream_log", "--json", raw], capture_output=True, text=True).stdout)

    duck_out = data / "duck-ingest"
    shutil.rmtree(duck_out, ignore_errors=True)
    duck_ingest = json.loads(sh([sys.executable, ROOT / "benches/peers.py", "ingest", raw, duck_out], capture_output=True, text=True).stdout)

    qdir = ROOT / "benches/queries"
    rust_json = data / "results-rust.json"
    sh([bench, "queries", "--home", home, "--user", user, "--runs", str(a.runs), "--out", rust_json, "--queries", qdir])
    flight_json = data / "results-flight.json"
    sh([sys.executable, ROOT / "benches/flight_bench.py", cuve, home, qdir, user, str(a.runs), flight_json])
    peers = {}
    for engine in PEERS:
        out_json = data / f"results-{engine}.json"
        sh([sys.executable, ROOT / "benches/peers.py", "queries", engine, home, qdir, user, str(a.runs), out_json, data])
        peers[engine] = json.loads(out_json.read_text())
    rust = json.loads(rust_json.read_text())
    flight = json.loads(flight_json.read_text())
    scaling = run_scaling(a, data, raw, home, cuve, bench, user, cuve_secs, cuve_ingest["written"], duck_ingest)
    return {
        "lines": lines, "user": user, "cuve_secs": cuve_secs, "cuve_ingest": cuve_ingest, "cuve_peak": cuve_peak,
        "again": again, "duck_ingest": duck_ingest, "rust": rust, "flight": flight, "peers": peers,
        "scaling": {str(k): v for k, v in scaling.items()},
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": a.runs,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the 1,000,000 rows a day (30 days)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default=str(ROOT / "benches" / "data"))
    ap.add_argument("--report-only", action="store_true", help="rewrite RESULTS.md from the last run's saved results")
    a = ap.parse_args()
    data = pathlib.Path(a.dir) / f"scale-{a.scale}"
    data.mkdir(parents=True, exist_ok=True)
    state_file = data / "run-state.json"
    if a.report_only:
        st = json.loads(state_file.read_text())
    else:
        st = measure(a, data)
        state_file.write_text(json.dumps(st))
    lines, cuve_secs, cuve_ingest, cuve_peak = st["lines"], st["cuve_secs"], st["cuve_ingest"], st["cuve_peak"]
    again, duck_ingest, rust, flight, peers = st["again"], st["duck_ingest"], st["rust"], st["flight"], st["peers"]
    scaling = {int(k): v for k, v in st["scaling"].items()}

    mib = lambda b: f"{b / 2**20:.0f} MiB"
    ms = lambda r: f"{r['median'] * 1000:.1f}" if "median" in r else "error"
    rows, notes, inproc = [], [], []
    same_file_ratios, all_ratios = [], []
    for q in sorted(rust, key=qkey):
        c, d, f = rust[q]["cuve"], rust[q]["datafusion"], flight[q]
        p = {e: peers[e].get(q, {"error": "missing"}) for e in PEERS}
        results = [c["rows"], d["rows"], f["rows"]] + [p[e]["rows"] for e in PEERS if "rows" in p[e]]
        same = all(canon(r) == canon(c["rows"]) for r in results) and all("rows" in p[e] for e in PEERS)
        differs = [e for e in PEERS if "rows" in p[e] and canon(p[e]["rows"]) != canon(c["rows"])]
        on_files = [d["median"]] + [p[e]["median"] for e in ("duckdb", "chdb") if "median" in p[e]]
        everyone = on_files + [p[e]["median"] for e in ("duckdb-native", "chdb-mergetree") if "median" in p[e]]
        r_files = min(on_files) / f["median"]
        r_all = min(everyone) / f["median"]
        same_file_ratios.append(r_files)
        all_ratios.append(r_all)
        target = 10.0 if q.startswith("q6") else 1.0
        met = "yes" if r_files >= target and r_all >= 0.8 and same else "**no**"
        rows.append(
            f"| {q} | {ms(f)} | {ms(c)} | {ms(d)} | " + " | ".join(ms(p[e]) for e in PEERS)
            + f" | {r_files:.2f}x | {r_all:.2f}x | {'yes' if same else '**NO** (' + ', '.join(differs or ['error']) + ')'} | {met} |"
        )
        inproc.append(
            f"| {q} | {c['median']*1000:.1f} | {d['median']*1000:.1f} | {d['median']/c['median']:.2f}x | "
            f"{c['files_read']}/{c['files_total']}, {mib(c['bytes_read'])} | {mib(d['bytes_scanned'])} | "
            f"{mib(c['peak_rss'])} / {mib(d['peak_rss'])} / " + " / ".join(mib(p[e].get('peak_rss', 0)) for e in PEERS) + " |"
        )
        if c.get("colocated") or d.get("repartition_on_key"):
            notes.append(
                f"- {q}: Cuve co-located plan: {'yes' if c['colocated'] else 'no'}; repartition on user_id: Cuve "
                f"{'yes' if c['repartition_on_key'] else 'no'}, plain DataFusion {'yes' if d['repartition_on_key'] else 'no'}."
            )
        if "cuve_1g" in rust[q]:
            g = rust[q]["cuve_1g"]
            notes.append(
                f"- {q} under a 1 GiB per-query memory limit (spilling): {g['seconds']*1000:.0f} ms, peak RSS {mib(g['peak_rss'])}, "
                f"same result: {'yes' if g['same_result'] else 'NO'}{' — ' + g['error'] if g.get('error') else ''}."
            )
        for e in PEERS:
            if "error" in p[e]:
                notes.append(f"- {q} on {PEER_NAMES[e]}: error: {p[e]['error']}")
    geo = lambda v: math.exp(sum(math.log(x) for x in v) / len(v))
    loads = "\n".join(
        f"| {PEER_NAMES[e]} | {peers[e]['_load']['seconds']:.1f} | {mib(peers[e]['_load']['bytes'])} |"
        for e in ("duckdb-native", "chdb-mergetree") if peers[e].get("_load")
    )
    rewrites = "\n".join(f"| {PEER_NAMES[e]} | `{pat}` | `{rep}` |" for e, rs in REWRITES.items() for pat, rep in rs) or "| (none) | | |"
    s1 = flight["_select1"]
    scaling_table, scaling_names = scaling_report(scaling)
    scaling_svg(scaling, scaling_names, ROOT / "benches" / "scaling.svg")

    report = f"""# Benchmark results

Regenerated by `benches/run.sh --scale {a.scale} --runs {st['runs']}` on {st['when']}.
Machine: {machine()}. Data: {lines:,} log lines ({a.scale} × 30 days × 1,000,000), queries from
`benches/queries/` (shared/design/BENCHMARK.md), one untimed warm-up then {st['runs']} runs each, medians. Peers read the same
Parquet files Cuve's ingest wrote: plain DataFusion 55 as a `PARTITIONED BY (dt)` listing table
(in the same Rust process), DuckDB {version('duckdb')} with `hive_partitioning`, ClickHouse
(chDB {version('chdb')}) with `file(...)` and hive partitioning; DuckDB native and ClickHouse
MergeTree read their own storage. Cuve and plain DataFusion share one binary, built for this
machine's CPU (`-C target-cpu=native`, as `benches/run.sh` builds it); DuckDB's and chDB's
wheels pick CPU-specific code at run time.

Main table: **Cuve through `cuve serve` with the ADBC Flight SQL driver** (a notebook's path:
execute + fetch of the whole Arrow result in Python), against every peer. Ratios are peer time /
Cuve-through-Flight time (higher is better for Cuve): "same files" is the best of plain
DataFusion, DuckDB and chDB reading the Parquet files Cuve wrote; "all" adds DuckDB and
ClickHouse with the data loaded into their own storage. Peers run in their own processes,
in-process (no client/server hop).

| query | Cuve Flight ms | Cuve in-process ms | DataFusion ms | {' | '.join(PEER_NAMES[e] + ' ms' for e in PEERS)} | vs best, same files | vs best of all | identical results | target met |
|---|---|---|---|{'---|' * len(PEERS)}---|---|---|---|
{chr(10).join(rows)}

Geometric mean through Flight: **{geo(same_file_ratios):.2f}×** against the best peer on the same files
({sum(1 for r in same_file_ratios if r >= 1.0)} of {len(same_file_ratios)} shapes ≥ 1.0×), **{geo(all_ratios):.2f}×** against the best of all
peers ({sum(1 for r in all_ratios if r < 0.8)} shapes below 0.8×). `SELECT 1` through ADBC: p50 {s1['p50_ms']:.2f} ms, p99
{s1['p99_ms']:.2f} ms ({s1['n']} runs on the same connection); server peak RSS {mib(flight['_server_peak_rss'])}.

Targets: every shape ≥ 1.0× the best peer on the same files (q6, the point lookup, ≥ 10×);
geometric mean ≥ 1.0× against the best of all peers with no shape below 0.8×; `SELECT 1` p50 ≤ 1 ms.
"target met" marks the per-shape part (≥ 1.0× / 10× on the same files and ≥ 0.8× of all).

### In process

Cuve's engine and plain DataFusion 55 (a `PARTITIONED BY (dt)` listing table) in the same Rust
process, on the same files.

| query | Cuve ms | DataFusion ms | vs DataFusion | Cuve files, bytes | DataFusion bytes scanned | peak RSS Cuve / DF / {' / '.join(PEER_NAMES[e] for e in PEERS)} |
|---|---|---|---|---|---|---|
{chr(10).join(inproc)}

{chr(10).join(notes)}

### Loading the native stores

Done once before the queries (reused by later runs of the same data); sorted like Cuve's layout
(dt, user_id, log_time).

| store | load seconds | size on disk |
|---|---|---|
{loads}

### Dialect rewrites

Every engine runs the files in `benches/queries/` as written except:

| engine | pattern | replacement |
|---|---|---|
{rewrites}

Flight sessions carry no `USE`, so the Flight runner qualifies `stream_log` and `user_profile`
with `korea_naver_log.`.

### Caches

No result cache serves any timed run: Cuve has none, DuckDB has none, ClickHouse's query cache
is off unless `use_query_cache` is set (never here). Caches of decoded or raw data that do stay
warm between runs: the OS page cache (all engines); Cuve's Parquet footer and page-index cache
and memory maps of its own files (kept across queries in `cuve serve` and in the in-process
engine); plain DataFusion's listing-table file statistics cache; DuckDB's buffer manager
(native storage) and Parquet metadata cache; ClickHouse's mark cache and uncompressed cache
(MergeTree).

## Ingest

| | lines | seconds | lines/s | peak RSS |
|---|---|---|---|---|
| `cuve ingest` (partitioned, 16 buckets, sorted, exactly-once ledger) | {cuve_ingest['written']:,} | {cuve_secs:.1f} | {cuve_ingest['written']/cuve_secs:,.0f} | {mib(cuve_peak)} |
| DuckDB `COPY (SELECT ... FROM read_json(...)) TO ... (PARTITION_BY (dt))` | {duck_ingest['lines']:,} | {duck_ingest['seconds']:.1f} | {duck_ingest['lines_per_s']:,.0f} | {mib(duck_ingest['peak_rss'])} |

Ratio Cuve / DuckDB: {(cuve_ingest['written']/cuve_secs)/duck_ingest['lines_per_s']:.2f}× (target ≥ 2×). Re-running the same
ingest wrote {again['written']} rows and skipped {again['duplicates_skipped']:,} lines already committed.

## Scaling

The shapes of `benches/scaling/` on the last 3, 10 and 30 days of the month (the 3- and
10-day tables ingested from the same raw files, so a one-day query reads the same day at every
size): through `cuve serve` with ADBC, and DuckDB on the same files. One-day shapes should stay
flat, shapes over every day grow with the days. Chart: [`scaling.svg`](scaling.svg).

{scaling_table}

![query time against table size](scaling.svg)

## Where targets are missed, and why

- **Through Flight, against more peers (2026-12-02).** Figures in this bullet are from the run
  of 2026-12-02 07:03 UTC. This machine was about 2.4× slower that day than on 2026-11-28 for
  every engine alike (plain DataFusion's q7 1681 against 683 ms, `cuve ingest` 63 against 26 s),
  so compare ratios, not times, across days. (1) The Flight path costs little over the
  engine: Flight medians are within this machine's noise of the in-process ones (q13 439
  against 643 ms, q8 78 against 57 ms: both directions). `SELECT 1` p50 3.3 ms misses the 1 ms
  target; the Python ADBC driver's own round trip (GetFlightInfo + DoGet, two gRPC calls) is
  1.8–2.5 ms on this machine with nothing planned (`benches/LATENCY.md`, GetTableTypes;
  `SELECT 1` there 3.6–3.8 ms, so Cuve adds 1.3–1.8 ms per statement, two calls each). (2) On the
  same files 14 of 20 shapes are ≥ 1.0× the best peer, geometric mean 1.13×. Missed: q13 (top-N
  per user, 0.55× DuckDB) and q14 (LAG per session, 0.45× chDB) are window queries whose time
  is DataFusion's sort and window operators (q14 sorts one day's 1 M rows on five keys);
  Cuve's plan for q13 is DataFusion's own (EXPLAIN's `cuve_plan`: not co-located, the partial
  aggregation repartitions on (user_id, query)) and, alternating the two engines (5 runs × 2
  rounds), 364–414 against 330–376 ms; a third round of 8 runs each under `perf` gave medians
  399 against 379 ms (5%) with the same profile (string-view comparisons, hash grouping,
  sorting), i.e. parity within noise. q4 (0.77× DuckDB: one day, a CASE of LIKEs on the
  referrer) and q15 (0.87× DataFusion, 25 against 29 ms) are small one-day scans with
  DataFusion's normal plan in Cuve too; alternating the two engines (10 runs × 3 rounds) gave
  q15 26.4–28.1 against 25.8–28.6 ms and q4 59.7–63.3 against 62.9–64.1 ms (parity), so
  against DuckDB it is its expression evaluation that decides. q8 (0.79×) and q10 (0.89×) are slower only through Flight in this run; in process
  they are 1.09× and 1.17× of DataFusion, and q8 alternating 68 against 79–80 ms. q6 is 9.0×
  (target 10×): 13.8 ms against DuckDB's 124 ms. (3) Against the native stores the geometric
  mean is 0.63× (15 shapes below 0.8×): DuckDB with its own storage is the fastest engine on
  17 of 20 shapes (q7 861 ms against Cuve's 1614, q17 127 against 330): its scans read its own
  compressed vectors with no Parquet page decoding or dictionary-to-view building, and its
  sorts and aggregations on two cores are faster than DataFusion's. ClickHouse MergeTree
  through chDB is slower than DuckDB native here, and than Cuve through Flight on 18 of 20 shapes. (4)
  Ingest was 0.98× DuckDB's COPY in this run (1.22× on 2026-11-28), against a target of 2×:
  no ingest work was done this round. Not
  built this round (so the native-store target is open): profiling against DuckDB native,
  a decoded-column cache in `cuve serve`, layout changes (row-group and page sizes,
  encodings), Vortex.
- **Measurement notes.** "Cuve files, bytes" is what partition and bucket pruning selected (whole
  files); "DataFusion bytes scanned" is DataFusion's own `bytes_scanned` metric (column chunks
  actually read), so the two byte columns are not comparable. Peak RSS is the process high-water
  mark reset before each query (`/proc/self/clear_refs`); Cuve and plain DataFusion share one
  process, so their figures include memory the allocator (mimalloc, which keeps freed pages for
  reuse) holds from earlier queries. The 1 GiB limit of the q2/q7 lines bounds what the query's
  operators reserve from DataFusion's memory pool (they spill beyond it), not the process RSS.
- **Noise.** On this shared 2-core machine a query's median moves by up to ~15% between full
  runs, and whole stretches of time are slower: the same binary's q6 alone gave medians from
  4.4 ms to 8.5 ms within one hour (plain DataFusion's q6 45 to 67 ms), and inside the full run
  q6 is slower than alone (one earlier report: 7.3 to 10.9 ms; q1 to q6 rerun right after it:
  5.4 to 6.4 ms for most runs). Per-run CPU of q6 is steady (`cpu_median` in the results JSON);
  the slow runs are the ones where one worker thread did most of the work (wall close to CPU
  time). Three earlier full runs (before the per-column codec below) gave vs DataFusion / DuckDB
  q1 1.01/0.80, 0.96/0.79 and 1.04/0.84; q2 0.98/1.03, 0.99/1.08, 1.10/1.24; q4 1.13/1.07,
  0.93/1.05, 1.01/1.14; q6 9.4/7.1, 10.8/7.0, 8.7/6.3; q7 1.03/1.34, 1.00/1.27, 0.99/1.35; q8
  1.07/1.53, 0.99/1.54, 1.03/1.53; ingest 0.84×, 1.07× and 0.78× of DuckDB (DuckDB itself took
  34.5 s, 41.5 s and 33.1 s for the same COPY). The last full run before this round's changes
  (codec by whole column, memory-mapped lookups, Cuve's own page selection, ingest keeping
  freed memory, partition columns as string views) gave q1 1.01/0.87, q2 1.11/1.27, q4 1.03/1.15, q6 7.7/6.1, q7 1.02/1.48, q8
  1.18/1.46 and ingest 0.85×. The previous round's last full run (before this round's ingest
  changes and the CPU-specific build) gave q1 1.72/1.41, q2 1.05/1.32, q3 1.04/1.85, q4
  0.96/1.06, q5 1.23/1.83, q6 10.3/8.7, q7 1.00/1.40, q8 1.06/1.50, q9 1.38/1.64 and ingest
  0.94×. This round's first full run (02:19, before the per-day DISTINCT aggregation) gave q1
  1.44/1.12, q2 0.95/1.18, q3 0.99/1.48, q4 1.03/1.21, q5 1.27/1.95, q6 11.0/11.0, q7
  1.04/1.38, q8 1.06/1.41, q9 1.28/1.55 and ingest 1.14×; the second (02:41, with it) q1
  1.63/1.33, q2 1.37/1.70, q3 1.06/1.58, q4 1.02/1.27, q5 2.08/1.85, q6 12.6/7.5, q7
  0.90/1.25, q8 0.98/1.44, q9 1.41/1.79 and ingest 1.18×. After the second run, alternating
  Cuve and plain DataFusion (8 runs × 3 rounds): q7 665–713 against 675–709 ms (parity; 0.90×
  in the run), q8 38–40 against 42 ms (0.98× in the run). Ratios between about 0.85 and 1.15 are parity, not a measured
  difference.
- **q6 (point lookup, target 10×).** Pruning works: Cuve opens {rust['q6_point_lookup']['cuve']['files_read']} of
  {rust['q6_point_lookup']['cuve']['files_total']} files (one bucket per day) where the peers open all of them, and is
  {rust['q6_point_lookup']['datafusion']['median']/rust['q6_point_lookup']['cuve']['median']:.1f}× / {peers['duckdb']['q6_point_lookup']['median']/rust['q6_point_lookup']['cuve']['median']:.1f}× faster. Profiled with `perf`
  (`cuve-bench queries --only cuve` on q6 alone) and fixed so far: the writer's bloom filters
  are sized for the file, near-unique columns (log_time, the key, document ids) carry no
  dictionary (a lookup used to read and decompress a ~1 MiB timestamp dictionary per file),
  pages hold 1024 rows, and page indexes are cached with the footers across queries (DataFusion
  re-reads them on every scan). This round (q6 went from ~21 ms to ~6–7 ms on this machine):
  UTF-8 validation of the `query` dictionary (Korean text) took a third of the CPU because
  parquet's simdutf8 was built without run-time CPU detection (Cuve now turns it on, which also
  helps plain DataFusion in this process); files are written with LZ4 instead of zstd, since
  arrow-rs creates a zstd compression and decompression context for every column chunk it opens;
  lookups on the sort key no longer read the bloom filter (the page index on the sorted column
  already narrows each file to one or two pages; reading the filter was a quarter of q6); the
  selected pages are read directly from the file on the calling thread instead of one tokio blocking-pool
  task per range (~15%); and mimalloc is built without transparent huge pages (re-faulting
  2 MiB pages showed up as a fifth of small scans' CPU). What remains per file (perf): LZ4
  decompression and view building for the dictionary pages of user_id (~12,500 ids per file in
  this bucket) and query (~5,000 queries), allocation, and DataFusion's per-file setup (open,
  prune, plan the page reads), times 30 daily files of the user's bucket (the user of q6 falls
  in the most skewed bucket: 15% of all rows). Measured floor: `SELECT count(*) ... WHERE
  user_id = ...` over the same 30 files alone takes ~5–6 ms. Tried and not kept: user_id
  without a dictionary (q6 ~12% faster, user_id scans q5/q7/q9 10–30% slower), filter
  pushdown for lookups (slower), row
  groups of 8,192 rows (the dictionaries a lookup decodes shrink: q6 8.2 to 5.0 ms, but every
  scan pays per row group: q1 +16%, q2 +11%, q3 +40%, q9 +33%), one file group per file for
  lookups and turning DataFusion's file work stealing off (no better within the noise; without
  stealing clearly worse). Planning (parse, optimize, physical plan with partition and bucket
  pruning) is ~1.2 to 1.5 ms of a lookup; the file selection no longer copies every listed file
  before bucket pruning and page reads do not zero-fill their buffers. Previous round: with
  LZ4, columns it would not shrink by a third are stored uncompressed (log_time, sender_ip,
  user_id, section, event, rank): q6 CPU 8.1 to 7.5 ms per lookup, q2/q7/q9 3–8% faster, files
  +3%. This round, each step measured alternately against the previous layout or binary
  (`cuve-bench queries --only cuve`, q6 alone, 40 lookups × 3–4 rounds; CPU per lookup):
  (1) a dictionary column is judged as a whole: its dictionary scaled to the file by an
  estimate of its distinct values (GEE, from an evenly spaced sample) plus its bit-packed
  indices (runs of eight or more removed, as Parquet's run-length encoding stores them). The
  `query` column, whose dictionary LZ4 halves but whose indices are as large and do not
  compress (the column shrank by 30% only), is now stored uncompressed, as are client_ip and
  most session_id chunks: q6 CPU 8.3–10.6 to 6.6–6.9 ms, wall 5.1–7.8 to 4.3–4.9 ms, scans
  unchanged, files +5% (1.61 to 1.69 GB). (2) Lookups read the selected pages in place from
  memory maps kept across queries instead of copying them out of the page cache: CPU 7.0–8.2
  to 5.8–6.7 ms. (3) Cuve picks the pages from the cached page index itself and hands
  DataFusion a row selection per file, with DataFusion's row-group and page pruning off for
  the scan (it built statistics arrays for every file; EXPLAIN ANALYZE opening time summed
  over files 4.95 to 0.91 ms): CPU 6.1–6.8 to 5.1–5.5 ms, but wall only 4.9–5.3 to 4.8–4.9 ms
  (200 lookups × 2 rounds): what is left of the wall time is planning (~1.3 ms on one thread)
  and two workers sharing 30 files. What remains per file (perf): string views built for the
  user_id dictionary (~6,600 ids per file in this bucket) and the query dictionary (~7,600),
  the ~250 KB a lookup touches per file, and DataFusion's per-file reader setup (Parquet to
  Arrow schema conversion, ~3%). The previous round's two full runs gave q6 3.4 ms (15.3× /
  21.1×, DuckDB at 72 ms in that run) and 5.2 ms (10.3× / 8.7×): the target held against
  DataFusion and depended on the run against DuckDB (43 to 72 ms across full runs); inside the
  full run q6 is also slower than alone (4.2–4.9 ms). This round's first full run (02:19),
  with binaries built for the CPU and files whose rows of one user are in time order: 4.9 ms,
  11.0× / 11.0×. The second (02:41): 6.8 ms, 12.6× / 7.5× (DuckDB 50 ms, plain DataFusion 85
  ms, both slower than usual too); measured right after it, alternating the engines (8 runs × 3
  rounds): Cuve 3.3–4.7 ms, DataFusion 61–64 ms; q6 alone, 300 lookups: median 3.9 ms, 4.8 ms
  CPU. Per lookup (perf over those 300): decoding the dictionary pages of user_id and query of
  each of the 30 files into string views (view building, plain decoding, UTF-8 validation)
  ~22%, allocation ~7%. This run (02:52): 4.4 ms, 12.6× / 10.4×. Cutting further needs fewer files per bucket than one per day (e.g. month-level compaction,
  outside the daily Hive layout) or a lookup path that skips the Parquet column readers;
  neither is built.
- **Scans and aggregations (q1–q4, q7).** Cuve executes with the same DataFusion Parquet reader
  and operators as plain DataFusion on the same files, so parity with DataFusion is the expected
  outcome (both run with mimalloc in one process); where partition pruning applies both prune
  the same directories. One Cuve-specific saving: for filters on columns other than the sort key
  (q2, q3, q5) Cuve reads neither page indexes nor bloom filters of the files it wrote (their
  pages span every value, and only bucket columns have bloom filters), which DataFusion loads
  and evaluates for every file (EXPLAIN ANALYZE: q2 open time 73 ms against 110 ms). q1 groups
  by `dt` and `section`: plain DataFusion types a string partition column as a dictionary, and
  grouping by a dictionary column plus another column goes through its row encoder (arrow-row
  encoding was a third of q1's CPU in perf); Cuve types string partition columns as string
  views, so the same query takes DataFusion's vectorized multi-column group values: q1 121 to
  74 ms (5 runs × 2 rounds, alternating binaries; q3, q4, q5, q8, q9 unchanged). Otherwise
  DuckDB's engine is faster on these single-table aggregations on 2 cores; layout alone
  (pruning, buckets) cannot win when every selected file must be decoded. A full run at 02:19
  (before the change below) gave q2 and q3 at 0.95× and 0.99× of DataFusion; measured right
  after, alternating the two engines (8 runs × 3 rounds, `cuve-bench queries --only
  cuve|datafusion`): q2 Cuve 783–822 ms against DataFusion 793–831 ms, q3 176–178 ms against
  192–203 ms, i.e. parity on q2 and Cuve ahead on q3. q2 (EXPLAIN ANALYZE): the partial
  aggregation kept a set of distinct `user_id || '|' || query` per day, and the final
  aggregation merged those sets again (319 ms of ~1.3 s CPU). Since each day's rows are the
  files of one `dt` directory, Cuve now runs such an aggregation (a DISTINCT aggregate grouped
  by a partition column) in a single phase per share of the days, each share's files in one
  partition (`PartitionParallelExec`, engine/src/planner/partition_agg.rs): q2 811–1059 to
  576–586 ms, CPU 1.54 to 1.10 s (6 runs × 3 rounds, alternating binaries). Restricted to
  DISTINCT aggregates: for small states (q1) one phase per share only loses the scan's
  file-level parallelism (72 to 80 ms). Not helping: DataFusion's rewrite of a single DISTINCT
  into a two-level GROUP BY does not apply next to COUNT(*), and written by hand it is slower
  here (3.1 s against 2.8 s for three runs); filter pushdown (`SET
  datafusion.execution.parquet.pushdown_filters = true`) costs more CPU (4.1 against 3.6 s).
- **Bucket-key queries (q5, q8, q9).** Co-located plans remove the repartition on `user_id`
  (plain DataFusion repartitions), which helps most on q9 (two aggregations by the key, then a
  join).
- **Ingest.** Cuve does more per line than the DuckDB COPY: the unique key, Hive bucket hash,
  sorting every file by the bucket column, page statistics and a bloom filter, and the
  exactly-once ledger, with a fraction of DuckDB's memory (see peak RSS). Profiled and fixed
  in earlier rounds: JSON lines are parsed into borrowed (key, value) pairs instead of a
  `serde_json::Value` map per line, `dt` is computed once per day, the key is formatted into a
  reused buffer, no min/max statistics on near-unique text, and mimalloc. This round: each line
  is UTF-8-checked once with SIMD and borrowed instead of copied, the per-line lock on the
  shared counters is gone, `dt` text is formatted by hand (chrono's strftime was 4%), and text
  columns outside the bucket/sort key get no min/max statistics (comparisons were ~8%; in files
  sorted by the key they prune nothing). This round: `cuve ingest` keeps the memory mimalloc
  frees for reuse (purge delay -1) instead of returning it to the OS after a second and
  faulting it back in, zeroed: system time 12 to 7 s, wall 37 to 34 s, peak RSS 2.0 to 2.6 GiB
  (two runs each). This round (3 M-line subset, alternating binaries, three runs each; user
  CPU of `cuve ingest`): (1) a line's keys are matched to the table's columns once per key
  layout instead of searched for every column (~70 string comparisons a line), and splitting by
  partition no longer builds a key per row: 6.3 to 6.05 s; (2) binaries built for the CPU
  (AES-NI for the hash with which the Parquet dictionary encoder interns every value): 6.05 to
  5.6 s; (3) the decoder's column builders start each batch with the last batch's capacity
  (growing them re-faulted fresh memory), the unique key and `dt` are formatted without
  `core::fmt`, and files are sorted on a single text key through 16-byte integer prefixes
  (whole-string comparisons were 40% of ingest's `memcmp`; rows of one key now keep their
  arrival order, which is time order, and the files came out 3% smaller): 5.15 to 4.85 s,
  system time 1.2 to 0.85 s, wall 3.4 to 3.0 s; (4) flat JSON lines (keys and strings without escapes,
  literals, integers) are read by a direct scanner, everything else still by serde_json (a
  test checks both give the same fields): 5.11 to 4.84 s. Tried and not kept: copying the rows
  only once, gathering each file's rows from the whole 2 M-line batch (slower: the gather jumps
  across the batch's memory), and `memchr` for the ends of JSON strings (the values are too
  short for it to pay). What remains (perf): the Parquet dictionary encoder interning every
  value of the ten dictionary-encoded columns ~16% (arrow-rs re-interns even an Arrow
  dictionary array), JSON scanning and building the Arrow columns ~25%, LZ4 ~5%, the copies
  (split by bucket, sort) ~8%, and kernel time (reading 14 GB of raw input, writing the
  files, page faults) ~12%.
"""
    # The sections other scripts write (SECTIONS) are kept as they last wrote them.
    path = ROOT / "benches" / "RESULTS.md"
    old = path.read_text() if path.exists() else ""
    for begin, end in SECTIONS.values():
        if begin in old and end in old:
            report = report.rstrip("\n") + "\n\n" + old[old.index(begin): old.index(end) + len(end)] + "\n"
    path.write_text(report)
    print(report)


SCALING_DAYS = (3, 10, 30)


def run_scaling(a, data, raw, home30, cuve, bench, user, secs30, lines30, duck30):
    """The scaling shapes (benches/scaling/) on the last 3, 10 and 30 days of the month: the
    3- and 10-day tables are ingested from the same raw files (symlinked), so a one-day query
    reads the same day at every size. Cuve through Flight and DuckDB on the same files."""
    qdir = ROOT / "benches/scaling"
    out = {}
    for days in SCALING_DAYS:
        if days == 30:
            home, ingest = home30, {"lines": lines30, "seconds": secs30, "duckdb_seconds": duck30["seconds"]}
        else:
            base = data / f"days-{days}"
            shutil.rmtree(base, ignore_errors=True)
            keep = {f"201910{d:02d}" for d in range(31 - days, 31)}
            for f in raw.glob("*/*.jsonl"):
                if f.stem in keep:
                    dst = base / "raw" / f.parent.name / f.name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    dst.symlink_to(f.resolve())
            home = base / "cuve-home"
            sh([bench, "setup", "--home", home])
            t = time.perf_counter()
            o = json.loads(sh([cuve, "--home", home, "ingest", "--table", "korea_naver_log.stream_log", "--json", base / "raw"], capture_output=True, text=True).stdout)
            secs = time.perf_counter() - t
            sh([cuve, "--home", home, "ingest", "--table", "korea_naver_log.user_profile", "--json", data / "profiles"], capture_output=True)
            d = json.loads(sh([sys.executable, ROOT / "benches/peers.py", "ingest", base / "raw", base / "duck-ingest"], capture_output=True, text=True).stdout)
            shutil.rmtree(base / "duck-ingest", ignore_errors=True)
            ingest = {"lines": o["written"], "seconds": secs, "duckdb_seconds": d["seconds"]}
        fj = data / f"scaling-flight-{days}.json"
        dj = data / f"scaling-duckdb-{days}.json"
        sh([sys.executable, ROOT / "benches/flight_bench.py", cuve, home, qdir, user, str(a.runs), fj])
        sh([sys.executable, ROOT / "benches/peers.py", "queries", "duckdb", home, qdir, user, str(a.runs), dj, data])
        out[days] = {"ingest": ingest, "cuve": json.loads(fj.read_text()), "duckdb": json.loads(dj.read_text())}
    return out


def scaling_report(scaling):
    names = sorted(q for q in scaling[30]["cuve"] if not q.startswith("_"))
    head = "| shape | " + " | ".join(f"Cuve {d} d ms" for d in SCALING_DAYS) + " | " + " | ".join(f"DuckDB {d} d ms" for d in SCALING_DAYS) + " | identical |"
    lines = [head, "|---|" + "---|" * (2 * len(SCALING_DAYS) + 1)]
    for q in names:
        same = all(canon(scaling[d]["cuve"][q]["rows"]) == canon(scaling[d]["duckdb"][q]["rows"]) for d in SCALING_DAYS)
        lines.append(
            f"| {q} | " + " | ".join(f"{scaling[d]['cuve'][q]['median'] * 1000:.1f}" for d in SCALING_DAYS) + " | "
            + " | ".join(f"{scaling[d]['duckdb'][q]['median'] * 1000:.1f}" for d in SCALING_DAYS) + f" | {'yes' if same else '**NO**'} |"
        )
    lines.append(
        "| ingest (s) | " + " | ".join(f"{scaling[d]['ingest']['seconds']:.1f}" for d in SCALING_DAYS) + " | "
        + " | ".join(f"{scaling[d]['ingest']['duckdb_seconds']:.1f}" for d in SCALING_DAYS) + " | |"
    )
    lines.append(
        "| ingest lines | " + " | ".join(f"{scaling[d]['ingest']['lines']:,}" for d in SCALING_DAYS) + " | | | | |"
    )
    return "\n".join(lines), names


def scaling_svg(scaling, names, path):
    """A log-log line chart of the scaling shapes (Cuve through Flight solid, DuckDB dashed)."""
    w, h, left, right, top, bottom = 720, 420, 70, 230, 30, 50
    colors = ["#1b7837", "#2166ac", "#b2182b", "#e08214", "#762a83", "#4d4d4d"]
    vals = [scaling[d][e][q]["median"] * 1000 for d in SCALING_DAYS for e in ("cuve", "duckdb") for q in names]
    lo, hi = math.log10(max(min(vals), 0.1)) - 0.1, math.log10(max(vals)) + 0.1
    xs = {d: left + (w - left - right) * (math.log10(d) - math.log10(3)) / (math.log10(30) - math.log10(3)) for d in SCALING_DAYS}
    y = lambda v: top + (h - top - bottom) * (1 - (math.log10(max(v, 0.1)) - lo) / (hi - lo))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">Time vs table size (log-log). Solid: Cuve via Flight SQL; dashed: DuckDB</text>']
    for p in range(math.floor(lo), math.ceil(hi) + 1):
        for m in (1, 2, 5):
            v = m * 10 ** p
            if lo <= math.log10(v) <= hi:
                out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
                out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g} ms</text>')
    for d, x in xs.items():
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{h - bottom}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{h - bottom + 18}" text-anchor="middle">{d} days</text>')
    for i, q in enumerate(names):
        c = colors[i % len(colors)]
        for e, dash in (("cuve", ""), ("duckdb", ' stroke-dasharray="5,4"')):
            pts = " ".join(f"{xs[d]:.1f},{y(scaling[d][e][q]['median'] * 1000):.1f}" for d in SCALING_DAYS)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        out.append(f'<line x1="{w - right + 12}" x2="{w - right + 36}" y1="{top + 20 * i + 10}" y2="{top + 20 * i + 10}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{w - right + 42}" y="{top + 20 * i + 14}">{q}</text>')
    out.append("</svg>")
    pathlib.Path(path).write_text("\n".join(out))


def version(module):
    try:
        return __import__(module).__version__
    except ImportError:
        return "?"


def qkey(name):
    m = re.match(r"q(\d+)", name)
    return (int(m.group(1)) if m else 1 << 30, name)


if __name__ == "__main__":
    main()
