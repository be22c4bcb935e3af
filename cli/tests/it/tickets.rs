//! Ticket administration through the real binary: the local admin ticket, `user add`,
//! `ticket create --json`, `--ticket` / `CUVE_TICKET`, denial exit codes and messages,
//! expiry, revocation, rotation, quotas, usage and audit.

use std::os::unix::fs::PermissionsExt;

use super::{cuve, ok, stderr};

/// Adds the analyst `user` and issues them a ticket with `args` (grants, quotas): (id, secret).
pub(crate) fn analyst_ticket(
    home: &std::path::Path,
    user: &str,
    args: &[&str],
) -> (String, String) {
    ok(cuve(home).args(["user", "add", user, "--role", "analyst"]));
    let out = ok(cuve(home)
        .args(["ticket", "create", "--user", user, "--json"])
        .args(args));
    secret_of(&out)
}

pub(crate) fn secret_of(json: &str) -> (String, String) {
    let v: serde_json::Value =
        serde_json::from_str(json.trim()).expect("ticket create --json prints one object");
    (
        v["id"].as_str().unwrap().to_string(),
        v["secret"].as_str().unwrap().to_string(),
    )
}

#[test]
fn tickets_end_to_end() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let init = ok(cuve(h).args(["admin", "init"]));
    assert!(init.contains("created user 'admin'"), "{init}");
    let mode = std::fs::metadata(h.join("credentials"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(ok(cuve(h).args(["admin", "init"])).contains("already initialised"));
    ok(cuve(h).args([
        "sql",
        "-e",
        "CREATE DATABASE korea_naver_log; CREATE TABLE korea_naver_log.stream_log (user_id STRING, client_ip STRING) \
         TBLPROPERTIES ('sensitive_columns'='client_ip'); CREATE TABLE korea_naver_log.user_profile (user_id STRING); \
         INSERT INTO korea_naver_log.stream_log VALUES ('u1', '1.2.3.4')",
    ]));
    let (id, secret) = analyst_ticket(
        h,
        "kim",
        &[
            "--grant",
            "SELECT:korea_naver_log.stream_log",
            "--max-scan-bytes-per-day",
            "10GB",
        ],
    );
    assert!(secret.len() >= 64 + id.len());
    // --ticket and CUVE_TICKET both work.
    let q = [
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT user_id FROM korea_naver_log.stream_log",
    ];
    assert_eq!(
        ok(cuve(h).arg("--ticket").arg(&secret).args(q)),
        "user_id\nu1\n"
    );
    assert_eq!(
        ok(cuve(h).env("CUVE_TICKET", &secret).args(q)),
        "user_id\nu1\n"
    );
    // Denied and missing look the same (apart from the name), exit non-zero.
    let denied = cuve(h)
        .arg("--ticket")
        .arg(&secret)
        .args(["sql", "-e", "SELECT * FROM korea_naver_log.user_profile"])
        .output()
        .unwrap();
    let missing = cuve(h)
        .arg("--ticket")
        .arg(&secret)
        .args(["sql", "-e", "SELECT * FROM korea_naver_log.nothing"])
        .output()
        .unwrap();
    assert_eq!(denied.status.code(), missing.status.code());
    assert_ne!(denied.status.code(), Some(0));
    assert_eq!(
        stderr(&denied).replace("user_profile", "X"),
        stderr(&missing).replace("nothing", "X")
    );
    // Sensitive column needs SENSITIVE.
    let o = cuve(h)
        .arg("--ticket")
        .arg(&secret)
        .args([
            "sql",
            "-e",
            "SELECT client_ip FROM korea_naver_log.stream_log",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    ok(cuve(h).args([
        "ticket",
        "grant",
        &id,
        "--grant",
        "SENSITIVE:korea_naver_log.stream_log",
    ]));
    assert_eq!(
        ok(cuve(h).arg("--ticket").arg(&secret).args([
            "sql",
            "--format",
            "csv",
            "-e",
            "SELECT client_ip FROM korea_naver_log.stream_log"
        ])),
        "client_ip\n1.2.3.4\n"
    );
    // An analyst cannot administer tickets.
    let o = cuve(h)
        .arg("--ticket")
        .arg(&secret)
        .args(["ticket", "list"])
        .output()
        .unwrap();
    assert!(ok(cuve(h).args(["ticket", "list"])).contains(&id));
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("tk_"),
        "an analyst sees no tickets"
    );
    let o = cuve(h)
        .arg("--ticket")
        .arg(&secret)
        .args(["user", "add", "eve", "--role", "admin"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    // Quotas: one command raises them; it is audited.
    ok(cuve(h).args([
        "ticket",
        "set-quota",
        &id,
        "--max-scan-bytes-per-query",
        "1",
    ]));
    let o = cuve(h)
        .arg("--ticket")
        .arg(&secret)
        .args(q)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(4),
        "quota exceeded exits 4: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("quota exceeded"), "{}", stderr(&o));
    ok(cuve(h).args([
        "ticket",
        "set-quota",
        &id,
        "--max-scan-bytes-per-query",
        "1TB",
    ]));
    ok(cuve(h).arg("--ticket").arg(&secret).args(q));
    let usage = ok(cuve(h).args(["ticket", "usage", &id, "--json"]));
    let u: serde_json::Value = serde_json::from_str(usage.trim()).unwrap();
    assert!(u[0]["queries"].as_u64().unwrap() >= 4, "{usage}");
    let audit = ok(cuve(h).args(["audit", "--ticket", &id, "--json"]));
    assert!(audit.contains("\"decision\":\"deny\""), "{audit}");
    assert!(ok(cuve(h).args(["audit", "--json"])).contains("ticket set-quota"));
    // Rotation, expiry and revocation.
    let rotated = ok(cuve(h).args(["ticket", "rotate", &id, "--json"]));
    let (_, new_secret) = secret_of(&rotated);
    let o = cuve(h)
        .arg("--ticket")
        .arg(&secret)
        .args(q)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("invalid, expired or revoked ticket"));
    ok(cuve(h).arg("--ticket").arg(&new_secret).args(q));
    ok(cuve(h).args(["ticket", "expire", &id]));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        cuve(h)
            .arg("--ticket")
            .arg(&new_secret)
            .args(q)
            .output()
            .unwrap()
            .status
            .code(),
        Some(3)
    );
    ok(cuve(h).args(["ticket", "expire", &id, "--never"]));
    ok(cuve(h).arg("--ticket").arg(&new_secret).args(q));
    ok(cuve(h).args(["ticket", "revoke", &id]));
    assert_eq!(
        cuve(h)
            .arg("--ticket")
            .arg(&new_secret)
            .args(q)
            .output()
            .unwrap()
            .status
            .code(),
        Some(3)
    );
    // Bad input to the commands is a usage error.
    let o = cuve(h)
        .args(["ticket", "create", "--user", "kim", "--grant", "READ:x.*"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown privilege"), "{}", stderr(&o));
}

#[test]
fn owners_manage_their_database_only() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args(["sql", "-e", "CREATE DATABASE a; CREATE DATABASE b; CREATE TABLE a.t (x STRING); CREATE TABLE b.t (x STRING)"]));
    ok(cuve(h).args(["user", "add", "own", "--role", "owner", "--database", "a"]));
    ok(cuve(h).args(["user", "add", "ana", "--role", "analyst"]));
    let (_, owner) = secret_of(&ok(
        cuve(h).args(["ticket", "create", "--user", "own", "--json"])
    ));
    let mine = ok(cuve(h).arg("--ticket").arg(&owner).args([
        "ticket",
        "create",
        "--user",
        "ana",
        "--grant",
        "SELECT:a.*",
        "--json",
    ]));
    let (_, ana) = secret_of(&mine);
    ok(cuve(h)
        .arg("--ticket")
        .arg(&ana)
        .args(["sql", "-e", "SELECT * FROM a.t"]));
    let o = cuve(h)
        .arg("--ticket")
        .arg(&owner)
        .args(["ticket", "create", "--user", "ana", "--grant", "SELECT:b.*"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // The owner has every privilege on a, none on b.
    ok(cuve(h).arg("--ticket").arg(&owner).args([
        "sql",
        "-e",
        "CREATE TABLE a.u (y STRING); INSERT INTO a.u VALUES ('1')",
    ]));
    let o = cuve(h)
        .arg("--ticket")
        .arg(&owner)
        .args(["sql", "-e", "SELECT * FROM b.t"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}
