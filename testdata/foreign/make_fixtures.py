#!/usr/bin/env python3
"""Regenerate Cuve's foreign-writer fixtures in testdata/foreign/.

The files next to this script were written by real third-party writers, not by Cuve:

  * Apache Spark (pyspark 4.3.0: Hive 2.3.10 metastore jars, parquet-mr 1.17.0, ORC Java 2.3.0),
    through Hive tables (``enableHiveSupport()``, embedded Derby metastore):
      spark_str16/      STRING-bucketed, 16 buckets, SORTED BY, Parquet, 2 partitions, 2 inserts
      spark_big8/       BIGINT-bucketed, 8 buckets, Parquet, 1 partition
      spark_orc8/       STRING-bucketed, 8 buckets, SORTED BY, ORC, 1 partition
      spark_plain_orc/  not bucketed, not partitioned, ORC, one column of every common type
  * pyarrow 26.0.1 (ORC C++ 2.2.2): pyarrow_orc/dt=2024-01-01/000000_0 (no extension, 8 stripes,
    row index stride 100, uncompressed)
  * pyorc 0.12.0 (ORC C++ 2.3.1): pyorc_orc/000000_0 (bloom filter on user_id, 3 stripes, ZLIB)

expected.json is computed from the files themselves (pyarrow), not from Spark's hash: per file its
row count, per bucketed table the observed user id -> file bucket mapping, and an independent
Python Hive v1 hash that must agree with it (the script fails otherwise).

How to run (about a minute; needs Java 17 and a scratch venv OUTSIDE the repo):

    python3 -m venv /var/tmp/fixture-venv
    /var/tmp/fixture-venv/bin/pip install pyspark==4.3.0 pyarrow==26.0.1 pyorc==0.12.0
    /var/tmp/fixture-venv/bin/python testdata/foreign/make_fixtures.py

CI does NOT run this script (pyspark is a ~490 MB sdist); CI only reads the committed files. The
data is deterministic (seeded), but Spark puts a random UUID in every file name and writes
timestamps into metadata, so a rerun changes file names and bytes; it rewrites expected.json to
match. Spark's warehouse and Derby metastore live in a temporary directory that is deleted
afterwards (pass --keep-tmp to keep it). Hidden ``.crc`` files and ``_SUCCESS`` markers written by
Hadoop's local file system are copied on purpose: readers must ignore them.
"""

import argparse
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.orc as paorc
import pyarrow.parquet as pq

try:
    import pyorc
except ImportError:  # optional writer
    pyorc = None

HERE = Path(__file__).resolve().parent
SEED = 20240101
SPECIAL_ID = "ucf28ed658abe"  # exactly 16 rows in spark_str16, across both partitions
SPARK_TABLES = ["spark_str16", "spark_big8", "spark_orc8", "spark_plain_orc"]

DDL = {
    "spark_str16": (
        "CREATE TABLE logs.spark_str16 (user_id STRING, n INT, query STRING) "
        "PARTITIONED BY (dt STRING) CLUSTERED BY (user_id) SORTED BY (user_id) "
        "INTO 16 BUCKETS STORED AS PARQUET"
    ),
    "spark_big8": (
        "CREATE TABLE logs.spark_big8 (user_id BIGINT, n INT) "
        "PARTITIONED BY (dt STRING) CLUSTERED BY (user_id) INTO 8 BUCKETS STORED AS PARQUET"
    ),
    "spark_orc8": (
        "CREATE TABLE logs.spark_orc8 (user_id STRING, n INT, query STRING) "
        "PARTITIONED BY (dt STRING) CLUSTERED BY (user_id) SORTED BY (user_id) "
        "INTO 8 BUCKETS STORED AS ORC"
    ),
    "spark_plain_orc": (
        "CREATE TABLE logs.spark_plain_orc (c_string STRING, c_int INT, c_bigint BIGINT, "
        "c_double DOUBLE, c_boolean BOOLEAN, c_date DATE, c_timestamp TIMESTAMP, "
        "c_decimal DECIMAL(10,2), c_array ARRAY<STRING>, c_map MAP<STRING,INT>, "
        "c_struct STRUCT<a:INT,b:STRING>) STORED AS ORC"
    ),
}
PLAIN_ORC_NOTES = (
    "rows are what the file holds (read by pyarrow; Spark reads the same). ORC Java 2.3.0 "
    "(Spark 4.3.0) stores the inserted TIMESTAMP 1969-12-31 23:59:59.5 as "
    "1970-01-01 00:00:00.5: values in the second before the epoch gain one second (Spark's "
    "own Parquet round-trips it; other pre-epoch values are fine). Session and JVM time zone "
    "were UTC; ORC type is timestamp (not timestamp with local time zone).")
BUCKETS = {"spark_str16": 16, "spark_big8": 8, "spark_orc8": 8}

QUERIES = [
    "날씨",
    "서울 맛집 추천",
    "검색어 \"따옴표\" 테스트",
    "it's a 'quoted' query",
    "C:\\Users\\kim\\문서",
    "back\\\\slash and \\n literal",
    "rust arrow parquet",
    "SELECT * FROM t WHERE q = 'x'",
    "tab\there",
    "emoji 🙂 query",
    "",
    None,
]


# ---------------------------------------------------------------------------------------------
# Hive v1 bucket hash (Hive ObjectInspectorUtils.hashCode / Spark HiveHash), written from the spec.
def _i32(x):
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >= (1 << 31) else x


def hive_v1_hash_string(s):
    if s is None:
        return 0
    r = 0
    for b in s.encode("utf-8"):
        r = _i32(31 * r + (b - 256 if b >= 128 else b))
    return r


def hive_v1_hash_bigint(v):
    if v is None:
        return 0
    u = v & 0xFFFFFFFFFFFFFFFF  # two's complement 64-bit, so >> is >>>
    return _i32(u ^ (u >> 32))


def hive_v1_bucket(h, n):
    return (h & 0x7FFFFFFF) % n


# ---------------------------------------------------------------------------------------------
# Deterministic data.
def string_ids(rng, count):
    ids = {SPECIAL_ID}
    while len(ids) < count:
        ids.add("u%012x" % rng.getrandbits(48))
    return sorted(ids) + ["한글", "사용자1", "", None]


def str_rows(rng, ids, per_user, special_rows):
    rows = []
    for uid in ids:
        k = special_rows if uid == SPECIAL_ID else per_user(uid)
        for _ in range(k):
            rows.append((uid, rng.randint(-5, 999), rng.choice(QUERIES)))
    rng.shuffle(rows)
    return rows


def make_str16_inserts():
    rng = random.Random(SEED)
    ids = string_ids(rng, 200)
    half = len(ids) // 2
    # dt=2024-01-01, insert 1: every id (1-2 rows); insert 2: every other id (1 row), so most
    # buckets get a second file; dt=2024-01-02: the second half of the ids plus the specials.
    ins1 = str_rows(rng, ids, lambda u: rng.randint(1, 2), 5)
    ins2 = str_rows(rng, [u for u in ids[::2] if u != SPECIAL_ID] + [SPECIAL_ID],
                    lambda u: 1, 6)
    ins3 = str_rows(rng, [u for u in ids[half:] if u != SPECIAL_ID] + [SPECIAL_ID],
                    lambda u: rng.randint(1, 3), 5)
    return [("2024-01-01", ins1), ("2024-01-01", ins2), ("2024-01-02", ins3)]


def make_orc8_rows():
    rng = random.Random(SEED + 2)
    ids = string_ids(rng, 120)
    return str_rows(rng, ids, lambda u: rng.randint(1, 3), 7)


BIG_VALUES = [-3, -1, 0, 1, 5, 42, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32, 2**40 + 7,
              -(2**35), 123456789012, -987654321098, 2**63 - 1, -(2**63), None]


def make_big8_rows():
    rng = random.Random(SEED + 1)
    vals = list(BIG_VALUES)
    while len(vals) < 60:
        v = rng.randint(-(2**63), 2**63 - 1)
        if v not in vals:
            vals.append(v)
    rows = []
    for v in vals:
        for _ in range(rng.randint(1, 3)):
            rows.append((v, rng.randint(0, 999)))
    rng.shuffle(rows)
    return rows


def make_plain_rows():
    import datetime as dt
    ts = dt.datetime
    rows = [
        ("alpha", 1, 1, 1.5, True, dt.date(2024, 1, 1), ts(2024, 1, 1, 0, 0, 0),
         Decimal("0.01"), ["a", "b"], {"k1": 1, "k2": 2}, (1, "x")),
        ("한글 문자열", -1, -1, -2.25, False, dt.date(1970, 1, 1), ts(1970, 1, 1, 0, 0, 0),
         Decimal("-12345678.90"), [], {}, (None, None)),
        ("it's \"quoted\" \\ back", 2147483647, 9223372036854775807, 1e300, True,
         dt.date(9999, 12, 31), ts(2038, 1, 19, 3, 14, 8, 123456), Decimal("99999999.99"),
         ["한", None, ""], {"null_value": None}, (7, "한글")),
        ("", -2147483648, -9223372036854775808, -0.0, False, dt.date(1969, 12, 31),
         ts(1969, 12, 31, 23, 59, 59, 500000), Decimal("-99999999.99"), [None], {"z": -7},
         (-1, "")),
        ("nan", 0, 0, float("nan"), True, dt.date(2000, 2, 29), ts(2000, 2, 29, 12, 34, 56, 789),
         Decimal("0.00"), ["x"], {"a": 0}, (0, "b")),
        ("inf", 3, 4294967296, float("inf"), False, dt.date(1900, 1, 1), ts(1900, 1, 1, 0, 0, 1),
         Decimal("1.10"), ["p", "q", "r"], {"x": 1}, (3, None)),
        (None, None, None, None, None, None, None, None, None, None, None),
    ]
    rng = random.Random(SEED + 3)
    for i in range(8):
        rows.append((
            "row%02d" % i, rng.randint(-1000, 1000), rng.randint(-(10**12), 10**12),
            round(rng.uniform(-100, 100), 3), rng.random() < 0.5,
            dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 365)),
            ts(2024, 1, 1) + dt.timedelta(seconds=rng.randint(0, 86400 * 365),
                                          microseconds=rng.randint(0, 999999)),
            Decimal(rng.randint(-10**9, 10**9)) / 100,
            ["e%d" % j for j in range(rng.randint(0, 3))],
            {"m%d" % j: rng.randint(0, 9) for j in range(rng.randint(0, 2))},
            (i, "s%d" % i)))
    return rows


# ---------------------------------------------------------------------------------------------
# Spark.
def run_spark(tmp):
    from pyspark.sql import SparkSession
    from pyspark.sql import types as T

    warehouse = tmp / "warehouse"
    os.chdir(tmp)  # Derby and Spark drop files (derby.log, spark-warehouse) into the cwd
    java_opts = f"-Dderby.system.home={tmp} -Duser.timezone=UTC"
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("cuve-fixtures")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={tmp / 'metastore_db'};create=true")
        .config("spark.driver.extraJavaOptions", java_opts)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .enableHiveSupport()
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    try:
        spark.sql("CREATE DATABASE IF NOT EXISTS logs")
        for ddl in DDL.values():
            spark.sql(ddl)

        str_schema = T.StructType([T.StructField("user_id", T.StringType()),
                                   T.StructField("n", T.IntegerType()),
                                   T.StructField("query", T.StringType())])
        for dt, rows in make_str16_inserts():
            spark.createDataFrame(rows, str_schema).createOrReplaceTempView("src")
            spark.sql(f"INSERT INTO logs.spark_str16 PARTITION (dt='{dt}') "
                      "SELECT user_id, n, query FROM src")

        spark.createDataFrame(make_orc8_rows(), str_schema).createOrReplaceTempView("src")
        spark.sql("INSERT INTO logs.spark_orc8 PARTITION (dt='2024-01-01') "
                  "SELECT user_id, n, query FROM src")

        big_schema = T.StructType([T.StructField("user_id", T.LongType()),
                                   T.StructField("n", T.IntegerType())])
        spark.createDataFrame(make_big8_rows(), big_schema).createOrReplaceTempView("src")
        spark.sql("INSERT INTO logs.spark_big8 PARTITION (dt='2024-01-01') "
                  "SELECT user_id, n FROM src")

        plain_schema = T.StructType([
            T.StructField("c_string", T.StringType()),
            T.StructField("c_int", T.IntegerType()),
            T.StructField("c_bigint", T.LongType()),
            T.StructField("c_double", T.DoubleType()),
            T.StructField("c_boolean", T.BooleanType()),
            T.StructField("c_date", T.DateType()),
            T.StructField("c_timestamp", T.TimestampType()),
            T.StructField("c_decimal", T.DecimalType(10, 2)),
            T.StructField("c_array", T.ArrayType(T.StringType())),
            T.StructField("c_map", T.MapType(T.StringType(), T.IntegerType())),
            T.StructField("c_struct", T.StructType([T.StructField("a", T.IntegerType()),
                                                    T.StructField("b", T.StringType())])),
        ])
        spark.createDataFrame(make_plain_rows(), plain_schema).createOrReplaceTempView("src")
        spark.sql("INSERT INTO logs.spark_plain_orc SELECT * FROM src")

        meta = {"spark_version": spark.version}
        for t in SPARK_TABLES:
            props = spark.sql(f"SHOW TBLPROPERTIES logs.{t}").collect()
            meta[t] = {
                "tblproperties": {r[0]: r[1] for r in props
                                  if r[0] not in ("transient_lastDdlTime",)},
                "spark_row_count": spark.sql(f"SELECT count(*) FROM logs.{t}").collect()[0][0],
            }
        return warehouse / "logs.db", meta
    finally:
        spark.stop()


# ---------------------------------------------------------------------------------------------
# Non-Spark ORC writers.
def orc_table(seed, nrows):
    rng = random.Random(seed)
    ids = sorted({"u%012x" % rng.getrandbits(48) for _ in range(nrows // 4)})
    uids = sorted(rng.choice(ids) for _ in range(nrows))  # sorted: stripe min/max are useful
    ns = [rng.randint(-(2**40), 2**40) for _ in range(nrows)]
    scores = [None if i % 97 == 0 else round(rng.uniform(0, 1000), 4) for i in range(nrows)]
    return uids, ns, scores


def write_pyarrow_orc(out_dir):
    uids, ns, scores = orc_table(SEED + 4, 2000)
    table = pa.table({"user_id": pa.array(uids, pa.string()),
                      "n": pa.array(ns, pa.int64()),
                      "score": pa.array(scores, pa.float64())})
    path = out_dir / "pyarrow_orc" / "dt=2024-01-01" / "000000_0"
    path.parent.mkdir(parents=True)
    # ORC C++ only cuts a stripe between batches, and with compression on it estimates the
    # stripe size from 64 KiB compressed blocks (pyarrow cannot lower memory_block_size), so
    # small stripes need an uncompressed file: 8 stripes of 250 rows, row groups of 100 rows.
    paorc.write_table(table, str(path), batch_size=250, stripe_size=8 * 1024,
                      row_index_stride=100, compression="uncompressed")
    assert paorc.ORCFile(str(path)).nstripes >= 3


def write_pyorc(out_dir):
    uids, ns, scores = orc_table(SEED + 5, 3000)
    path = out_dir / "pyorc_orc" / "000000_0"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        w = pyorc.Writer(f, "struct<user_id:string,n:bigint,score:double>",
                         stripe_size=4096, row_index_stride=500, batch_size=500,
                         compression=pyorc.CompressionKind.ZLIB,
                         compression_block_size=4096, memory_block_size=4096,
                         bloom_filter_columns=["user_id"], bloom_filter_fpp=0.01)
        for row in zip(uids, ns, scores):
            w.write(row)
        w.close()
    with open(path, "rb") as f:
        assert pyorc.Reader(f).num_of_stripes >= 3


# ---------------------------------------------------------------------------------------------
# expected.json, computed from the files.
def is_hidden(name):
    return name.startswith(".") or name.startswith("_")


def data_files(table_dir):
    for p in sorted(table_dir.rglob("*")):
        if p.is_file() and not is_hidden(p.name):
            yield p


def jsonable(v):
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        if v == 0 and math.copysign(1, v) < 0:
            return "-0.0"
        return v
    if isinstance(v, Decimal):
        return str(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    return v


def read_file(p):
    """Return (pyarrow table, per-file format metadata)."""
    if p.suffix == ".parquet":
        f = pq.ParquetFile(p)
        md = f.metadata
        rg = md.row_group(0) if md.num_row_groups else None
        info = {
            "format": "parquet",
            "created_by": md.created_by,
            "row_groups": md.num_row_groups,
            "columns": {rg.column(i).path_in_schema: {
                "physical_type": rg.column(i).physical_type,
                "logical_type": str(f.schema.column(i).logical_type),
                "compression": rg.column(i).compression,
                "statistics": rg.column(i).is_stats_set,
            } for i in range(rg.num_columns)} if rg else {},
        }
        return f.read(), info
    f = paorc.ORCFile(str(p))
    info = {"format": "orc", "writer": f.writer, "software_version": f.software_version,
            "file_version": f.file_version, "compression": f.compression,
            "stripes": f.nstripes, "row_index_stride": f.row_index_stride,
            "schema": str(f.schema)}
    if pyorc and f.nstripes > 1:  # per-stripe rows and user_id min/max, for pruning tests
        with open(p, "rb") as fh:
            r = pyorc.Reader(fh)
            names = list(r.schema.fields)
            info["stripe_detail"] = []
            for i in range(r.num_of_stripes):
                st = r.read_stripe(i)
                d = {"rows": len(st)}
                if "user_id" in names:
                    cs = st[names.index("user_id") + 1].statistics
                    d["user_id_min"], d["user_id_max"] = cs.get("minimum"), cs.get("maximum")
                info["stripe_detail"].append(d)
    return f.read(), info


def bucket_of_name(name):
    m = re.match(r"^0*(\d+)_\d+", name)
    assert m, f"not a bucket file name: {name}"
    return int(m.group(1))


def analyse(out_dir, spark_meta):
    expected = {"generator": {"spark": spark_meta["spark_version"], "pyarrow": pa.__version__,
                              "pyorc": pyorc.__version__ if pyorc else None,
                              "seed": SEED},
                "tables": {}}
    mismatches = []
    tables = SPARK_TABLES + ["pyarrow_orc"] + (["pyorc_orc"] if pyorc else [])
    for t in tables:
        tdir = out_dir / t
        entry = {"writer": None, "files": {}, "total_rows": 0,
                 "hidden_files": sorted(str(p.relative_to(tdir)) for p in tdir.rglob("*")
                                        if p.is_file() and is_hidden(p.name))}
        if t in DDL:
            entry["ddl"] = DDL[t]
            entry["writer"] = f"pyspark {spark_meta['spark_version']}"
            entry.update(spark_meta[t])
        elif t == "pyarrow_orc":
            entry["writer"] = (f"pyarrow {pa.__version__} orc.write_table(batch_size=250, "
                               "stripe_size=8192, row_index_stride=100, "
                               "compression='uncompressed')")
        else:
            entry["writer"] = (f"pyorc {pyorc.__version__} Writer(stripe_size=4096, "
                               "row_index_stride=500, batch_size=500, compression=ZLIB, "
                               "compression_block_size=4096, memory_block_size=4096, "
                               "bloom_filter_columns=['user_id'], bloom_filter_fpp=0.01)")
        n_buckets = BUCKETS.get(t)
        users = {}  # user_id -> {"rows", "buckets"}
        for p in data_files(tdir):
            rel = str(p.relative_to(tdir))
            table, info = read_file(p)
            fentry = {"rows": table.num_rows, "bytes": p.stat().st_size, **info}
            entry["total_rows"] += table.num_rows
            if n_buckets:
                b = bucket_of_name(p.name)
                assert 0 <= b < n_buckets, rel
                fentry["bucket"] = b
                ids = table.column("user_id").to_pylist()
                fentry["sorted_by_user_id"] = all(
                    (x is None) or (y is not None and x <= y) for x, y in zip(ids, ids[1:])
                ) if "SORTED BY" in DDL[t] else None
                for uid in ids:
                    u = users.setdefault(uid, {"rows": 0, "buckets": set()})
                    u["rows"] += 1
                    u["buckets"].add(b)
            entry["files"][rel] = fentry
        if t == "spark_plain_orc":
            entry["notes"] = PLAIN_ORC_NOTES
            (p,) = list(data_files(tdir))
            entry["rows"] = [{k: jsonable(dict(v) if k == "c_map" and v is not None else v)
                              for k, v in r.items()}
                             for r in read_file(p)[0].to_pylist()]
        if n_buckets:
            hashf = hive_v1_hash_bigint if t == "spark_big8" else hive_v1_hash_string
            ulist = []
            for uid, u in users.items():
                # the observed mapping: every file holding a value carries one bucket number
                assert len(u["buckets"]) == 1, f"{t}: {uid!r} in buckets {u['buckets']}"
                (b,) = u["buckets"]
                h = hashf(uid)
                hb = hive_v1_bucket(h, n_buckets)
                if hb != b:
                    mismatches.append((t, uid, b, hb))
                ulist.append({"user_id": uid, "rows": u["rows"], "bucket": b,
                              "hive_v1_hash": h, "hive_v1_bucket": hb})
            ulist.sort(key=lambda x: (x["user_id"] is None, str(x["user_id"])))
            entry["num_buckets"] = n_buckets
            entry["bucketing_version"] = 1
            entry["users"] = ulist
            entry["hive_v1_mismatches"] = sum(1 for m in mismatches if m[0] == t)
        expected["tables"][t] = entry
    if "spark_str16" in expected["tables"]:
        e = expected["tables"]["spark_str16"]
        special = [u for u in e["users"] if u["user_id"] == SPECIAL_ID]
        assert special and special[0]["rows"] == 16, special
        prefixes = [re.match(r"^(\d+_\d+_)", Path(f).name).group(1)
                    for f in e["files"] if f.startswith("dt=2024-01-01/")]
        assert len(prefixes) > len(set(prefixes)), "no bucket with two files in dt=2024-01-01"
    return expected, mismatches


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args()
    out = args.out.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="cuve-fixtures-"))
    try:
        for t in SPARK_TABLES + ["pyarrow_orc", "pyorc_orc"]:
            shutil.rmtree(out / t, ignore_errors=True)
        db_dir, spark_meta = run_spark(tmp)
        for t in SPARK_TABLES:
            shutil.copytree(db_dir / t, out / t)  # keeps .crc and _SUCCESS files
        write_pyarrow_orc(out)
        if pyorc:
            write_pyorc(out)
        else:
            print("pyorc not installed: skipping pyorc_orc/", file=sys.stderr)
        expected, mismatches = analyse(out, spark_meta)
        (out / "expected.json").write_text(
            json.dumps(expected, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    finally:
        if args.keep_tmp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for m in mismatches:
        print("HIVE V1 MISMATCH table=%s value=%r file bucket=%d v1 bucket=%d" % m,
              file=sys.stderr)
    print(f"wrote {out}; hive v1 mismatches: {len(mismatches)}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
