"""The benchmark's queries on a Ballista cluster on this machine (`cuve scheduler` and two
`cuve executor` with one task slot each, loopback, a cluster secret) next to single-node Cuve,
both through `cuve serve` with the ADBC driver (benches/flight_bench.py, the notebook's path).
Per query: the two medians and their ratio, the rows compared, and from the scheduler (`cuve
cluster status --json` and its REST API after one more run) the stages, tasks per executor,
bytes shuffled and each stage's task times. From those per-stage costs, what 10 and 100
executors would take (the model is printed with the table). Writes benches/CLUSTER.md and
the cluster section of benches/RESULTS.md (between its markers).

Usage: benches/run.sh --cluster [--scale 1.0] [--runs 5]
(or: cluster_bench.py --scale S --runs N [--dir DIR], with the release binaries built).
"""

import argparse
import hashlib
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benches"))
from run import TARGET, canon, machine, qkey, sh, write_section  # noqa: E402

SECRET = "cuve-bench-cluster-secret-0123456789"
SLOTS = 2  # two executors, one task slot each


def warehouse(a, data, cuve, bench):
    """The benchmark's warehouse at this scale: the one `benches/run.sh` made, or a new one."""
    home = data / "cuve-home"
    user_file = data / "user.txt"
    if (home / "credentials").exists() and user_file.exists():
        return home, user_file.read_text().strip()
    user = sh([bench, "generate", "--dir", data, "--scale", str(a.scale)], capture_output=True, text=True).stdout.strip()
    shutil.rmtree(home, ignore_errors=True)
    sh([bench, "setup", "--home", home])
    sh([cuve, "--home", home, "ingest", "--table", "korea_naver_log.stream_log", "--json", data / "raw"], capture_output=True)
    sh([cuve, "--home", home, "ingest", "--table", "korea_naver_log.user_profile", "--json", data / "profiles"], capture_output=True)
    user_file.write_text(user)
    return home, user


def start_cluster(cuve, work, env):
    sched = subprocess.Popen([cuve, "scheduler", "--addr", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    addr = sched.stdout.readline().strip().removeprefix("cuve scheduler listening on ")
    procs = [sched]
    for i in range(2):
        with socket_port() as port:
            own = f"127.0.0.1:{port}"
        procs.append(subprocess.Popen(
            [cuve, "executor", "--scheduler", addr, "--addr", own, "--cores", "1", "--work-dir", work / f"ex{i}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.time() + 30
    while time.time() < deadline:
        st = status(cuve, addr, env)
        if len([e for e in st["executors"] if e["state"] == "up"]) == 2:
            return addr, procs
        time.sleep(0.5)
    raise SystemExit("the executors did not register within 30 s")


class socket_port:
    def __enter__(self):
        import socket
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        return self.s.getsockname()[1]

    def __exit__(self, *_):
        self.s.close()


def status(cuve, addr, env):
    out = sh([cuve, "--cluster", addr, "cluster", "status", "--json"], env=env, capture_output=True, text=True)
    return json.loads(out.stdout)


def user_agent(secret):
    """The token a cluster's processes show each other (cluster/src/secret.rs)."""
    return "cuve-cluster/" + hashlib.sha256(b"cuve-cluster-secret-v1\0" + secret.encode()).hexdigest()


def stage_costs(addr, job_id):
    """Per stage of a job: tasks and their execution times (ms), from the scheduler's REST API."""
    req = urllib.request.Request(f"http://{addr}/api/job/{job_id}/stages", headers={"User-Agent": user_agent(SECRET)})
    stages = json.loads(urllib.request.urlopen(req, timeout=10).read())["stages"]
    out = []
    for s in stages:
        times = [t["exec_duration"] for t in s["tasks"] if t]
        out.append({"stage": s["stage_id"], "tasks": len(times), "task_ms": times})
    return out


def predict(one_ms, stages, executors):
    """The model: a stage costs a fixed overhead plus its tasks' work spread over the slots
    (`executors` × 2); the overhead per stage is what the measured run leaves after its work."""
    work = sum(sum(s["task_ms"]) / max(1, min(s["tasks"], SLOTS)) for s in stages)
    # The task times are from one more run than the medians: a slower one is scaled down to
    # the measured time (which then leaves no overhead), so more slots never predict more time.
    scale = min(1.0, one_ms / work) if work > 0 else 1.0
    overhead = max(0.0, one_ms - work) / max(1, len(stages))
    slots = executors * SLOTS
    more = sum(sum(s["task_ms"]) / max(1, min(s["tasks"], slots)) for s in stages) * scale
    return len(stages) * overhead + more, overhead


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the month (30 days × 1,000,000 rows)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default=str(ROOT / "benches" / "data"))
    a = ap.parse_args()
    cuve, bench = TARGET / "cuve", TARGET / "cuve-bench"
    data = pathlib.Path(a.dir) / f"scale-{a.scale}"
    data.mkdir(parents=True, exist_ok=True)
    home, user = warehouse(a, data, cuve, bench)
    qdir = ROOT / "benches/queries"
    env = dict(os.environ, CUVE_CLUSTER_SECRET=SECRET)
    env.pop("CUVE_CLUSTER", None)
    work = pathlib.Path(tempfile.mkdtemp(prefix="cuve-cluster-bench-"))
    single, cluster = data / "results-flight-single.json", data / "results-flight-cluster.json"
    sh([sys.executable, ROOT / "benches/flight_bench.py", cuve, home, qdir, user, str(a.runs), single], env=env)
    addr, procs = start_cluster(cuve, work, env)
    try:
        sh([sys.executable, ROOT / "benches/flight_bench.py", cuve, home, qdir, user, str(a.runs), cluster],
           env=dict(env, CUVE_CLUSTER=addr))
        # One more run of each query, to read what ran where.
        placed = {}
        for path in sorted(qdir.glob("*.sql"), key=lambda p: qkey(p.stem)):
            sql = path.read_text().replace("{user}", user)
            sql = re.sub(r"\b(FROM|JOIN)\s+(stream_log|user_profile)\b", r"\1 korea_naver_log.\2", sql)
            sh([cuve, "--home", home, "--cluster", addr, "sql", "--format", "csv", "-e", sql], env=env, capture_output=True)
            job = status(cuve, addr, env)["jobs"][0]
            placed[path.stem] = {"job": job, "stages": stage_costs(addr, job["id"])}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    report(a, json.loads(single.read_text()), json.loads(cluster.read_text()), placed)


def report(a, single, cluster, placed):
    mib = lambda b: f"{b / 2**20:.1f} MiB" if b >= 2**20 else f"{b / 1024:.1f} KiB"
    rows, predictions, overheads = [], [], []
    for q in sorted(placed, key=qkey):
        s, c, p = single[q], cluster[q], placed[q]
        same = canon(s["rows"]) == canon(c["rows"])
        per = sorted(p["job"]["tasks_per_executor"].values(), reverse=True)
        rows.append(
            f"| {q} | {s['median']*1000:.1f} | {c['median']*1000:.1f} | {c['median']/s['median']:.2f}x | "
            f"{p['job']['stages']} | {' + '.join(map(str, per)) or '-'} | {mib(p['job']['shuffle_bytes'])} | {'yes' if same else '**NO**'} |"
        )
        one_ms = c["median"] * 1000
        p10, overhead = predict(one_ms, p["stages"], 10)
        p100, _ = predict(one_ms, p["stages"], 100)
        overheads.append(overhead)
        predictions.append(f"| {q} | {one_ms:.0f} | {overhead:.0f} | {p10:.0f} | {p100:.0f} |")
    overheads.sort()
    ratios = [cluster[q]["median"] / single[q]["median"] for q in placed]
    geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
    paper = f"""## What more executors would take (on paper)

From the scheduler's task times of each stage (`/api/job/{{id}}/stages`) of the run above: a
stage costs a fixed overhead (scheduling, task launch, plan decoding, shuffle fetch set-up)
plus its tasks' execution time spread over the free task slots. The overhead per stage is what
the measured cluster time leaves after the tasks' work on two slots (median here
{overheads[len(overheads)//2]:.0f} ms); it does not shrink with more executors. Predicted
time on 10 and 100 executors of two slots each, for the same data:

| query | measured, 2 slots (ms) | overhead per stage (ms) | 10 executors (ms) | 100 executors (ms) |
|---|---|---|---|---|
{chr(10).join(predictions)}

Assumptions and limits: every task of a stage takes the stage's mean task time (no skew; a stage
cannot finish before its slowest task); shuffle data moves as fast as it does here (loopback;
a real network adds bytes shuffled / bandwidth per stage); the data stays the same size, so a
stage with fewer tasks than slots gains nothing from more executors (the month has 16 buckets
and 30 days: most scans have at most a few hundred file groups). The plans are the ones cut for
this cluster's 2 slots; on a larger cluster the gateway cuts scans into as many file groups as
it has slots, which the model does not re-plan, so its figures for stages of few tasks are an
upper bound. For a larger table the work term grows with the data and the overhead does not,
which is where a cluster pays.
"""
    text = f"""# Cuve on a Ballista cluster: benchmark

Regenerated by `benches/run.sh --cluster --scale {a.scale} --runs {a.runs}` on
{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}. Machine: {machine()}.

The benchmark's queries (`benches/queries/`) on the warehouse `benches/run.sh` builds at this
scale ({a.scale} × 30 days × 1,000,000 log lines), through `cuve serve` with the ADBC Flight SQL
driver, an untimed warm-up then {a.runs} runs each, medians:

- **single node**: `cuve serve` as a user starts it;
- **cluster**: `cuve serve --cluster` (the gateway) with `cuve scheduler` and two
  `cuve executor --cores 1` on this same machine (loopback, `CUVE_CLUSTER_SECRET` set): the
  same cores as single node, plus scheduling, plan encoding, shuffle files and Flight fetches.

Stages, tasks per executor and bytes shuffled are from `cuve cluster status --json` after one
more run of the query; the rows of both are compared.

| query | single node (ms) | cluster (ms) | overhead | stages | tasks per executor | shuffled | same rows |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

{paper}"""
    (ROOT / "benches" / "CLUSTER.md").write_text(text)
    # RESULTS.md carries the summary and the prediction; CLUSTER.md the per-query table.
    write_section("cluster", f"""
## On a Ballista cluster (`benches/run.sh --cluster --scale {a.scale} --runs {a.runs}`)

The benchmark's queries through `cuve serve --cluster` on a scheduler and two one-slot
executors on this machine, next to single-node `cuve serve` on the same cores (per query:
`benches/CLUSTER.md`): geometric mean of cluster / single node **{geo:.2f}x**, from
{min(ratios):.2f}x to {max(ratios):.2f}x; every query gave the same rows:
{'yes' if all(canon(single[q]['rows']) == canon(cluster[q]['rows']) for q in placed) else '**NO**'}.
On one machine a cluster mostly adds its per-stage cost.

#{paper.rstrip()}
""")
    print(text)


if __name__ == "__main__":
    main()
