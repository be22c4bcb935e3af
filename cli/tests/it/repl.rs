//! The REPL through a pseudo-terminal: multi-line input, completion, Ctrl-C cancelling a long
//! query without leaving, history kept across sessions.

use rexpect::session::spawn_command;

use super::{cuve, ok};

#[test]
fn repl_in_a_terminal() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(cuve(h).args(["sql", "-e", "CREATE DATABASE korea_naver_log; CREATE TABLE korea_naver_log.stream_log (user_id STRING, query STRING)"]));
    let mut cmd = cuve(h);
    cmd.env("TERM", "xterm");
    let mut p = spawn_command(cmd, Some(30_000)).unwrap();
    p.exp_string("cuve:default>").unwrap();
    // Multi-line statement until ';'.
    p.send_line("SELECT 40").unwrap();
    p.exp_string("...>").unwrap();
    p.send_line("  + 2 AS answer;").unwrap();
    p.exp_string("42").unwrap();
    p.exp_string("1 rows").unwrap();
    // Input typed before the next prompt is drawn can be eaten by the line editor's cursor query
    // (as in a real terminal), so every line below waits for its prompt.
    p.exp_string("cuve:default>").unwrap();
    // Tab completes databases and tables the ticket can see.
    p.send("SELECT * FROM korea_na").unwrap();
    p.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.send("\t").unwrap();
    p.flush().unwrap();
    p.exp_string("korea_naver_log").unwrap();
    p.send_line(".stream_log;").unwrap();
    p.exp_string("user_id").unwrap();
    p.exp_string("cuve:default>").unwrap();
    // Ctrl-C cancels a long query and the REPL goes on.
    p.send_line("SELECT COUNT(*) FROM generate_series(1, 100000) a CROSS JOIN generate_series(1, 100000) b WHERE a.value * b.value = 7;").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    p.send_control('c').unwrap();
    p.exp_string("query cancelled").unwrap();
    p.exp_string("cuve:default>").unwrap();
    p.send_line("SELECT 'still here' AS s;").unwrap();
    p.exp_string("still here").unwrap();
    p.exp_string("cuve:default>").unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
    // History persists across sessions.
    let history = std::fs::read_to_string(h.join("history")).unwrap();
    assert!(history.contains("+ 2 AS answer;"), "{history}");
    let mut cmd = cuve(h);
    cmd.env("TERM", "xterm");
    let mut p = spawn_command(cmd, Some(30_000)).unwrap();
    p.exp_string("cuve:default>").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}
