//! `cuve demo` builds the sample warehouse, prints the five analyses, and a second run adds
//! nothing.

use super::{cuve, ok};

#[test]
fn demo_runs_twice_without_duplicates() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let first = ok(cuve(h).args(["demo", "--days", "2", "--rows-per-day", "3000"]));
    for title in ["CTR", "QC / UQC", "exposed", "Inflow", "age band"] {
        assert!(first.contains(title), "missing {title} in:\n{first}");
    }
    assert!(first.contains("6000 written"), "{first}");
    let second = ok(cuve(h).args(["demo", "--days", "2", "--rows-per-day", "3000"]));
    assert!(
        second.contains("0 written, 6000 duplicates skipped"),
        "{second}"
    );
    let n = ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT COUNT(*) AS n, COUNT(DISTINCT log_key) AS k FROM korea_naver_log.stream_log",
    ]));
    assert_eq!(n, "n,k\n6000,6000\n");
    // The age/gender template joins the profile table: every click has a profile.
    let clicks = ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT COUNT(*) AS c FROM korea_naver_log.stream_log WHERE event = 'click'",
    ]));
    let joined = ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT COUNT(*) AS c FROM korea_naver_log.stream_log l JOIN korea_naver_log.user_profile p ON l.user_id = p.user_id WHERE event = 'click'",
    ]));
    assert_eq!(clicks, joined);
}
