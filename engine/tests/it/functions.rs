//! Every registered function (DataFusion's, datafusion-spark's and Cuve's) called with odd
//! arguments: NULLs, empty and long strings, extreme numbers, pattern letters. Each call must
//! return a value or an error; none may panic (a caught panic surfaces as an internal error).

use std::sync::Arc;

use cuve_engine::{AccessView, Engine, ErrorKind};

const ONE: &[&str] = &[
    "NULL",
    "''",
    "'x'",
    "'한글'",
    "-1",
    "0",
    "9223372036854775807",
    "-9223372036854775808",
    "1e308",
    "'%Q'",
    "'SSSS'",
    "CAST(NULL AS BIGINT)",
    "DATE '0001-01-01'",
    "TIMESTAMP '2262-04-11 23:47:16'",
    "repeat('가', 350000)",
];

const TWO: &[(&str, &str)] = &[
    ("NULL", "NULL"),
    ("''", "''"),
    ("'abc'", "-1"),
    ("'abc'", "9223372036854775807"),
    ("-9223372036854775808", "-1"),
    ("'2015-04-08 10:30:45.123'", "'S'"),
    ("'2015-04-08'", "'yyyy''%''MM'"),
    ("1", "0"),
    ("'a'", "'%'"),
    ("1.5", "-9223372036854775808"),
    // Casts folded into a Date64 literal DataFusion cannot display (udf::guards::CastGuard).
    ("-9223372036854775808", "'Date64'"),
    ("-9223372036854775808", "arrow_cast(0, 'Date64')"),
];

const THREE: &[(&str, &str, &str)] = &[
    ("NULL", "NULL", "NULL"),
    ("'abc'", "-1", "NULL"),
    ("'abc'", "9223372036854775807", "'x'"),
    ("''", "''", "''"),
    ("1", "2", "-9223372036854775808"),
    ("'a,b'", "','", "-1"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_function_panics_on_odd_arguments() {
    let home = tempfile::tempdir().unwrap();
    let engine: Arc<Engine> = Engine::open(home.path()).unwrap();
    let mut s = engine.session(AccessView::admin("t")).unwrap();
    let state = s.context().state();
    let mut scalars: Vec<String> = state.scalar_functions().keys().cloned().collect();
    scalars.sort();
    let mut aggregates: Vec<String> = state.aggregate_functions().keys().cloned().collect();
    aggregates.sort();
    // Functions whose odd-argument calls legitimately take long or depend on the clock.
    let skip = ["sleep", "cuve_test_panic"];
    let mut panics = Vec::new();
    let mut calls = 0;
    for f in scalars.iter().filter(|f| !skip.contains(&f.as_str())) {
        let mut sqls: Vec<String> = vec![format!("SELECT {f}()")];
        sqls.extend(ONE.iter().map(|a| format!("SELECT {f}({a})")));
        sqls.extend(TWO.iter().map(|(a, b)| format!("SELECT {f}({a}, {b})")));
        sqls.extend(
            THREE
                .iter()
                .map(|(a, b, c)| format!("SELECT {f}({a}, {b}, {c})")),
        );
        for sql in sqls {
            calls += 1;
            if let Err(e) = s.execute(&sql).await
                && e.kind() == ErrorKind::Internal
            {
                panics.push(format!("{sql}: {}", e.user_message()));
            }
        }
    }
    for f in &aggregates {
        let from = "FROM (VALUES (1.0, 'a'), (NULL, NULL), (-1e308, '')) t(v, w)";
        for args in [
            "v",
            "w",
            "v, 0.5",
            "v, 9223372036854775807",
            "v, 0.5, 9223372036854775807",
            "v, 1.0, 0.5, 9223372036854775807",
            "v, v, 0.5, 9223372036854775807",
            "v, -1",
            "w, ','",
            "NULL",
        ] {
            let sql = format!("SELECT {f}({args}) {from}");
            calls += 1;
            if let Err(e) = s.execute(&sql).await
                && e.kind() == ErrorKind::Internal
            {
                panics.push(format!("{sql}: {}", e.user_message()));
            }
        }
    }
    assert!(calls > 5000, "{calls} calls");
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
}
