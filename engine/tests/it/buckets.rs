//! Co-located plans against the normal plan on random co-bucketed and non-co-bucketed tables:
//! n in {1, 4, 16}, null and skewed keys, several files per bucket, filter pushdown on and off,
//! target_partitions from 1 to 16. Results must be identical; the bucket-parallel plan must be
//! used exactly when both sides are co-bucketed.

use std::sync::Arc;

use cuve_engine::{AccessView, Engine, Session};
use datafusion::arrow::util::pretty::pretty_format_batches;

async fn rows(s: &mut Session, sql: &str) -> Vec<String> {
    let out = s
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", e.user_message()));
    let text = pretty_format_batches(&out.batches).unwrap().to_string();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(1)
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

async fn explain(s: &mut Session, sql: &str) -> String {
    let out = s.execute(&format!("EXPLAIN {sql}")).await.unwrap();
    pretty_format_batches(&out.batches).unwrap().to_string()
}

/// A new warehouse with database `d`, and an admin session on it.
async fn new_session() -> (tempfile::TempDir, Session) {
    let home = tempfile::tempdir().unwrap();
    let engine: Arc<Engine> = Engine::open(home.path()).unwrap();
    let mut s = engine.session(AccessView::admin("t")).unwrap();
    s.execute("CREATE DATABASE d").await.unwrap();
    // Plans as on the 2-core machines CI runs on, whatever this machine's core count (the
    // co-located plan is chosen by an estimate that depends on it).
    s.execute("SET datafusion.execution.target_partitions = 2")
        .await
        .unwrap();
    (home, s)
}

async fn make_table(
    s: &mut Session,
    name: &str,
    n: u32,
    modulus: u32,
    batches: u32,
    rows_per: u32,
) {
    s.execute(&format!(
        "CREATE TABLE d.{name} (k STRING, v BIGINT, g STRING) PARTITIONED BY (dt STRING) CLUSTERED BY (k) INTO {n} BUCKETS STORED AS PARQUET"
    ))
    .await
    .unwrap();
    for b in 0..batches {
        // Null keys (every 13th), a hot key (every 3rd), the rest spread over `modulus` values.
        s.execute(&format!(
            "INSERT INTO d.{name} SELECT CASE WHEN value % 13 = 0 THEN NULL WHEN value % 3 = 0 THEN 'hot' \
             ELSE 'k' || CAST((value * 7919 + {b}) % {modulus} AS VARCHAR) END, value, \
             'g' || CAST(value % 5 AS VARCHAR), CASE WHEN value % 2 = 0 THEN '2019-10-01' ELSE '2019-10-02' END \
             FROM generate_series({start}, {end})",
            start = b * rows_per,
            end = b * rows_per + rows_per - 1
        ))
        .await
        .unwrap();
    }
}

const QUERIES: &[&str] = &[
    "SELECT a.k, COUNT(*) AS c, SUM(b.v) AS s FROM d.{L} a JOIN d.{R} b ON a.k = b.k GROUP BY a.k",
    "SELECT a.g, COUNT(*) FROM d.{L} a JOIN d.{R} b ON a.k = b.k WHERE a.dt = '2019-10-01' GROUP BY a.g",
    "SELECT a.k, b.v FROM d.{L} a LEFT JOIN d.{R} b ON a.k = b.k WHERE a.v < 40",
    "SELECT COUNT(*) FROM d.{L} a FULL JOIN d.{R} b ON a.k = b.k",
    "SELECT COUNT(*) FROM d.{L} WHERE k NOT IN (SELECT k FROM d.{R})",
    "SELECT COUNT(*) FROM d.{L} a JOIN (SELECT * FROM d.{R} ORDER BY v LIMIT 5) b ON a.k = b.k",
    "SELECT k, COUNT(*), MAX(v) FROM d.{L} GROUP BY k",
    "SELECT COUNT(*), SUM(y.c) FROM (SELECT k, COUNT(*) AS c FROM d.{L} WHERE dt = '2019-10-01' GROUP BY k) x \
     JOIN (SELECT k, COUNT(*) AS c FROM d.{R} WHERE dt = '2019-10-02' GROUP BY k) y ON x.k = y.k",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colocated_plans_match_normal_plans() {
    let (_home, mut s) = new_session().await;
    for (i, n) in [1u32, 4, 16].iter().enumerate() {
        make_table(&mut s, &format!("a{n}"), *n, 37 + i as u32 * 11, 3, 200).await;
        make_table(&mut s, &format!("b{n}"), *n, 23 + i as u32 * 7, 2, 150).await;
    }
    let mut checked = 0;
    for (left, right, co) in [
        ("a4", "b4", true),
        ("a16", "b16", true),
        // One bucket on two partitions: the estimate keeps the normal plan (checked below).
        ("a1", "b1", false),
        ("a4", "b16", false),
        ("a16", "b1", false),
    ] {
        for q in QUERIES {
            let sql = q.replace("{L}", left).replace("{R}", right);
            let two_sided = sql.contains("JOIN") || sql.contains("NOT IN");
            s.set_bucket_optimizations(false);
            // Two partitions, as on the 2-core machines this runs on: with the skewed keys
            // below, the estimate accepts bucket-by-bucket plans for 4 and 16 buckets.
            s.execute("SET datafusion.execution.target_partitions = 2")
                .await
                .unwrap();
            let expected = rows(&mut s, &sql).await;
            assert!(!explain(&mut s, &sql).await.contains("BucketParallelExec"));
            s.set_bucket_optimizations(true);
            let plan = explain(&mut s, &sql).await;
            let plain_join = two_sided && !sql.contains("NOT IN") && !sql.contains("LIMIT");
            if plain_join {
                assert_eq!(
                    plan.contains("co-located join"),
                    co,
                    "{left}/{right}: {sql}\n{plan}"
                );
            } else if two_sided {
                // NOT IN (null-aware anti join) and a LIMIT inside a side keep the normal plan.
                assert!(!plan.contains("co-located join"), "{sql}\n{plan}");
            } else {
                assert!(
                    plan.contains("per-bucket aggregation") || left == "a1",
                    "{sql}\n{plan}"
                );
            }
            for tp in [1, 3, 8, 16] {
                for pushdown in ["true", "false"] {
                    s.execute(&format!(
                        "SET datafusion.execution.target_partitions = {tp}"
                    ))
                    .await
                    .unwrap();
                    s.execute(&format!(
                        "SET datafusion.execution.parquet.pushdown_filters = {pushdown}"
                    ))
                    .await
                    .unwrap();
                    let got = rows(&mut s, &sql).await;
                    assert_eq!(
                        got, expected,
                        "{sql}\n(target_partitions={tp}, pushdown={pushdown})"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 5 * QUERIES.len() * 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_no_repartition_on_the_bucket_key() {
    let (_home, mut s) = new_session().await;
    make_table(&mut s, "x", 8, 50, 2, 100).await;
    make_table(&mut s, "y", 8, 40, 2, 100).await;
    let plan = explain(&mut s, "SELECT COUNT(*) FROM d.x JOIN d.y ON x.k = y.k").await;
    let inside = plan
        .split("BucketParallelExec")
        .nth(1)
        .expect("a bucket-parallel plan");
    let subtree: String = inside
        .lines()
        .take_while(|l| !l.contains("cuve_scan"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!subtree.contains("RepartitionExec"), "{plan}");
    assert!(plan.contains("buckets=8"), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_says_why_a_co_located_plan_was_or_was_not_used() {
    let (_home, mut s) = new_session().await;
    make_table(&mut s, "x", 8, 50, 2, 100).await;
    make_table(&mut s, "y", 8, 40, 2, 100).await;
    make_table(&mut s, "z", 4, 40, 2, 100).await;
    let used = explain(&mut s, "SELECT COUNT(*) FROM d.x JOIN d.y ON x.k = y.k").await;
    assert!(
        used.contains("cuve_plan") && used.contains("used: co-located join of"),
        "{used}"
    );
    let unlike = explain(&mut s, "SELECT COUNT(*) FROM d.x JOIN d.z ON x.k = z.k").await;
    assert!(
        unlike.contains("not co-located (join)") && unlike.contains("are not bucketed alike"),
        "{unlike}"
    );
    assert!(!unlike.contains("used: co-located"), "{unlike}");
    let other_key = explain(&mut s, "SELECT COUNT(*) FROM d.x JOIN d.y ON x.g = y.g").await;
    assert!(
        other_key.contains("g is not the bucket column of"),
        "{other_key}"
    );
    // Buckets against partitions: one bucket on two partitions would run on one of them.
    make_table(&mut s, "one", 1, 40, 2, 100).await;
    make_table(&mut s, "two", 1, 30, 2, 100).await;
    let single = explain(
        &mut s,
        "SELECT COUNT(*) FROM d.one JOIN d.two ON one.k = two.k",
    )
    .await;
    assert!(
        single.contains("not co-located (join): by estimate")
            && !single.contains("BucketParallelExec"),
        "{single}"
    );
    // 8 buckets on 16 partitions: half the partitions would idle.
    s.execute("SET datafusion.execution.target_partitions = 16")
        .await
        .unwrap();
    let few = explain(&mut s, "SELECT COUNT(*) FROM d.x JOIN d.y ON x.k = y.k").await;
    assert!(few.contains("by estimate"), "{few}");
    s.execute("SET datafusion.execution.target_partitions = 2")
        .await
        .unwrap();
    // EXPLAIN ANALYZE reports on the plan it ran.
    let analyzed = explain(
        &mut s,
        "ANALYZE SELECT COUNT(*) FROM d.x JOIN d.y ON x.k = y.k",
    )
    .await;
    assert!(analyzed.contains("used: co-located join of"), "{analyzed}");
}

/// Each file's bloom filter on the bucket column is sized for the values it holds (a few
/// KiB here), not the writer's default of a million values (about 1 MiB per file), and
/// near-unique columns are written without a dictionary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bloom_filters_are_sized_for_the_file() {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let (home, mut s) = new_session().await;
    make_table(&mut s, "x", 4, 500, 1, 4000).await;
    let mut files = 0;
    for entry in walk(&home.path().join("warehouse")) {
        if entry.extension().is_some_and(|e| e == "parquet") {
            let reader = SerializedFileReader::new(std::fs::File::open(&entry).unwrap()).unwrap();
            let rg = reader.metadata().row_group(0);
            let k = rg.column(0);
            assert_eq!(k.column_path().string(), "k");
            let len = k
                .bloom_filter_length()
                .expect("a bloom filter on the bucket column");
            assert!(
                len > 0 && len <= 4096,
                "{}: bloom filter of {len} bytes",
                entry.display()
            );
            // Dictionaries only where values repeat: v is unique, g has five values.
            use datafusion::parquet::basic::Encoding;
            let dict = |i: usize| {
                rg.column(i)
                    .encodings()
                    .any(|e| e == Encoding::RLE_DICTIONARY)
            };
            assert!(
                !dict(1),
                "{}: unique column v is dictionary-encoded",
                entry.display()
            );
            assert!(
                dict(2),
                "{}: column g is not dictionary-encoded",
                entry.display()
            );
            files += 1;
        }
    }
    assert!(files >= 4, "{files} files");
    // The filter still answers: a present key is found.
    let out = rows(&mut s, "SELECT COUNT(*) FROM d.x WHERE k = 'k1'").await;
    assert_ne!(out, vec!["| 0        |".to_string()], "{out:?}");
}

/// New files use LZ4 unless the table's `parquet.compression` names another codec; the data reads
/// back the same either way.
#[tokio::test]
async fn parquet_compression_property_sets_the_codec() {
    use datafusion::parquet::basic::Compression;
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let (home, mut s) = new_session().await;
    for (name, props, want) in [
        ("dflt", "", "LZ4_RAW"),
        (
            "small",
            "TBLPROPERTIES ('parquet.compression'='zstd(3)')",
            "ZSTD",
        ),
        (
            "snap",
            "TBLPROPERTIES ('parquet.compression'='SNAPPY')",
            "SNAPPY",
        ),
    ] {
        s.execute(&format!(
            "CREATE TABLE d.{name} (k STRING, v BIGINT, r BIGINT) CLUSTERED BY (k) INTO 2 BUCKETS STORED AS PARQUET {props}"
        ))
        .await
        .unwrap();
        s.execute(&format!(
            "INSERT INTO d.{name} SELECT 'k' || CAST(value % 7 AS VARCHAR), value, \
             (value * 2654435761) % 1000000007 FROM generate_series(1, 1000)"
        ))
        .await
        .unwrap();
        let files: Vec<_> = walk(&home.path().join("warehouse/d").join(name))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        assert!(!files.is_empty(), "{name}: no files");
        let mut uncompressed = 0;
        for f in files {
            let reader = SerializedFileReader::new(std::fs::File::open(&f).unwrap()).unwrap();
            for c in reader.metadata().row_group(0).columns() {
                let codec = match c.compression() {
                    Compression::ZSTD(_) => "ZSTD".to_string(),
                    other => other.to_string(),
                };
                // With the LZ4 default, a column LZ4 would not shrink is stored uncompressed
                // (`r` holds pseudo-random numbers).
                if name == "dflt" && codec == "UNCOMPRESSED" {
                    uncompressed += 1;
                    continue;
                }
                assert_eq!(codec, want, "{}: {}", f.display(), c.column_path());
            }
        }
        assert_eq!(
            uncompressed > 0,
            name == "dflt",
            "{name}: uncompressed columns"
        );
        let out = rows(&mut s, &format!("SELECT COUNT(*), SUM(v) FROM d.{name}")).await;
        assert!(
            out.iter()
                .any(|l| l.contains("1000") && l.contains("500500")),
            "{name}: {out:?}"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A lookup on the bucket (= sort) column reads only the pages its page index says can hold
/// the key, also when the index comes from the footer cache (the second run), with the same
/// rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_prune_pages_with_the_cached_page_index() {
    let (_home, mut s) = new_session().await;
    make_table(&mut s, "x", 1, 500, 1, 8000).await;
    let sql = "SELECT k, v FROM d.x WHERE k = 'k7'";
    let expected = rows(&mut s, sql).await;
    assert!(!expected.is_empty());
    for run in 0..2 {
        let plan = explain(&mut s, &format!("ANALYZE {sql}")).await;
        // Rows the scan decoded: the selected pages (1,024 rows each), not the 8,000 rows of
        // the table.
        let n = scan_rows(&plan);
        assert!(
            n > 0.0 && n <= 2048.0,
            "run {run}: the scan read {n} rows of 8000"
        );
        assert_eq!(rows(&mut s, sql).await, expected);
    }
    // Several keys, and a key no page holds, agree with a filter the page index cannot use.
    for keys in ["'k7', 'k11', 'hot'", "'k7', 'zzz'", "'zzz'"] {
        let pinned = rows(
            &mut s,
            &format!("SELECT k, v FROM d.x WHERE k IN ({keys}) ORDER BY v"),
        )
        .await;
        let opaque = rows(
            &mut s,
            &format!("SELECT k, v FROM d.x WHERE k || '' IN ({keys}) ORDER BY v"),
        )
        .await;
        assert_eq!(pinned, opaque, "{keys}");
    }
}

/// A lookup planned for a cluster prunes pages without per-file row selections (extensions
/// do not survive plan encoding, so the executors would read every row): DataFusion prunes by
/// the page index there, from the scan's predicate, with the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_for_a_cluster_prune_pages_without_file_extensions() {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::datasource::physical_plan::FileScanConfig;
    use datafusion::datasource::physical_plan::parquet::ParquetRowSelection;
    use datafusion::datasource::source::DataSourceExec;
    let (_home, mut s) = new_session().await;
    make_table(&mut s, "x", 1, 500, 1, 8000).await;
    let sql = "SELECT k, v FROM d.x WHERE k = 'k7'";
    let expected = rows(&mut s, sql).await;
    assert!(!expected.is_empty());
    let remote = Arc::new(InProcess::default());
    let mut c = s.engine().session(AccessView::admin("t")).unwrap();
    c.set_remote(remote.clone());
    assert_eq!(rows(&mut c, sql).await, expected);
    let plans = remote.plans.lock().unwrap();
    let plan = plans.last().expect("the lookup ran on the remote");
    let (mut files, mut extended, mut read) = (0, 0, 0);
    plan.apply(|node| {
        let any = node.as_ref() as &dyn std::any::Any;
        if let Some(scan) = any.downcast_ref::<DataSourceExec>()
            && let Some(config) =
                (scan.data_source().as_ref() as &dyn std::any::Any).downcast_ref::<FileScanConfig>()
        {
            for f in config.file_groups.iter().flat_map(|g| g.files()) {
                files += 1;
                extended += usize::from(f.extensions.contains::<ParquetRowSelection>());
            }
            read += node.metrics().and_then(|m| m.output_rows()).unwrap_or(0);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .unwrap();
    assert!(files > 0);
    assert_eq!(
        extended, 0,
        "row selections would be lost on the way to executors"
    );
    assert!(
        read > 0 && read <= 2048,
        "the scan read {read} rows of 8000"
    );
}

/// Rows the first scan of an `EXPLAIN ANALYZE` plan produced.
fn scan_rows(plan: &str) -> f64 {
    let text = plan
        .split("DataSourceExec")
        .nth(1)
        .and_then(|t| t.split("output_rows=").nth(1))
        .and_then(|t| t.split(',').next())
        .unwrap_or_else(|| panic!("no scan metrics in {plan}"))
        .trim()
        .to_string();
    match text.strip_suffix(" K") {
        Some(k) => k.parse::<f64>().unwrap() * 1000.0,
        None => text.parse().unwrap(),
    }
}

/// `SET datafusion.execution.parquet.*` applies to Cuve tables: with pruning off, the scan
/// reads the row group its statistics rule out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_parquet_options_apply_to_cuve_tables() {
    let (_home, mut s) = new_session().await;
    make_table(&mut s, "x", 1, 500, 1, 8000).await;
    let sql = "SELECT count(*) FROM d.x WHERE v > 1000000";
    let expected = rows(&mut s, sql).await;
    assert_eq!(expected, ["| 0        |"]);
    let pruned = scan_rows(&explain(&mut s, &format!("ANALYZE {sql}")).await);
    assert_eq!(pruned, 0.0, "statistics rule out every row group");
    s.execute("SET datafusion.execution.parquet.pruning = false")
        .await
        .unwrap();
    let read = scan_rows(&explain(&mut s, &format!("ANALYZE {sql}")).await);
    assert_eq!(read, 8000.0, "with pruning off every row is read");
    assert_eq!(rows(&mut s, sql).await, expected);
}

/// Aggregations grouped by the partition column run in one phase per share of its values, with
/// the same results as DataFusion's two-phase plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregations_by_partition_column_run_per_value() {
    let (_home, mut s) = new_session().await;
    make_table(&mut s, "p", 4, 41, 3, 300).await;
    // (query, whether it keeps a DISTINCT aggregate after DataFusion's logical rewrites)
    let queries = [
        (
            "SELECT dt, count(*), count(DISTINCT g), count(DISTINCT k || '|' || g) FROM d.p GROUP BY dt",
            true,
        ),
        (
            "SELECT dt, g, sum(DISTINCT v), count(*), max(k) FROM d.p WHERE v % 7 <> 0 GROUP BY dt, g",
            true,
        ),
        (
            "SELECT g, dt, avg(v), count(DISTINCT k) FROM d.p GROUP BY g, dt HAVING count(*) > 10",
            true,
        ),
        (
            "SELECT dt, count(DISTINCT v), count(*) FROM d.p WHERE k IS NULL GROUP BY dt",
            true,
        ),
        // A lone DISTINCT becomes a two-level GROUP BY; no DISTINCT at all: small partial
        // states, cheap to merge, so DataFusion's plan stays.
        ("SELECT dt, count(DISTINCT g) FROM d.p GROUP BY dt", false),
        ("SELECT dt, g, sum(v) FROM d.p GROUP BY dt, g", false),
    ];
    for target in [1, 2, 4] {
        s.execute(&format!(
            "SET datafusion.execution.target_partitions = {target}"
        ))
        .await
        .unwrap();
        for (q, distinct) in queries {
            s.set_bucket_optimizations(false);
            let expected = rows(&mut s, q).await;
            assert!(!expected.is_empty(), "{q}");
            assert!(!explain(&mut s, q).await.contains("PartitionParallelExec"));
            s.set_bucket_optimizations(true);
            let plan = explain(&mut s, q).await;
            // Two dt values: two shares unless only one partition is wanted.
            assert_eq!(
                plan.contains("PartitionParallelExec"),
                target > 1 && distinct,
                "target_partitions {target}, {q}:\n{plan}"
            );
            assert_eq!(
                rows(&mut s, q).await,
                expected,
                "target_partitions {target}, {q}"
            );
        }
    }
    // Grouped by the bucket key: the bucket-parallel plan, not this one.
    let plan = explain(&mut s, "SELECT k, count(*) FROM d.p GROUP BY k").await;
    assert!(!plan.contains("PartitionParallelExec"), "{plan}");
}

/// A `Remote` that runs the plans it gets in this process, recording their top-level shape:
/// the co-located plans as a cluster gets them (`SlicedExec`), without the network.
#[derive(Debug, Default)]
struct InProcess {
    seen: std::sync::Mutex<Vec<String>>,
    plans: std::sync::Mutex<Vec<Arc<dyn datafusion::physical_plan::ExecutionPlan>>>,
}

impl cuve_engine::remote::Remote for InProcess {
    fn prepare(
        &self,
        config: datafusion::prelude::SessionConfig,
    ) -> datafusion::prelude::SessionConfig {
        config
    }
    fn accepts(&self, _plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> bool {
        true
    }
    fn stages(
        &self,
        _plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        _config: &datafusion::prelude::SessionConfig,
    ) -> Vec<String> {
        vec![]
    }
    fn execute(
        &self,
        plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        config: datafusion::prelude::SessionConfig,
    ) -> futures::future::BoxFuture<
        'static,
        cuve_engine::Result<(
            datafusion::execution::SendableRecordBatchStream,
            cuve_engine::remote::JobReport,
        )>,
    > {
        let shape = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        self.seen.lock().unwrap().push(shape);
        self.plans.lock().unwrap().push(plan.clone());
        Box::pin(async move {
            let ctx = datafusion::prelude::SessionContext::new_with_config(config).task_ctx();
            let stream = datafusion::physical_plan::execute_stream(plan, ctx)
                .map_err(cuve_engine::EngineError::from_datafusion)?;
            let report: cuve_engine::remote::JobReport = Arc::new(|| Box::pin(async { None }));
            Ok((stream, report))
        })
    }
}

/// Co-located joins and aggregations reshaped for a cluster (their scans as children, one file
/// group per bucket or share) give the rows of the in-process plans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliced_plans_match_in_process_plans() {
    let (_home, mut s) = new_session().await;
    for (i, n) in [4u32, 16].iter().enumerate() {
        make_table(&mut s, &format!("a{n}"), *n, 37 + i as u32 * 11, 3, 200).await;
        make_table(&mut s, &format!("b{n}"), *n, 23 + i as u32 * 7, 2, 150).await;
    }
    let remote = Arc::new(InProcess::default());
    let mut sliced = s.engine().session(AccessView::admin("t")).unwrap();
    sliced.set_remote(remote.clone());
    let mut by_value = vec![
        "SELECT dt, count(*), count(DISTINCT g), count(DISTINCT k || '|' || g) FROM d.a4 GROUP BY dt"
            .to_string(),
    ];
    for (l, r) in [("a4", "b4"), ("a16", "b16")] {
        by_value.extend(
            QUERIES
                .iter()
                .map(|q| q.replace("{L}", l).replace("{R}", r)),
        );
    }
    let mut reshaped = 0;
    for tp in [2, 4] {
        for ss in [&mut s, &mut sliced] {
            ss.execute(&format!(
                "SET datafusion.execution.target_partitions = {tp}"
            ))
            .await
            .unwrap();
        }
        for sql in &by_value {
            let want = rows(&mut s, sql).await;
            let local = explain(&mut s, sql).await;
            let got = rows(&mut sliced, sql).await;
            assert_eq!(got, want, "{sql} (target_partitions={tp})");
            let shape = remote.seen.lock().unwrap().pop().unwrap();
            let colocated =
                local.contains("BucketParallelExec") || local.contains("PartitionParallelExec");
            assert_eq!(shape.contains("SlicedExec"), colocated, "{sql}\n{shape}");
            assert!(
                !shape.contains("BucketParallelExec") && !shape.contains("PartitionParallelExec")
            );
            reshaped += colocated as usize;
        }
    }
    assert!(reshaped >= 10, "only {reshaped} co-located plans");
}
