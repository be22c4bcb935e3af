//! `cuve demo`: placeholder until ingest lands.
use crate::context::CliContext;
use crate::exit::CliResult;

pub async fn run(_ctx: &CliContext, _days: u32, _rows: u64) -> CliResult {
    Ok(())
}
