//! Fault injection for tests of the paths no correct statement takes: with
//! `CUVE_TEST_FAULTS=1` in the environment (or [`enable`] in-process), sessions get a function
//! `cuve_test_panic(x)` that panics when evaluated, so tests can check that a panic in a
//! statement becomes that statement's error (CLI exit 1, Flight INTERNAL) and the process lives.

use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns fault injection on for sessions created from now on in this process.
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
}

/// Whether sessions get the fault functions.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::SeqCst) || std::env::var_os("CUVE_TEST_FAULTS").is_some_and(|v| v == "1")
}

/// `cuve_test_panic(x)`: panics when evaluated (at execution, not planning).
pub fn panic_udf() -> ScalarUDF {
    create_udf(
        "cuve_test_panic",
        vec![DataType::Int64],
        DataType::Int64,
        Volatility::Volatile,
        std::sync::Arc::new(
            |_args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
                panic!("cuve_test_panic was called")
            },
        ),
    )
}

/// Test hook: `CUVE_CRASH_AT=<point>` aborts the process there (kill -9 tests of the commit
/// protocol: `after-stage`, `after-commit`).
pub fn crash_point(point: &str) {
    if std::env::var("CUVE_CRASH_AT")
        .map(|p| p == point)
        .unwrap_or(false)
    {
        std::process::abort();
    }
}

/// Test hook: `CUVE_PAUSE_AT=<point>:<ms>` sleeps there (a write held between its put and its
/// commit, for the vacuum tests).
pub fn pause_point(point: &str) {
    if let Ok(v) = std::env::var("CUVE_PAUSE_AT")
        && let Some((p, ms)) = v.split_once(':')
        && p == point
        && let Ok(ms) = ms.parse::<u64>()
    {
        std::thread::sleep(std::time::Duration::from_millis(ms.min(60_000)));
    }
}

/// [`pause_point`], the first time the process reaches `point` only.
pub fn pause_once(point: &str) {
    static DONE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    if std::env::var_os("CUVE_PAUSE_AT").is_none() {
        return;
    }
    {
        let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
        if done.iter().any(|p| p == point) {
            return;
        }
        done.push(point.to_string());
    }
    pause_point(point);
}
