//! CLI tests: they run the real `cuve` binary.

mod batch;
mod cluster;
mod crash;
mod demo;
mod flight;
mod hardening;
mod intake;
mod lifecycle;
mod repl;
mod s3;
mod sql;
mod tickets;

use std::path::Path;
use std::process::{Command, Output};

/// A `cuve` command with `--home`.
pub fn cuve(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cuve"));
    c.arg("--home").arg(home);
    c.env_remove("CUVE_HOME")
        .env_remove("CUVE_TICKET")
        .env_remove("CUVE_WAREHOUSE")
        .env_remove("CUVE_CLUSTER")
        .env_remove("CUVE_CLUSTER_SECRET");
    c
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Runs and asserts success, returning stdout.
pub fn ok(c: &mut Command) -> String {
    let o = c.output().expect("cuve runs");
    assert!(
        o.status.success(),
        "cuve failed: {:?}\nstdout: {}\nstderr: {}",
        c,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}
