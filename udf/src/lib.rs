//! Cuve's SQL functions, registered on a DataFusion context:
//!
//! - [`search`]: search-log functions (query normalisation, Hangul, referrers, user agents,
//!   age bands, CTR), with [`hangul`] holding the Hangul rules.
//! - [`hive`]: Hive-compatible functions (datafusion-spark's plus Cuve's own), with
//!   [`hivetime`] for date functions, [`hivejson`] for JSONPath, [`javafmt`] for Java date
//!   patterns and [`lateral`] for `LATERAL VIEW` / `explode` / `posexplode` / `json_tuple`.
//! - [`topk`]: `approx_top_k`, a mergeable Space-Saving sketch.
//! - [`guards`]: DataFusion built-ins whose extreme arguments would panic, checked first.
//! - [`docs`]: `SHOW FUNCTIONS` / `DESCRIBE FUNCTION` for every registered function.
//! - [`udf`]: the small frame the scalar functions are written in.

pub mod docs;
pub mod guards;
pub mod hangul;
pub mod hive;
pub mod hivejson;
pub mod hivetime;
pub mod javafmt;
pub mod lateral;
pub mod search;
pub mod topk;
pub mod udf;

#[cfg(test)]
mod nopanic;

use datafusion::error::Result;
use datafusion::prelude::SessionContext;

pub use lateral::rewrite_hive;

/// Registers every Cuve function on `ctx` (Hive names win over clashing DataFusion built-ins).
pub fn register_all(ctx: &SessionContext) -> Result<()> {
    hive::register(ctx)?;
    for f in search::functions() {
        ctx.register_udf(f);
    }
    ctx.register_udaf(topk::approx_top_k());
    for f in guards::scalars() {
        ctx.register_udf(f);
    }
    for f in guards::aggregates() {
        ctx.register_udaf(f);
    }
    Ok(())
}
