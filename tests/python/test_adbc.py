"""Cuve's Flight SQL endpoint through the real ADBC driver (adbc-driver-flightsql).

Run by cli/tests/it/flight.rs, which starts `cuve serve` on a free loopback port and passes:
CUVE_URI, CUVE_SECRET (analyst ticket: SELECT on korea_naver_log.stream_log only), CUVE_USER,
CUVE_ADMIN_SECRET and CUVE_EXPECTED_ROWS / CUVE_EXPECTED_DAY_ROWS.
"""

import os
import sys
import traceback

import adbc_driver_flightsql.dbapi as flight_sql

URI = os.environ["CUVE_URI"]
SECRET = os.environ["CUVE_SECRET"]
USER = os.environ["CUVE_USER"]
ADMIN = os.environ["CUVE_ADMIN_SECRET"]
ROWS = int(os.environ["CUVE_EXPECTED_ROWS"])
DAY_ROWS = int(os.environ["CUVE_EXPECTED_DAY_ROWS"])


def connect(secret):
    return flight_sql.connect(URI, db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {secret}"})


def test_query():
    with connect(SECRET) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM korea_naver_log.stream_log")
        table = cur.fetch_arrow_table()
        assert table.column("n")[0].as_py() == ROWS, table
        cur.execute("SELECT query FROM korea_naver_log.stream_log WHERE query = '날씨' LIMIT 1")
        assert cur.fetch_arrow_table().column("query")[0].as_py() == "날씨"


def test_parameters():
    with connect(SECRET) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM korea_naver_log.stream_log WHERE dt = ?", parameters=("2019-10-01",))
        assert cur.fetch_arrow_table().column("n")[0].as_py() == DAY_ROWS
        cur.execute("SELECT COUNT(*) AS n FROM korea_naver_log.stream_log WHERE dt = ? AND rank <= ?", parameters=("2019-10-01", 50))
        assert cur.fetch_arrow_table().column("n")[0].as_py() == DAY_ROWS


def test_get_objects_shows_only_granted_tables():
    with connect(SECRET) as conn:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        tables = []
        for catalog in objects:
            for schema in catalog["catalog_db_schemas"] or []:
                for t in schema["db_schema_tables"] or []:
                    tables.append((schema["db_schema_name"], t["table_name"]))
        assert tables == [("korea_naver_log", "stream_log")], tables


def test_wrong_ticket_fails():
    try:
        with connect("tk_000000000000.deadbeef") as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetch_arrow_table()
    except Exception as e:  # noqa: BLE001 - the driver raises its own error types
        assert "unauthenticated" in str(e).lower() or "invalid, expired or revoked" in str(e), e
        return
    raise AssertionError("a wrong ticket was accepted")


def test_forbidden_table_fails_like_a_missing_one():
    messages = []
    for table in ("user_profile", "no_such_table"):
        try:
            with connect(SECRET) as conn, conn.cursor() as cur:
                cur.execute(f"SELECT * FROM korea_naver_log.{table}")
                cur.fetch_arrow_table()
        except Exception as e:  # noqa: BLE001
            messages.append(str(e).replace(table, "X"))
            continue
        raise AssertionError(f"reading {table} succeeded")
    assert "not found" in messages[0], messages


def test_basic_auth_with_user_and_ticket():
    with flight_sql.connect(URI, db_kwargs={"username": USER, "password": SECRET}) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM korea_naver_log.stream_log")
        assert cur.fetch_arrow_table().column("n")[0].as_py() == ROWS


def test_updates_execute():
    with connect(ADMIN) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE korea_naver_log.notes (id BIGINT, note STRING)")
        cur.execute("INSERT INTO korea_naver_log.notes VALUES (1, '메모'), (2, 'memo')")
        conn.commit()
        cur.execute("SELECT note FROM korea_naver_log.notes ORDER BY id")
        assert cur.fetch_arrow_table().column("note").to_pylist() == ["메모", "memo"]


def test_typed_parameters_of_every_kind():
    import datetime
    import math

    with connect(SECRET) as conn, conn.cursor() as cur:
        cur.execute("SELECT ? AS v", parameters=(42,))
        t = cur.fetch_arrow_table()
        assert t.column("v")[0].as_py() == 42 and str(t.schema.field("v").type) == "int64", t
        cur.execute("SELECT length(?) AS n", parameters=("날씨'\\",))
        assert cur.fetch_arrow_table().column("n")[0].as_py() == 4
        for value in (float("inf"), float("-inf")):
            cur.execute("SELECT ? AS x", parameters=(value,))
            assert cur.fetch_arrow_table().column("x")[0].as_py() == value
        cur.execute("SELECT ? AS x", parameters=(float("nan"),))
        assert math.isnan(cur.fetch_arrow_table().column("x")[0].as_py())
        ts = datetime.datetime(2019, 10, 1, 12, 30, 0)
        cur.execute("SELECT ? AS t", parameters=(ts,))
        assert cur.fetch_arrow_table().column("t")[0].as_py() == ts
        cur.execute(
            "SELECT COUNT(*) AS n FROM korea_naver_log.stream_log WHERE log_time >= ? AND dt = ?",
            parameters=(datetime.datetime(2019, 10, 1, 0, 0, 0), "2019-10-01"),
        )
        assert cur.fetch_arrow_table().column("n")[0].as_py() == DAY_ROWS
        cur.execute("SELECT ? AS d", parameters=(datetime.date(2019, 10, 1),))
        assert cur.fetch_arrow_table().column("d")[0].as_py() == datetime.date(2019, 10, 1)
        cur.execute("SELECT ? AS s", parameters=("x'); DROP TABLE korea_naver_log.stream_log; --",))
        assert cur.fetch_arrow_table().column("s")[0].as_py().startswith("x')")
        cur.execute("SELECT COUNT(*) AS n FROM korea_naver_log.stream_log")
        assert cur.fetch_arrow_table().column("n")[0].as_py() == ROWS


def test_executemany_inserts_every_row():
    with connect(ADMIN) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE korea_naver_log.many (id BIGINT, note STRING)")
        cur.executemany(
            "INSERT INTO korea_naver_log.many VALUES (?, ?)",
            [(i, f"노트 {i}'") for i in range(100)],
        )
        conn.commit()
        cur.execute("SELECT COUNT(*) AS n, SUM(id) AS s FROM korea_naver_log.many")
        t = cur.fetch_arrow_table()
        assert (t.column("n")[0].as_py(), t.column("s")[0].as_py()) == (100, 4950), t


def test_a_bad_parameter_breaks_nothing_for_others():
    import pyarrow as pa

    with connect(SECRET) as conn, conn.cursor() as cur:
        extreme = pa.record_batch([pa.array([-(2**63)], type=pa.date64())], names=["d"])
        try:
            cur.execute("SELECT ? AS d", parameters=extreme)
            cur.fetch_arrow_table()
        except Exception as e:  # noqa: BLE001 - a clear error for this call; a broken server is not fine
            assert "outside the range of dates" in str(e), e
        else:
            raise AssertionError("a Date64 no date can hold was accepted")
    # Other tickets' prepared statements keep working.
    for secret in (ADMIN, SECRET):
        with connect(secret) as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM korea_naver_log.stream_log WHERE dt = ?", parameters=("2019-10-01",))
            assert cur.fetch_arrow_table().column("n")[0].as_py() == DAY_ROWS


def test_use_and_set_are_refused_not_ignored():
    for sql in ("USE korea_naver_log", "SET datafusion.execution.batch_size = 10"):
        try:
            with connect(ADMIN) as conn, conn.cursor() as cur:
                cur.execute(sql)
                cur.fetchall()
        except Exception as e:  # noqa: BLE001
            assert "carry over" in str(e), e
            continue
        raise AssertionError(f"{sql} reported success")


def test_huge_statements_get_an_error_and_the_server_lives():
    # Before: any ticket could abort `cuve serve` for everyone with a stack overflow.
    deep = [
        "SELECT " + "+".join(["1"] * 3000),
        "SELECT 1 WHERE " + " AND ".join(["1=1"] * 2000),
        " UNION ALL ".join(f"SELECT {i}" for i in range(3000)),
    ]
    for sql in deep:
        try:
            with connect(SECRET) as conn, conn.cursor() as cur:
                cur.execute(sql)
                cur.fetchall()
        except Exception as e:  # noqa: BLE001
            assert "too deep" in str(e) or "too large" in str(e), e
            continue
        raise AssertionError("a 3,000-term statement was accepted")
    with connect(SECRET) as conn, conn.cursor() as cur:
        cur.execute("SELECT " + "+".join(["1"] * 500) + " AS n")
        assert cur.fetch_arrow_table().column("n")[0].as_py() == 500


def main():
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    passed = failed = 0
    for t in tests:
        try:
            t()
            passed += 1
            print(f"ok   {t.__name__}")
        except Exception:  # noqa: BLE001
            failed += 1
            print(f"FAIL {t.__name__}")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
