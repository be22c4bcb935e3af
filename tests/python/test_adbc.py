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
