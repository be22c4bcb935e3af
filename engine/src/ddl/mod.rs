//! Statements Cuve executes itself, one file per kind of statement:
//!
//! - [`database`]: `CREATE`/`DROP DATABASE`, `USE`, `SHOW DATABASES`, `SHOW TABLES`.
//! - [`create`]: `CREATE [EXTERNAL] TABLE`, `CREATE TABLE AS SELECT`, `DROP TABLE`.
//! - [`alter`]: `ALTER TABLE` (location, partitions, properties), `MSCK REPAIR TABLE`.
//! - [`show`]: `SHOW PARTITIONS / CREATE TABLE / TABLE STATS / FUNCTIONS`, `DESCRIBE`.
//! - [`insert`]: Hive `INSERT ... PARTITION (...)` rewritten for DataFusion's planner.
//! - [`sql_text`]: quoting literals in the SQL text Cuve prints.
//!
//! What a session may see and change is decided in [`crate::access`].

mod alter;
mod create;
mod database;
mod insert;
mod show;
pub(crate) mod sql_text;

use cuve_catalog::TableDef;
use datafusion::arrow::array::RecordBatch;

use crate::access;
use crate::error::{EngineError, Result};
use crate::parse::{Statement, TableName, canonical_table};
use crate::session::Session;

pub use show::show_create;
pub(crate) use sql_text::quote_literal;

impl Session {
    /// Resolves a table reference to canonical `(db, table)`.
    pub(crate) fn resolve(&self, t: &TableName) -> Result<(String, String)> {
        let t = canonical_table(t)?;
        Ok((
            t.database.unwrap_or_else(|| self.current_db.clone()),
            t.name,
        ))
    }

    /// Loads a table the session may see; the error for a missing and a forbidden table is the same.
    pub(crate) fn visible_table(&self, t: &TableName) -> Result<TableDef> {
        let (db, name) = self.resolve(t)?;
        access::visible_table(&self.access, self.engine.catalog(), &db, &name)
    }

    /// A table the session may change with `ALTER` rights (its full definition, sensitive
    /// columns included).
    fn alterable_table(&self, t: &TableName) -> Result<TableDef> {
        let def = self.visible_table(t)?;
        access::require_alter(&self.access, &def.database)?;
        self.engine
            .catalog()
            .table(&def.database, &def.name)?
            .ok_or_else(|| {
                EngineError::invalid(format!("table '{}' does not exist", def.qualified_name()))
            })
    }

    /// Runs a statement of Cuve's own (see the module doc).
    pub(crate) async fn run_front(&mut self, stmt: Statement) -> Result<Vec<RecordBatch>> {
        match stmt {
            s @ (Statement::CreateDatabase { .. }
            | Statement::DropDatabase { .. }
            | Statement::Use(_)
            | Statement::ShowDatabases { .. }
            | Statement::ShowTables { .. }) => self.run_database_statement(s),
            s @ (Statement::ShowPartitions(_)
            | Statement::ShowCreateTable(_)
            | Statement::ShowTableStats(_)
            | Statement::ShowFunctions { .. }
            | Statement::DescribeFunction(_)
            | Statement::Describe { .. }) => self.run_show_statement(s),
            Statement::CreateTable(c) => self.create_table(*c).await,
            s @ Statement::DropTable { .. } => self.drop_table(s),
            Statement::AlterTable { table, action } => self.alter_table(&table, action),
            Statement::MsckRepair(t) => self.msck_repair(&t),
            Statement::Sql(_) | Statement::Insert { .. } => {
                Err(EngineError::invalid("internal: not a front statement"))
            }
        }
    }
}

/// The error for a statement routed to the wrong handler (a bug, never user input).
fn misrouted() -> EngineError {
    EngineError::Internal("statement routed to the wrong handler".into())
}
