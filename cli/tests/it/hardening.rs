//! Odd input through the real binary: statements too deep or too long, Korean and escaped
//! names and paths, a copied home, a log file replaced under its name, owners and other
//! users' tickets.

use super::{cuve, ok, stderr};
use std::path::Path;

fn chain(n: usize, op: &str) -> String {
    (0..n).map(|_| "1").collect::<Vec<_>>().join(op)
}

fn fails_with(c: &mut std::process::Command, code: i32, text: &str) -> String {
    let o = c.output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(err.contains(text), "expected '{text}' in: {err}");
    err
}

#[test]
fn deep_and_long_statements_get_a_clear_error_and_the_process_lives() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // Within the limits: the right answer.
    let sum = format!("SELECT {} AS n", chain(900, "+"));
    assert_eq!(
        ok(cuve(h).args(["sql", "--format", "csv", "-e", &sum])),
        "n\n900\n"
    );
    // Past them: an error naming the limit (before: the process aborted on a stack overflow).
    for (sql, text) in [
        (
            format!("SELECT {}", chain(3000, "+")),
            "expression too deep",
        ),
        (
            format!("SELECT 1 WHERE {}", chain(2000, "=1 AND ")),
            "expression too deep",
        ),
        (
            format!("SELECT 1 WHERE {}", chain(3000, "=1 OR ")),
            "expression too deep",
        ),
        (
            format!("SELECT 'a' {}", "|| 'a' ".repeat(3000)),
            "expression too deep",
        ),
        (
            (0..3000)
                .map(|i| format!("SELECT {i}"))
                .collect::<Vec<_>>()
                .join(" UNION ALL "),
            "UNION",
        ),
    ] {
        fails_with(cuve(h).args(["sql", "-e", &sql]), 1, text);
    }
    let unions = (0..200)
        .map(|i| format!("SELECT {i} AS v"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    assert_eq!(
        ok(cuve(h).args([
            "sql",
            "--format",
            "csv",
            "-e",
            &format!("SELECT COUNT(*) AS n FROM ({unions})")
        ])),
        "n\n200\n"
    );
}

#[test]
fn korean_and_escaped_homes_partition_values_and_names_work() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("웨어하우스 %41 it's");
    std::fs::create_dir_all(&h).unwrap();
    let h = h.as_path();
    ok(cuve(h).args([
        "sql",
        "-e",
        "CREATE DATABASE `검색`; CREATE TABLE `검색`.`로그` (a INT) PARTITIONED BY (dt STRING, k STRING) STORED AS PARQUET",
    ]));
    let values = ["한글", "a/b=c'd%e\\f:g", "", "x y#1"];
    for (i, v) in values.iter().enumerate() {
        let v = v.replace('\'', "''");
        ok(cuve(h).args([
            "sql",
            "-e",
            &format!("INSERT INTO `검색`.`로그` PARTITION (dt='2019-10-01', k='{v}') SELECT {i}"),
        ]));
    }
    let out = ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT a, k FROM \"검색\".\"로그\" ORDER BY a",
    ]));
    assert_eq!(
        out, "a,k\n0,한글\n1,a/b=c'd%e\\f:g\n2,\n3,x y#1\n",
        "every value reads back as written"
    );
    // Partition pruning on an escaped value reads just that partition.
    let out = ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT a FROM \"검색\".\"로그\" WHERE k = 'a/b=c''d%e\\f:g'",
    ]));
    assert_eq!(out, "a\n1\n");
    // The directory name of empty values cannot be given as a value.
    fails_with(
        cuve(h).args([
            "sql",
            "-e",
            "INSERT INTO `검색`.`로그` PARTITION (dt='2019-10-01', k='__HIVE_DEFAULT_PARTITION__') SELECT 9",
        ]),
        1,
        "reserved",
    );
    // Look-alike, full-width and reserved names, bad decimals and an empty LOCATION are refused.
    for (sql, text) in [
        ("CREATE TABLE `검색`.`ｔ１` (a INT)", "full-width"),
        ("CREATE TABLE `검색`.`stream_lo\u{261}` (a INT)", "U+0261"),
        (
            "CREATE TABLE `검색`.c (`user_\u{456}d` STRING)",
            "one script",
        ),
        ("CREATE DATABASE information_schema", "reserved"),
        (
            "CREATE TABLE `검색`.d (a DECIMAL(100,2))",
            "precision must be 1 to 38",
        ),
        (
            "CREATE EXTERNAL TABLE `검색`.e (a INT) LOCATION ''",
            "LOCATION '' is empty",
        ),
    ] {
        fails_with(cuve(h).args(["sql", "-e", sql]), 1, text);
    }
    // The demo runs in such a home too.
    let out = ok(cuve(h).args(["demo", "--days", "1", "--rows-per-day", "500"]));
    assert!(out.contains("500 written"), "{out}");
}

fn count(h: &Path, table: &str) -> String {
    ok(cuve(h).args([
        "sql",
        "--format",
        "csv",
        "-e",
        &format!("SELECT COUNT(*) AS n FROM {table}"),
    ]))
}

fn copy_dir(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn a_copied_home_reads_and_writes_its_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::create_dir_all(&a).unwrap();
    ok(cuve(&a).args([
        "sql",
        "-e",
        "CREATE DATABASE d; CREATE TABLE d.t (x BIGINT) PARTITIONED BY (dt STRING) STORED AS PARQUET; INSERT INTO d.t PARTITION (dt='2019-10-01') SELECT value FROM range(10)",
    ]));
    let b = dir.path().join("b");
    copy_dir(&a, &b);
    ok(cuve(&b).args([
        "sql",
        "-e",
        "INSERT INTO d.t PARTITION (dt='2019-10-01') SELECT value FROM range(5); INSERT OVERWRITE TABLE d.t PARTITION (dt='2019-10-02') SELECT 1",
    ]));
    assert_eq!(count(&b, "d.t"), "n\n16\n");
    assert_eq!(count(&a, "d.t"), "n\n10\n", "the original is untouched");
    let files = |h: &Path| {
        std::fs::read_dir(h.join("warehouse/d/t/dt=2019-10-01"))
            .unwrap()
            .count()
    };
    assert_eq!(files(&a), 1);
    assert_eq!(files(&b), 2);
    assert!(!a.join("warehouse/d/t/dt=2019-10-02").exists());
    // DROP in the copy removes the copy's files only.
    ok(cuve(&b).args(["sql", "-e", "DROP TABLE d.t"]));
    assert_eq!(count(&a, "d.t"), "n\n10\n");

    // A catalog of an older Cuve stored absolute paths: its copy points into the original,
    // and writes through the copy are refused instead of changing the original.
    let warehouse = a.canonicalize().unwrap().join("warehouse");
    let st = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect('{}'); \
             c.execute(\"UPDATE tables SET location = replace(location, 'warehouse:', '{}/')\"); \
             c.execute(\"UPDATE partitions SET location = replace(location, 'warehouse:', '{}/')\"); \
             c.commit()",
            a.join("catalog.db").display(),
            warehouse.display(),
            warehouse.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let c = dir.path().join("c");
    copy_dir(&a, &c);
    let o = cuve(&c)
        .args([
            "sql",
            "-e",
            "INSERT INTO d.t PARTITION (dt='2019-10-01') SELECT 1",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("another Cuve home"), "{}", stderr(&o));
    assert_eq!(count(&a, "d.t"), "n\n10\n");
}

#[test]
fn a_log_file_replaced_under_its_name_is_refused_not_misread() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args([
        "sql",
        "-e",
        "CREATE DATABASE d; CREATE TABLE d.l (log_time TIMESTAMP, msg STRING) PARTITIONED BY (dt STRING) STORED AS PARQUET",
    ]));
    let logs = tempfile::tempdir().unwrap();
    let f = logs.path().join("app.log");
    let line = |i: usize, tag: &str| {
        format!(
            "{{\"log_time\":\"2019-10-01T00:00:{:02}Z\",\"msg\":\"{tag}{i}\"}}\n",
            i % 60
        )
    };
    // A UTF-8 byte order mark before the first line is not part of it.
    let first: String = std::iter::once("\u{feff}".to_string())
        .chain((0..100).map(|i| line(i, "old")))
        .collect();
    std::fs::write(&f, first).unwrap();
    let ingest = || {
        let mut c = cuve(h);
        c.args([
            "ingest",
            "--table",
            "d.l",
            "--format",
            "jsonl",
            "--sender-ip",
            "10.0.0.1",
        ])
        .arg(&f);
        c
    };
    let out = ok(&mut ingest());
    assert!(
        out.contains("100 written") && out.contains("0 rejected"),
        "{out}"
    );
    // Grown: only the new lines.
    let mut grown = std::fs::read_to_string(&f).unwrap();
    grown.extend((100..120).map(|i| line(i, "old")));
    std::fs::write(&f, &grown).unwrap();
    let out = ok(&mut ingest());
    assert!(out.contains("20 written"), "{out}");
    // Replaced by a longer file with other contents: refused, nothing read or skipped.
    let replaced: String = (0..150).map(|i| line(i, "new")).collect();
    std::fs::write(&f, replaced).unwrap();
    fails_with(&mut ingest(), 5, "replaced under the same name");
    assert_eq!(count(h, "d.l"), "n\n120\n");
    // Under another name it is a new source.
    let g = logs.path().join("app.log.2");
    std::fs::rename(&f, &g).unwrap();
    let out = ok(cuve(h)
        .args([
            "ingest",
            "--table",
            "d.l",
            "--format",
            "jsonl",
            "--sender-ip",
            "10.0.0.1",
        ])
        .arg(&g));
    assert!(out.contains("150 written"), "{out}");
    // Every ingest is audited.
    let audit = ok(cuve(h).args(["audit", "--limit", "20"]));
    assert!(audit.contains("INGEST INTO d.l"), "{audit}");
}

#[test]
fn owners_cannot_take_over_other_users_tickets() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args(["sql", "-e", "CREATE DATABASE a"]));
    ok(cuve(h).args(["user", "add", "own", "--role", "owner", "--database", "a"]));
    ok(cuve(h).args(["user", "add", "ana", "--role", "analyst"]));
    let owner = super::tickets::secret_of(&ok(
        cuve(h).args(["ticket", "create", "--user", "own", "--json"])
    ))
    .1;
    // A ticket the admin issued to ana on the owner's database.
    let (admins, _) = super::tickets::secret_of(&ok(cuve(h).args([
        "ticket",
        "create",
        "--user",
        "ana",
        "--grant",
        "SELECT:a.*",
        "--json",
    ])));
    for (args, text) in [
        (vec!["ticket", "rotate", admins.as_str()], "only admins"),
        (
            vec!["ticket", "grant", admins.as_str(), "--grant", "ALTER:a.*"],
            "only the tickets they issued",
        ),
    ] {
        fails_with(cuve(h).arg("--ticket").arg(&owner).args(&args), 3, text);
    }
    // The owner's own analyst ticket: managed, but rotating it is still the admin's.
    let (mine, _) = super::tickets::secret_of(&ok(cuve(h).arg("--ticket").arg(&owner).args([
        "ticket",
        "create",
        "--user",
        "ana",
        "--grant",
        "SELECT:a.*",
        "--json",
    ])));
    ok(cuve(h).arg("--ticket").arg(&owner).args([
        "ticket",
        "grant",
        &mine,
        "--grant",
        "WRITE:a.*",
    ]));
    fails_with(
        cuve(h)
            .arg("--ticket")
            .arg(&owner)
            .args(["ticket", "rotate", &mine]),
        3,
        "only admins",
    );
}

/// `cuve ... | head`: when the reader closes the pipe, cuve ends quietly (as `cat` does), never
/// with a panic, whether the output comes from a query or from a plain listing.
#[test]
fn a_closed_stdout_pipe_ends_cuve_quietly() {
    use std::process::Stdio;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args(["sql", "-e", "CREATE DATABASE d"]));
    let big = "SELECT value, repeat('x', 100) FROM generate_series(1, 200000)";
    let file = h.join("big.sql");
    std::fs::write(&file, format!("{big};\n")).unwrap();
    let file = file.display().to_string();
    for args in [
        vec!["sql", "--format", "csv", "-e", big],
        vec!["sql", "-e", big],
        vec!["run", "-f", &file],
        vec!["template", "list"],
        vec!["user", "list"],
        vec!["table", "maintain", "--dry-run"],
    ] {
        let mut child = cuve(h)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes before cuve writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            !out.status.success(),
            "{args:?} did not notice the closed pipe"
        );
    }
}
