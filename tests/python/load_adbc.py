"""A bounded load test of `cuve serve` through the real ADBC driver (run by
cli/tests/it/flight.rs, loopback only).

Eight good clients run mixed queries (plain, parameterised, aggregations) on their own
connections while: one client sends bad input (3,000-term expressions, a Date64 parameter of
-2**63, unknown tables, 3,000 UNION branches), one client drops its connection in the middle of
a large result, and a ninth ticket is revoked half way through. Asserted: no good client sees an
error, the bad inputs get clear errors, the revoked ticket is refused from then on, the server
stays up and its resident memory stays flat: the same mixed load runs CUVE_LOAD_PHASES times
and the last phases may not sit more than CUVE_LOAD_FLAT_MIB MiB above the first ones. Prints p50/p99 latency
and the server's RSS after each phase.

Environment: CUVE_URI, CUVE_SECRET (analyst), CUVE_REVOKED_SECRET and CUVE_REVOKE_CMD (a
command line that revokes it), CUVE_SERVER_PID, CUVE_ROUNDS (queries per good client),
CUVE_LOAD_SECONDS (deadline), CUVE_LOAD_PHASES (default 4), CUVE_LOAD_FLAT_MIB (default 32).
"""

import os
import shlex
import statistics
import subprocess
import sys
import threading
import time

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa

URI = os.environ["CUVE_URI"]
SECRET = os.environ["CUVE_SECRET"]
REVOKED = os.environ["CUVE_REVOKED_SECRET"]
REVOKE_CMD = shlex.split(os.environ["CUVE_REVOKE_CMD"])
PID = int(os.environ["CUVE_SERVER_PID"])
ROUNDS = int(os.environ.get("CUVE_ROUNDS", "25"))
DEADLINE = time.monotonic() + float(os.environ.get("CUVE_LOAD_SECONDS", "120"))
PHASES = int(os.environ.get("CUVE_LOAD_PHASES", "4"))
FLAT_MIB = int(os.environ.get("CUVE_LOAD_FLAT_MIB", "32"))

QUERIES = [
    ("SELECT COUNT(*) FROM korea_naver_log.stream_log", ()),
    ("SELECT COUNT(*) FROM korea_naver_log.stream_log WHERE dt = ?", ("2019-10-01",)),
    ("SELECT query, COUNT(*) AS n FROM korea_naver_log.stream_log GROUP BY query ORDER BY n DESC LIMIT 5", ()),
    ("SELECT dt, COUNT(DISTINCT user_id) FROM korea_naver_log.stream_log GROUP BY dt", ()),
    ("SELECT 1", ()),
]


def connect(secret):
    return flight_sql.connect(URI, db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {secret}"})


def rss_kib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


latencies = []
good_errors = []
bad_results = []
revoked_results = []
lock = threading.Lock()


def good(i):
    with connect(SECRET) as conn, conn.cursor() as cur:
        for r in range(ROUNDS):
            if time.monotonic() > DEADLINE:
                return
            sql, params = QUERIES[(i + r) % len(QUERIES)]
            t = time.perf_counter()
            try:
                cur.execute(sql, parameters=params or None)
                cur.fetch_arrow_table()
            except Exception as e:  # noqa: BLE001
                with lock:
                    good_errors.append(f"{sql}: {e}")
                continue
            with lock:
                latencies.append(time.perf_counter() - t)


def bad():
    inputs = [
        ("SELECT " + "+".join(["1"] * 3000), (), "too deep"),
        (" UNION ALL ".join(f"SELECT {i}" for i in range(3000)), (), "too large"),
        ("SELECT * FROM korea_naver_log.no_such_table", (), "not found"),
        ("SELECT 1 WHERE " + " OR ".join(["1=1"] * 3000), (), "too deep"),
    ]
    for _ in range(3):
        for sql, params, expect in inputs:
            if time.monotonic() > DEADLINE:
                return
            try:
                with connect(SECRET) as conn, conn.cursor() as cur:
                    cur.execute(sql, parameters=params or None)
                    cur.fetchall()
                bad_results.append(f"accepted: {sql[:60]}")
            except Exception as e:  # noqa: BLE001
                if expect not in str(e):
                    bad_results.append(f"unclear error for {sql[:60]}: {e}")
        # A parameter that panicked the server before.
        try:
            with connect(SECRET) as conn, conn.cursor() as cur:
                cur.execute("SELECT ? AS d", parameters=pa.table({"p": pa.array([-(2**63)], type=pa.date64())}))
                cur.fetchall()
        except Exception:  # noqa: BLE001 - an error of this call is fine; a dead server is not
            pass


def disconnecting():
    for _ in range(3):
        if time.monotonic() > DEADLINE:
            return
        conn = connect(SECRET)
        cur = conn.cursor()
        cur.execute("SELECT * FROM korea_naver_log.stream_log")
        reader = cur.fetch_record_batch()
        reader.read_next_batch()
        # Gone in the middle of the result.
        conn.close()


def revoked_client(revoked_at):
    with connect(REVOKED) as conn, conn.cursor() as cur:
        for _ in range(ROUNDS * 4):
            if time.monotonic() > DEADLINE:
                return
            when = time.monotonic()
            try:
                cur.execute("SELECT 1")
                cur.fetchall()
                revoked_results.append((when, True))
            except Exception:  # noqa: BLE001
                revoked_results.append((when, False))
            time.sleep(0.02)
            if revoked_at and revoked_results and not revoked_results[-1][1]:
                return


def mixed_phase(revoked_at=None):
    """Eight good clients with the bad, the disconnecting and (once) the revoked client."""
    threads = [threading.Thread(target=good, args=(i,)) for i in range(8)]
    threads += [threading.Thread(target=bad), threading.Thread(target=disconnecting)]
    if revoked_at is not None:
        threads.append(threading.Thread(target=revoked_client, args=(revoked_at,)))
    for t in threads:
        t.start()
    if revoked_at is not None:
        time.sleep(1.0)
        subprocess.run(REVOKE_CMD, check=True, capture_output=True)
        revoked_at.append(time.monotonic())
    for t in threads:
        t.join()


def main():
    # Warm up with the good load (caches, pooled sessions and the allocator reach their size).
    warm = [threading.Thread(target=good, args=(i,)) for i in range(8)]
    for t in warm:
        t.start()
    for t in warm:
        t.join()
    latencies.clear()
    rss = [rss_kib()]
    # The first mixed phase revokes a ticket under load; the same mixed load then runs again
    # PHASES - 1 times. What the server holds after the first one is its working set; what
    # keeps growing phase after phase is what a long-running server would leak.
    revoked_at = []
    mixed_phase(revoked_at)
    rss.append(rss_kib())
    for _ in range(PHASES - 1):
        if time.monotonic() > DEADLINE:
            break
        mixed_phase()
        rss.append(rss_kib())
    # The server is alive and answers.
    with connect(SECRET) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 AS one")
        assert cur.fetch_arrow_table().column("one")[0].as_py() == 1

    failures = []
    if good_errors:
        failures.append(f"{len(good_errors)} errors for good clients, e.g. {good_errors[:3]}")
    if bad_results:
        failures.append(f"bad inputs: {bad_results[:5]}")
    after = [ok for when, ok in revoked_results if when > revoked_at[0] + 0.5]
    if any(after):
        failures.append("the revoked ticket still worked after its revocation")
    if not any(ok for _, ok in revoked_results):
        failures.append("the ticket to revoke never worked")
    if len(rss) < PHASES + 1:
        failures.append(
            f"only {len(rss) - 1} of {PHASES} mixed phases ran before the deadline "
            f"(CUVE_LOAD_SECONDS); memory flatness needs them all"
        )
    elif PHASES < 4:
        failures.append("CUVE_LOAD_PHASES must be at least 4 (two to settle, two to compare)")
    else:
        # Flat: after the first two mixed phases (the working set), the lowest of the last two
        # samples may exceed the highest of the first two by at most FLAT_MIB. The allocator
        # keeps freed memory for reuse, so single samples move by ~20 MiB either way; a leak
        # moves them all up.
        growth = min(rss[-2:]) - max(rss[1:3])
        if growth > FLAT_MIB * 1024:
            failures.append(f"server memory grew by {growth // 1024} MiB over {len(rss) - 1} phases")
    lat = sorted(latencies)
    p50 = statistics.median(lat) * 1000 if lat else float("nan")
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000 if lat else float("nan")
    print(
        f"load: {len(lat)} good queries, p50 {p50:.1f} ms, p99 {p99:.1f} ms; server RSS (MiB) "
        f"after warm-up and after each mixed phase: {[r // 1024 for r in rss]}"
    )
    if failures:
        for f in failures:
            print("FAIL", f)
        sys.exit(1)
    print("load ok")


if __name__ == "__main__":
    main()
