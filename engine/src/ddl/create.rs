//! `CREATE [EXTERNAL] TABLE`, `CREATE TABLE ... AS SELECT` and `DROP TABLE`, with the checks
//! on where a table's files may live.

use std::path::{Path, PathBuf};

use cuve_catalog::{
    ColumnDef, PARTITION_TIME_ZONE_PROPERTY, SENSITIVE_COLUMNS_PROPERTY, StorageFormat, TableDef,
    names,
};
use datafusion::arrow::array::RecordBatch;

use crate::access;
use crate::error::{EngineError, Result};
use crate::parse::compose;
use crate::parse::{CreateTable, Statement};
use crate::session::{Session, string_batch};
use crate::table::bucket;
use crate::table::layout::{discover_partitions, resolve_location};
use crate::types::{arrow_type, hive_type_name};

impl Session {
    pub(super) async fn create_table(&mut self, c: CreateTable) -> Result<Vec<RecordBatch>> {
        let (db, name) = self.resolve(&c.table)?;
        access::require_alter(&self.access, &db)?;
        if self.engine.catalog().database(&db)?.is_none() {
            return Err(cuve_catalog::CatalogError::DatabaseNotFound(db).into());
        }
        if self.engine.catalog().table(&db, &name)?.is_some() {
            if c.if_not_exists {
                return Ok(vec![]);
            }
            // A table the ticket cannot see is not named as existing.
            if !self.access.sees_table(&db, &name) {
                return Err(EngineError::invalid(format!(
                    "cannot create table '{db}.{name}': the name cannot be used; choose another"
                )));
            }
            return Err(cuve_catalog::CatalogError::TableExists(db, name).into());
        }
        let format = StorageFormat::parse(c.format.as_deref().unwrap_or("PARQUET"))?;
        let location = match &c.location {
            Some(l) => resolve_location(l)?,
            None => self.engine.warehouse().join(&db).join(&name),
        };
        self.check_location(&db, &name, &location, !c.external)?;
        if c.external && c.location.is_some() && !crate::storage::dirs::is_dir(&location)? {
            return Err(EngineError::File {
                path: location.display().to_string(),
                message: "LOCATION does not exist (create the directory first, or omit LOCATION for a managed table)".into(),
            });
        }
        let mut columns = c.columns.clone();
        let mut partition_columns: Vec<ColumnDef> = Vec::new();
        let query_schema = match &c.query {
            Some(q) => Some(
                self.plan_statement(query_statement(q.clone()))
                    .await?
                    .schema()
                    .as_arrow()
                    .clone(),
            ),
            None => None,
        };
        if let Some(schema) = &query_schema {
            if !columns.is_empty() {
                return Err(EngineError::invalid(
                    "CREATE TABLE ... AS SELECT takes its columns from the query: remove the column list",
                ));
            }
            let part_names: Vec<String> = c
                .partition_columns
                .iter()
                .map(|p| p.0.to_lowercase())
                .collect();
            for f in schema.fields() {
                let cdef = ColumnDef::new(f.name().to_lowercase(), hive_type_name(f.data_type())?);
                if part_names.contains(&cdef.name) {
                    continue;
                }
                columns.push(cdef);
            }
            for (p, _, comment) in &c.partition_columns {
                let f = schema.field_with_name(p).map_err(|_| {
                    EngineError::invalid(format!(
                        "partition column '{p}' is not a column of the query"
                    ))
                })?;
                let mut cdef = ColumnDef::new(p.to_lowercase(), hive_type_name(f.data_type())?);
                cdef.comment = comment.clone();
                partition_columns.push(cdef);
            }
        } else {
            for (p, ty, comment) in &c.partition_columns {
                let ty = ty.clone().ok_or_else(|| {
                    EngineError::invalid(format!(
                        "partition column '{p}' needs a type, e.g. PARTITIONED BY ({p} STRING)"
                    ))
                })?;
                let mut cdef = ColumnDef::new(p.clone(), ty);
                cdef.comment = comment.clone();
                partition_columns.push(cdef);
            }
        }
        if columns.is_empty() {
            if format == StorageFormat::Parquet && c.location.is_some() {
                columns = crate::stats::infer_parquet_columns(&location, &partition_columns)?;
            } else {
                return Err(EngineError::invalid(format!(
                    "CREATE TABLE {db}.{name}: no columns given"
                )));
            }
        }
        // Canonical, unique names.
        let mut seen = std::collections::HashSet::new();
        for col in columns.iter_mut().chain(partition_columns.iter_mut()) {
            col.name = names::column_name(&col.name)?;
            if !seen.insert(col.name.clone()) {
                return Err(EngineError::invalid(format!(
                    "column '{}' is defined twice",
                    col.name
                )));
            }
        }
        let mut bucket_spec = c.bucket.clone();
        if let Some(b) = &mut bucket_spec {
            for col in b.columns.iter_mut().chain(b.sorted_by.iter_mut()) {
                *col = names::column_name(col)?;
            }
            let bucket_cols = b.columns.clone();
            for col in b.columns.iter().chain(b.sorted_by.iter()) {
                let Some(def) = columns.iter().find(|d| d.name == *col) else {
                    return Err(EngineError::invalid(format!(
                        "CLUSTERED BY / SORTED BY column '{col}' is not a data column of {db}.{name}"
                    )));
                };
                if bucket_cols.contains(col)
                    && !bucket::supported_type(&arrow_type(&def.data_type)?)
                {
                    return Err(EngineError::invalid(format!(
                        "cannot bucket on column '{col}' of type {}: use STRING, INT, BIGINT or DATE",
                        def.data_type
                    )));
                }
            }
        }
        let mut def = TableDef {
            database: db.clone(),
            name: name.clone(),
            columns,
            partition_columns,
            bucket: bucket_spec,
            format,
            location: location.display().to_string(),
            external: c.external,
            comment: c.comment.clone(),
            properties: c.properties.clone(),
            created_at: String::new(),
            updated_at: String::new(),
            version: 1,
        };
        if def.bucket.is_some() && !def.external {
            // Cuve writes v2; recorded so the table reads the same wherever it is registered.
            def.properties
                .entry(cuve_catalog::BUCKETING_VERSION_PROPERTY.into())
                .or_insert_with(|| "2".into());
        }
        validate_properties(&mut def)?;
        let created_dir = !crate::storage::is_object(&def.location) && !location.exists();
        if created_dir {
            std::fs::create_dir_all(&location).map_err(|e| EngineError::io(&location, e))?;
        }
        if let Some(q) = &c.query {
            let out = self.create_table_as(&def, q.clone()).await;
            if out.is_err() && created_dir && self.engine.catalog().table(&db, &name)?.is_none() {
                let _ = std::fs::remove_dir_all(&location);
            }
            return out;
        }
        self.engine.catalog().create_table(&def, false)?;
        let mut out = vec![];
        if c.external {
            let mut rows = Vec::new();
            let dirs = if def.partition_columns.is_empty() {
                vec![location.clone()]
            } else {
                let (found, bad) = discover_partitions(&def)?;
                self.engine
                    .catalog()
                    .add_partitions(&db, &name, &found, true)?;
                if !found.is_empty() {
                    rows.push(vec![format!(
                        "registered {} existing partitions",
                        found.len()
                    )]);
                }
                for b in &bad {
                    rows.push(vec![format!("warning: skipped {}: {}", b.path, b.reason)]);
                }
                found.iter().map(|p| PathBuf::from(&p.location)).collect()
            };
            rows.extend(self.check_layout(&db, &name, &dirs)?);
            if !rows.is_empty() {
                out.push(string_batch(&["result"], rows)?);
            }
        } else if c.location.is_some() && def.partition_columns.is_empty() {
            // A managed table over files already there: checked like an external one.
            let rows = self.check_layout(&db, &name, std::slice::from_ref(&location))?;
            if !rows.is_empty() {
                out.push(string_batch(&["result"], rows)?);
            }
        }
        Ok(out)
    }

    /// `CREATE TABLE ... AS SELECT`: the query runs through admission, byte quota, run time
    /// and metering like any other; its rows are staged, and one commit creates the table with
    /// them, so the table appears whole or not at all (also across a crash).
    pub(super) async fn create_table_as(
        &mut self,
        def: &TableDef,
        query: Box<datafusion::sql::sqlparser::ast::Query>,
    ) -> Result<Vec<RecordBatch>> {
        use datafusion::arrow::array::UInt64Array;
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::datasource::TableProvider;

        let cols = def.all_columns().map(|c| compose::ident(&c.name)).collect();
        let select = compose::select_from(query, "__cuve_ctas", Some(cols), vec![])?;
        let audit = select.to_string();
        let out = self
            .run_admitted(
                &audit,
                query_statement(select),
                &crate::parse::Params::None,
                std::time::Instant::now(),
            )
            .await?;
        let catalog = self.engine.catalog().clone();
        let schema = crate::table::CuveTable::try_new(def.clone(), catalog.clone())?.schema();
        let summary = crate::table::writer::write_stream(
            std::sync::Arc::new(def.clone()),
            catalog,
            schema,
            crate::table::writer::WriteMode::Create,
            out.stream,
        )
        .await?;
        let count = std::sync::Arc::new(Schema::new(vec![Field::new(
            "count",
            DataType::UInt64,
            false,
        )]));
        Ok(vec![RecordBatch::try_new(
            count,
            vec![std::sync::Arc::new(UInt64Array::from(vec![summary.rows]))],
        )?])
    }

    pub(super) fn drop_table(&mut self, stmt: Statement) -> Result<Vec<RecordBatch>> {
        match stmt {
            Statement::DropTable {
                table,
                if_exists,
                purge: _,
            } => {
                let (db, name) = self.resolve(&table)?;
                let visible = self.access.sees_table(&db, &name)
                    && self.engine.catalog().table(&db, &name)?.is_some();
                if !visible {
                    if if_exists {
                        return Ok(vec![]);
                    }
                    return Err(EngineError::invalid(format!(
                        "table '{db}.{name}' does not exist"
                    )));
                }
                access::require_alter(&self.access, &db)?;
                if let Some(def) = self.engine.catalog().drop_table(&db, &name)? {
                    self.remove_managed_files(&def)?;
                }
                Ok(vec![])
            }
            _ => Err(super::misrouted()),
        }
    }

    /// Checks a user-given LOCATION: non-admin tickets stay inside their database's warehouse
    /// directory, and nobody may give a managed table (or a non-admin any table) the files of
    /// another table.
    pub(super) fn check_location(
        &self,
        db: &str,
        table: &str,
        path: &Path,
        managed: bool,
    ) -> Result<()> {
        let own = self.engine.warehouse().join(db);
        if !self.access.admin && !path.starts_with(&own) {
            return Err(EngineError::Denied(format!(
                "LOCATION {} is outside {}: only admin tickets may place tables elsewhere",
                path.display(),
                own.display()
            )));
        }
        // Cuve writes (and on DROP deletes) a managed table's files: never in the system's own
        // directories.
        const SYSTEM: &[&str] = &[
            "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/run", "/sbin",
            "/sys", "/usr",
        ];
        if managed && (path == Path::new("/") || SYSTEM.iter().any(|d| path.starts_with(d))) {
            return Err(EngineError::invalid(format!(
                "LOCATION {} is a system directory: a managed table's files are written and \
                 deleted by Cuve; choose a data directory (or CREATE EXTERNAL TABLE to read files \
                 there)",
                path.display()
            )));
        }
        if (managed || !self.access.admin)
            && let Some(other) = self.overlapping_table(db, table, path)?
        {
            return Err(EngineError::invalid(format!(
                "LOCATION {} overlaps the files of {other}: choose another directory",
                path.display()
            )));
        }
        Ok(())
    }

    /// Another table whose location contains, or is inside, `path`.
    pub(super) fn overlapping_table(
        &self,
        db: &str,
        table: &str,
        path: &Path,
    ) -> Result<Option<String>> {
        let catalog = self.engine.catalog();
        for d in catalog.databases()? {
            for t in catalog.table_names(&d.name)? {
                if d.name == db && t == table {
                    continue;
                }
                if let Some(def) = catalog.table(&d.name, &t)? {
                    let other = PathBuf::from(&def.location);
                    if other.starts_with(path) || path.starts_with(&other) {
                        // Tables the ticket cannot see are not named.
                        return Ok(Some(if self.access.sees_table(&d.name, &t) {
                            format!("table {}", def.qualified_name())
                        } else {
                            "another table".to_string()
                        }));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Deletes the files of a managed table (never outside the warehouse).
    pub(super) fn remove_managed_files(&self, def: &TableDef) -> Result<()> {
        if def.external {
            return Ok(());
        }
        let loc = PathBuf::from(&def.location);
        if !loc.starts_with(self.engine.warehouse()) {
            log::warn!(
                "managed table {} lives outside the warehouse; its files at {} are kept",
                def.qualified_name(),
                def.location
            );
            return Ok(());
        }
        if let Some(other) = self.overlapping_table(&def.database, &def.name, &loc)? {
            log::warn!(
                "table {} shares files with {other}; its files at {} are kept",
                def.qualified_name(),
                loc.display()
            );
            return Ok(());
        }
        crate::storage::dirs::remove_dir(&loc)?;
        crate::table::mapped::forget(&loc);
        Ok(())
    }
}

/// Checks and applies table properties (sensitive columns, bucketing version, time zone,
/// Parquet codec).
pub(super) fn validate_properties(def: &mut TableDef) -> Result<()> {
    crate::table::writer::parquet_compression(def)?;
    if let Some(v) = def.properties.get(cuve_catalog::BUCKETING_VERSION_PROPERTY)
        && !matches!(v.trim(), "1" | "2")
    {
        return Err(EngineError::invalid(format!(
            "'bucketing_version' must be 1 or 2, not '{v}'"
        )));
    }
    if let Some(tz) = def.properties.get(PARTITION_TIME_ZONE_PROPERTY)
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        return Err(EngineError::invalid(format!(
            "'{PARTITION_TIME_ZONE_PROPERTY}' = '{tz}' is not a time zone name (e.g. UTC, Asia/Seoul)"
        )));
    }
    if let Some(v) = def.properties.get(SENSITIVE_COLUMNS_PROPERTY).cloned() {
        let canon: Vec<String> = v
            .split(',')
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(names::column_name)
            .collect::<std::result::Result<_, _>>()?;
        def.properties
            .insert(SENSITIVE_COLUMNS_PROPERTY.into(), canon.join(","));
    }
    def.apply_sensitive_property()?;
    crate::lifecycle::policy::validate(def)?;
    Ok(())
}

/// A query as a statement for DataFusion's planner.
fn query_statement(
    q: Box<datafusion::sql::sqlparser::ast::Query>,
) -> datafusion::sql::parser::Statement {
    datafusion::sql::parser::Statement::Statement(Box::new(
        datafusion::sql::sqlparser::ast::Statement::Query(q),
    ))
}
