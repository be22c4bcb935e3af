//! Statements Cuve executes itself: databases, Hive table DDL, partitions, SHOW and DESCRIBE,
//! and the rewrite of Hive INSERT into DataFusion's INSERT.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cuve_catalog::{
    Catalog, ColumnDef, DatabaseDef, PARTITION_TIME_ZONE_PROPERTY, PartitionDef,
    SENSITIVE_COLUMNS_PROPERTY, StorageFormat, TableDef, names, partition_spec,
};
use datafusion::arrow::array::RecordBatch;

use crate::error::{EngineError, Result};
use crate::parse::{
    AlterAction, CreateTable, PartitionSpec, Statement, TableName, canonical_table,
};
use crate::session::{Session, string_batch};
use crate::table::layout::{
    BadPartitionDir, discover_partitions, resolve_location, validate_partition_value,
};
use crate::table::{bucket, verify};
use crate::types::{arrow_type, hive_type_name};

/// Quotes an identifier for DataFusion's SQL.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a string literal for SQL.
pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn like_matches(pattern: &str, s: &str) -> bool {
    // Hive's SHOW ... LIKE uses '*' wildcards and '|' alternatives; SQL '%'/'_' are accepted too.
    pattern.split('|').any(|p| {
        let mut re = String::from("^");
        for c in p.trim().to_lowercase().chars() {
            match c {
                '*' | '%' => re.push_str(".*"),
                '_' => re.push('.'),
                c => re.push_str(&regex_escape(c)),
            }
        }
        re.push('$');
        regex_lite_match(&re, s)
    })
}

fn regex_escape(c: char) -> String {
    if c.is_alphanumeric() {
        c.to_string()
    } else {
        format!("\\{c}")
    }
}

fn regex_lite_match(re: &str, s: &str) -> bool {
    datafusion::arrow::compute::kernels::regexp::regexp_is_match_scalar(
        &datafusion::arrow::array::StringArray::from(vec![s]),
        re,
        None,
    )
    .map(|a| a.value(0))
    .unwrap_or(false)
}

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
        let def = if self.access.sees_table(&db, &name) {
            self.engine.catalog().table(&db, &name)?
        } else {
            None
        };
        let def =
            def.ok_or_else(|| EngineError::invalid(format!("table '{db}.{name}' does not exist")))?;
        Ok(crate::catalog_view::visible_def(
            def,
            !self.access.sees_sensitive(&db, &name),
        ))
    }

    /// A table the session may change with `ALTER` rights.
    fn alterable_table(&self, t: &TableName) -> Result<TableDef> {
        let def = self.visible_table(t)?;
        self.require_alter(&def.database)?;
        // Use the full definition (with sensitive columns) for changes.
        self.engine
            .catalog()
            .table(&def.database, &def.name)?
            .ok_or_else(|| {
                EngineError::invalid(format!("table '{}' does not exist", def.qualified_name()))
            })
    }

    fn require_alter(&self, db: &str) -> Result<()> {
        if self.access.allows(crate::access::Privilege::Alter, db, "*") {
            Ok(())
        } else {
            Err(EngineError::Denied(format!(
                "DDL on database '{db}' needs a ticket with ALTER on {db}.*"
            )))
        }
    }

    fn require_admin(&self, what: &str) -> Result<()> {
        if self.access.admin {
            Ok(())
        } else {
            Err(EngineError::Denied(format!("{what} needs an admin ticket")))
        }
    }

    pub(crate) async fn run_front(&mut self, stmt: Statement) -> Result<Vec<RecordBatch>> {
        match stmt {
            Statement::CreateDatabase {
                name,
                if_not_exists,
                comment,
            } => {
                self.require_admin("CREATE DATABASE")?;
                let name = names::database_name(&name)?;
                let created = self.engine.catalog().create_database(
                    &DatabaseDef {
                        name: name.clone(),
                        comment,
                        owner: Some(self.access.user.clone()),
                        created_at: chrono::Utc::now().to_rfc3339(),
                    },
                    if_not_exists,
                )?;
                if created {
                    let dir = self.engine.warehouse().join(&name);
                    std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
                }
                Ok(vec![])
            }
            Statement::DropDatabase {
                name,
                if_exists,
                cascade,
            } => {
                self.require_admin("DROP DATABASE")?;
                let name = names::database_name(&name)?;
                match self.engine.catalog().drop_database(&name, cascade)? {
                    None if !if_exists => {
                        Err(cuve_catalog::CatalogError::DatabaseNotFound(name).into())
                    }
                    None => Ok(vec![]),
                    Some(tables) => {
                        for t in tables {
                            self.remove_managed_files(&t)?;
                        }
                        let dir = self.engine.warehouse().join(&name);
                        let _ = std::fs::remove_dir(&dir);
                        if self.current_db == name {
                            self.set_current_database("default");
                        }
                        Ok(vec![])
                    }
                }
            }
            Statement::Use(db) => {
                let db = names::database_name(&db)?;
                let exists = self.engine.catalog().database(&db)?.is_some();
                if !exists || !(self.access.sees_database(&db) || db == "default") {
                    return Err(cuve_catalog::CatalogError::DatabaseNotFound(db).into());
                }
                self.set_current_database(&db);
                Ok(vec![])
            }
            Statement::ShowDatabases { like } => {
                let rows = self
                    .engine
                    .catalog()
                    .databases()?
                    .into_iter()
                    .filter(|d| self.access.sees_database(&d.name) || d.name == "default")
                    .filter(|d| {
                        like.as_ref()
                            .map(|p| like_matches(p, &d.name))
                            .unwrap_or(true)
                    })
                    .map(|d| vec![d.name, d.comment.unwrap_or_default()])
                    .collect();
                Ok(vec![string_batch(&["database_name", "comment"], rows)?])
            }
            Statement::ShowTables { database, like } => {
                let db = match database {
                    Some(d) => names::database_name(&d)?,
                    None => self.current_db.clone(),
                };
                if self.engine.catalog().database(&db)?.is_none()
                    || !(self.access.sees_database(&db) || db == "default")
                {
                    return Err(cuve_catalog::CatalogError::DatabaseNotFound(db).into());
                }
                let rows = self
                    .engine
                    .catalog()
                    .table_names(&db)?
                    .into_iter()
                    .filter(|t| self.access.sees_table(&db, t))
                    .filter(|t| like.as_ref().map(|p| like_matches(p, t)).unwrap_or(true))
                    .map(|t| vec![t])
                    .collect();
                Ok(vec![string_batch(&["tab_name"], rows)?])
            }
            Statement::ShowPartitions(t) => {
                let def = self.visible_table(&t)?;
                if def.partition_columns.is_empty() {
                    return Err(EngineError::invalid(format!(
                        "table '{}' is not partitioned",
                        def.qualified_name()
                    )));
                }
                let rows = self
                    .engine
                    .catalog()
                    .partitions(&def.database, &def.name)?
                    .into_iter()
                    .map(|p| vec![p.spec()])
                    .collect();
                Ok(vec![string_batch(&["partition"], rows)?])
            }
            Statement::ShowCreateTable(t) => {
                let def = self.visible_table(&t)?;
                Ok(vec![string_batch(
                    &["createtab_stmt"],
                    vec![vec![show_create(&def)]],
                )?])
            }
            Statement::ShowTableStats(t) => {
                let def = self.visible_table(&t)?;
                Ok(vec![crate::stats::table_stats(
                    self.engine.catalog(),
                    &def,
                )?])
            }
            Statement::ShowFunctions { like } => Ok(vec![cuve_udf::docs::show_functions(
                &self.ctx,
                like.as_deref(),
            )?]),
            Statement::DescribeFunction(name) => {
                Ok(vec![cuve_udf::docs::describe_function(&self.ctx, &name)?])
            }
            Statement::Describe { table, formatted } => {
                let def = self.visible_table(&table)?;
                let cuve_wrote = !verify::applies(self.engine.catalog(), &def);
                Ok(vec![describe(&def, formatted, cuve_wrote)?])
            }
            Statement::CreateTable(c) => self.create_table(*c).await,
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
                self.require_alter(&db)?;
                if let Some(def) = self.engine.catalog().drop_table(&db, &name)? {
                    self.remove_managed_files(&def)?;
                }
                Ok(vec![])
            }
            Statement::AlterTable { table, action } => self.alter_table(&table, action),
            Statement::MsckRepair(t) => {
                let def = self.alterable_table(&t)?;
                if def.partition_columns.is_empty() && def.bucket.is_some() {
                    // Nothing to register: check the files of the table's root.
                    let mut rows = vec![vec!["partitions added: 0, found: 0".to_string()]];
                    rows.extend(self.check_layout(
                        &def.database,
                        &def.name,
                        &[PathBuf::from(&def.location)],
                    )?);
                    return Ok(vec![string_batch(&["result"], rows)?]);
                }
                if def.partition_columns.is_empty() {
                    return Err(EngineError::invalid(format!(
                        "MSCK REPAIR TABLE: table '{}' is not partitioned",
                        def.qualified_name()
                    )));
                }
                let (found, bad) = discover_partitions(&def)?;
                if !bad.is_empty() {
                    return Err(bad_dirs_error(&def, &bad));
                }
                let added =
                    self.engine
                        .catalog()
                        .add_partitions(&def.database, &def.name, &found, true)?;
                let known: Vec<String> = found.iter().map(|p| p.location.clone()).collect();
                let mut rows = vec![vec![format!(
                    "partitions added: {added}, found: {}",
                    found.len()
                )]];
                let dirs: Vec<PathBuf> = found.iter().map(|p| PathBuf::from(&p.location)).collect();
                rows.extend(self.check_layout(&def.database, &def.name, &dirs)?);
                // Partitions registered whose directory is gone are reported, not dropped.
                for p in self.engine.catalog().partitions(&def.database, &def.name)? {
                    if !known.contains(&p.location) && !Path::new(&p.location).exists() {
                        rows.push(vec![format!(
                            "partition {} is registered but its directory {} is missing",
                            p.spec(),
                            p.location
                        )]);
                    }
                }
                Ok(vec![string_batch(&["result"], rows)?])
            }
            Statement::Sql(_) | Statement::Insert { .. } => {
                Err(EngineError::invalid("internal: not a front statement"))
            }
        }
    }

    /// Checks the bucket layout of the files in `dirs` (external bucketed tables; see
    /// table/verify.rs) and returns the warnings as result rows.
    fn check_layout(&self, db: &str, name: &str, dirs: &[PathBuf]) -> Result<Vec<Vec<String>>> {
        let Some(def) = self.engine.catalog().table(db, name)? else {
            return Ok(vec![]);
        };
        Ok(verify::check_dirs(self.engine.catalog(), &def, dirs)?
            .into_iter()
            .map(|w| vec![w])
            .collect())
    }

    /// [`Self::check_layout`] as a statement result (no rows when all is well).
    fn layout_result(&self, def: &TableDef, dirs: &[PathBuf]) -> Result<Vec<RecordBatch>> {
        let rows = self.check_layout(&def.database, &def.name, dirs)?;
        if rows.is_empty() {
            return Ok(vec![]);
        }
        Ok(vec![string_batch(&["result"], rows)?])
    }

    /// After a change of the declared layout (`bucketing_version`): forgets every check and
    /// checks every file again.
    fn recheck_layout(&self, def: &TableDef, relayout: bool) -> Result<Vec<RecordBatch>> {
        let catalog = self.engine.catalog();
        let Some(def) = catalog.table(&def.database, &def.name)? else {
            return Ok(vec![]);
        };
        let def = &def;
        if !relayout || !verify::applies(catalog, def) {
            return Ok(vec![]);
        }
        let dirs: Vec<PathBuf> = if def.partition_columns.is_empty() {
            vec![PathBuf::from(&def.location)]
        } else {
            catalog
                .partitions(&def.database, &def.name)?
                .iter()
                .map(|p| PathBuf::from(&p.location))
                .collect()
        };
        self.layout_result(def, &dirs)
    }

    /// Checks a user-given LOCATION: non-admin tickets stay inside their database's warehouse
    /// directory, and nobody may give a managed table (or a non-admin any table) the files of
    /// another table.
    fn check_location(&self, db: &str, table: &str, path: &Path, managed: bool) -> Result<()> {
        let own = self.engine.warehouse().join(db);
        if !self.access.admin && !path.starts_with(&own) {
            return Err(EngineError::Denied(format!(
                "LOCATION {} is outside {}: only admin tickets may place tables elsewhere",
                path.display(),
                own.display()
            )));
        }
        if (managed || !self.access.admin)
            && let Some(other) = self.overlapping_table(db, table, path)?
        {
            return Err(EngineError::invalid(format!(
                "LOCATION {} overlaps the files of table {other}: choose another directory",
                path.display()
            )));
        }
        Ok(())
    }

    /// Another table whose location contains, or is inside, `path`.
    fn overlapping_table(&self, db: &str, table: &str, path: &Path) -> Result<Option<String>> {
        let catalog = self.engine.catalog();
        for d in catalog.databases()? {
            for t in catalog.table_names(&d.name)? {
                if d.name == db && t == table {
                    continue;
                }
                if let Some(def) = catalog.table(&d.name, &t)? {
                    let other = PathBuf::from(&def.location);
                    if other.starts_with(path) || path.starts_with(&other) {
                        return Ok(Some(def.qualified_name()));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Deletes the files of a managed table (never outside the warehouse).
    fn remove_managed_files(&self, def: &TableDef) -> Result<()> {
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
        if loc.exists() {
            std::fs::remove_dir_all(&loc).map_err(|e| EngineError::io(&loc, e))?;
            crate::table::mapped::forget(&loc);
        }
        Ok(())
    }

    async fn create_table(&mut self, c: CreateTable) -> Result<Vec<RecordBatch>> {
        let (db, name) = self.resolve(&c.table)?;
        self.require_alter(&db)?;
        if self.engine.catalog().database(&db)?.is_none() {
            return Err(cuve_catalog::CatalogError::DatabaseNotFound(db).into());
        }
        if self.engine.catalog().table(&db, &name)?.is_some() {
            if c.if_not_exists {
                return Ok(vec![]);
            }
            return Err(cuve_catalog::CatalogError::TableExists(db, name).into());
        }
        let format = StorageFormat::parse(c.format.as_deref().unwrap_or("PARQUET"))?;
        let location = match &c.location {
            Some(l) => resolve_location(l)?,
            None => self.engine.warehouse().join(&db).join(&name),
        };
        self.check_location(&db, &name, &location, !c.external)?;
        if c.external && c.location.is_some() && !location.exists() {
            return Err(EngineError::File {
                path: location.display().to_string(),
                message: "LOCATION does not exist (create the directory first, or omit LOCATION for a managed table)".into(),
            });
        }
        let mut columns = c.columns.clone();
        let mut partition_columns: Vec<ColumnDef> = Vec::new();
        let query_schema = match &c.query {
            Some(q) => Some(
                self.ctx
                    .state()
                    .create_logical_plan(q)
                    .await
                    .map_err(EngineError::from_datafusion)?
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
        let created_dir = !location.exists();
        if created_dir {
            std::fs::create_dir_all(&location).map_err(|e| EngineError::io(&location, e))?;
        }
        if let Some(q) = &c.query {
            let out = self.create_table_as(&def, q).await;
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
    async fn create_table_as(&mut self, def: &TableDef, query: &str) -> Result<Vec<RecordBatch>> {
        use datafusion::arrow::array::UInt64Array;
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::datasource::TableProvider;

        let cols: Vec<String> = def.all_columns().map(|c| quote_ident(&c.name)).collect();
        let sql = format!("SELECT {} FROM ({query}) AS __cuve_ctas", cols.join(", "));
        let out = self
            .run_admitted(
                &sql,
                &sql,
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

    fn alter_table(&mut self, t: &TableName, action: AlterAction) -> Result<Vec<RecordBatch>> {
        let def = self.alterable_table(t)?;
        let catalog = self.engine.catalog().clone();
        match action {
            AlterAction::SetLocation {
                partition: None,
                location,
            } => {
                let loc = resolve_location(&location)?;
                if !loc.is_dir() {
                    return Err(EngineError::File {
                        path: loc.display().to_string(),
                        message: "SET LOCATION: directory does not exist".into(),
                    });
                }
                self.check_location(&def.database, &def.name, &loc, !def.external)?;
                let mut moved = def.clone();
                moved.location = loc.display().to_string();
                let parts = if def.partition_columns.is_empty() {
                    vec![]
                } else {
                    let (found, bad) = discover_partitions(&moved)?;
                    if !bad.is_empty() {
                        return Err(bad_dirs_error(&moved, &bad));
                    }
                    found
                };
                catalog.relocate_table(&def.database, &def.name, &moved.location, &parts)?;
                let dirs = if parts.is_empty() {
                    vec![loc.clone()]
                } else {
                    parts.iter().map(|p| PathBuf::from(&p.location)).collect()
                };
                self.layout_result(&def, &dirs)
            }
            AlterAction::SetLocation {
                partition: Some(spec),
                location,
            } => {
                let values = full_partition(&def, &spec)?;
                let loc = resolve_location(&location)?;
                if !loc.is_dir() {
                    return Err(EngineError::File {
                        path: loc.display().to_string(),
                        message: "SET LOCATION: directory does not exist".into(),
                    });
                }
                self.check_location(&def.database, &def.name, &loc, !def.external)?;
                catalog.set_partition_location(
                    &def.database,
                    &def.name,
                    &partition_spec(&values),
                    &loc.display().to_string(),
                )?;
                self.layout_result(&def, &[loc])
            }
            AlterAction::AddPartitions {
                if_not_exists,
                partitions,
            } => {
                let mut defs = Vec::new();
                for (spec, loc) in partitions {
                    let values = full_partition(&def, &spec)?;
                    let dir = match loc {
                        Some(l) => {
                            let p = resolve_location(&l)?;
                            self.check_location(&def.database, &def.name, &p, !def.external)?;
                            if !p.is_dir() {
                                return Err(EngineError::File {
                                    path: p.display().to_string(),
                                    message: "ADD PARTITION: LOCATION does not exist".into(),
                                });
                            }
                            p
                        }
                        None => {
                            let p = PathBuf::from(&def.location).join(partition_spec(&values));
                            std::fs::create_dir_all(&p).map_err(|e| EngineError::io(&p, e))?;
                            p
                        }
                    };
                    defs.push(PartitionDef {
                        values,
                        location: dir.display().to_string(),
                    });
                }
                catalog.add_partitions(&def.database, &def.name, &defs, if_not_exists)?;
                let dirs: Vec<PathBuf> = defs.iter().map(|p| PathBuf::from(&p.location)).collect();
                self.layout_result(&def, &dirs)
            }
            AlterAction::DropPartitions {
                if_exists,
                partitions,
                purge: _,
            } => {
                for spec in partitions {
                    let values = full_partition(&def, &spec)?;
                    let spec_text = partition_spec(&values);
                    match catalog.drop_partition(&def.database, &def.name, &spec_text)? {
                        Some(p) => {
                            let dir = PathBuf::from(&p.location);
                            if !def.external
                                && dir.starts_with(self.engine.warehouse())
                                && dir.exists()
                            {
                                std::fs::remove_dir_all(&dir)
                                    .map_err(|e| EngineError::io(&dir, e))?;
                                crate::table::mapped::forget(&dir);
                            }
                        }
                        None if if_exists => {}
                        None => {
                            return Err(cuve_catalog::CatalogError::PartitionNotFound {
                                table: def.qualified_name(),
                                spec: spec_text,
                            }
                            .into());
                        }
                    }
                }
                Ok(vec![])
            }
            AlterAction::SetProperties(props)
                if props.contains_key(SENSITIVE_COLUMNS_PROPERTY)
                    && !self.access.sees_sensitive(&def.database, &def.name) =>
            {
                let _ = props;
                Err(EngineError::Denied(format!(
                    "changing sensitive_columns of {} needs a ticket with SENSITIVE on it",
                    def.qualified_name()
                )))
            }
            AlterAction::UnsetProperties(keys)
                if keys.iter().any(|k| k == SENSITIVE_COLUMNS_PROPERTY)
                    && !self.access.sees_sensitive(&def.database, &def.name) =>
            {
                let _ = keys;
                Err(EngineError::Denied(format!(
                    "changing sensitive_columns of {} needs a ticket with SENSITIVE on it",
                    def.qualified_name()
                )))
            }
            AlterAction::SetProperties(props) => {
                let relayout = props.contains_key(cuve_catalog::BUCKETING_VERSION_PROPERTY);
                if relayout {
                    let mut after = def.clone();
                    after.properties.extend(props.clone());
                    refuse_managed_relayout(&catalog, &def, &after)?;
                }
                catalog.alter_table(&def.database, &def.name, |d| {
                    d.properties.extend(props.clone());
                    if relayout {
                        d.properties.remove(verify::MISMATCH_PROPERTY);
                    }
                    validate_properties(d)
                        .map_err(|e| cuve_catalog::CatalogError::invalid(e.user_message()))
                })?;
                self.recheck_layout(&def, relayout)
            }
            AlterAction::UnsetProperties(keys) => {
                let relayout = keys
                    .iter()
                    .any(|k| k == cuve_catalog::BUCKETING_VERSION_PROPERTY);
                if relayout {
                    let mut after = def.clone();
                    for k in &keys {
                        after.properties.remove(k);
                    }
                    refuse_managed_relayout(&catalog, &def, &after)?;
                }
                catalog.alter_table(&def.database, &def.name, |d| {
                    for k in &keys {
                        d.properties.remove(k);
                    }
                    if relayout {
                        d.properties.remove(verify::MISMATCH_PROPERTY);
                    }
                    validate_properties(d)
                        .map_err(|e| cuve_catalog::CatalogError::invalid(e.user_message()))
                })?;
                self.recheck_layout(&def, relayout)
            }
        }
    }

    /// Hive INSERT → DataFusion INSERT: static partition values become literal columns.
    pub(crate) fn rewrite_insert(
        &self,
        table: &TableName,
        overwrite: bool,
        columns: &[String],
        partition: Option<&PartitionSpec>,
        query: &str,
    ) -> Result<String> {
        let def = self.visible_table(table)?;
        if !self
            .access
            .allows(crate::access::Privilege::Write, &def.database, &def.name)
        {
            return Err(EngineError::Denied(format!(
                "INSERT into {} needs a ticket with WRITE on it",
                def.qualified_name()
            )));
        }
        let target = format!("{}.{}", quote_ident(&def.database), quote_ident(&def.name));
        let verb = if overwrite {
            "INSERT OVERWRITE"
        } else {
            "INSERT INTO"
        };
        let statics: Vec<(String, String)> = partition
            .map(|spec| {
                spec.iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_lowercase(), v.clone())))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(spec) = partition {
            for (k, v) in spec {
                let k = k.to_lowercase();
                if !def.partition_columns.iter().any(|c| c.name == k) {
                    return Err(EngineError::invalid(format!(
                        "PARTITION ({k}): '{k}' is not a partition column of {}",
                        def.qualified_name()
                    )));
                }
                if let Some(v) = v {
                    validate_partition_value(&k, v).map_err(EngineError::Invalid)?;
                }
            }
        }
        if statics.is_empty() {
            let cols = if columns.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    columns
                        .iter()
                        .map(|c| quote_ident(&c.to_lowercase()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Ok(format!("{verb} {target}{cols} {query}"));
        }
        // Columns the query provides: the named (or all data) columns, then dynamic partitions.
        let mut target_cols: Vec<String> = if columns.is_empty() {
            def.columns.iter().map(|c| c.name.clone()).collect()
        } else {
            columns.iter().map(|c| c.to_lowercase()).collect()
        };
        for p in &def.partition_columns {
            if !statics.iter().any(|(k, _)| *k == p.name) {
                target_cols.push(p.name.clone());
            }
        }
        let mut select = vec!["__cuve_src.*".to_string()];
        for (k, v) in &statics {
            target_cols.push(k.clone());
            select.push(format!("{} AS {}", quote_literal(v), quote_ident(k)));
        }
        Ok(format!(
            "{verb} {target} ({}) SELECT {} FROM ({query}) AS __cuve_src",
            target_cols
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", "),
            select.join(", ")
        ))
    }
}

/// Refuses a change of bucketing version that would leave files Cuve wrote with the old hash
/// trusted under the new one (a managed table at its own location); any other table's files are
/// checked again under the new version.
fn refuse_managed_relayout(catalog: &Catalog, before: &TableDef, after: &TableDef) -> Result<()> {
    if before.bucket.is_some()
        && before.bucketing_version() != after.bucketing_version()
        && !verify::applies(catalog, after)
    {
        return Err(EngineError::invalid(format!(
            "cannot change bucketing_version of managed table {} from {} to {}: its files were written with version {}; create a new table and INSERT ... SELECT into it",
            before.qualified_name(),
            before.bucketing_version(),
            after.bucketing_version(),
            before.bucketing_version()
        )));
    }
    Ok(())
}

fn bad_dirs_error(def: &TableDef, bad: &[BadPartitionDir]) -> EngineError {
    let list: Vec<String> = bad
        .iter()
        .map(|b| format!("  {}: {}", b.path, b.reason))
        .collect();
    EngineError::invalid(format!(
        "table {} has directories that are not valid partitions (rename or move them, then retry):\n{}",
        def.qualified_name(),
        list.join("\n")
    ))
}

/// A complete, static partition spec in the table's partition-column order.
fn full_partition(def: &TableDef, spec: &PartitionSpec) -> Result<Vec<(String, String)>> {
    let given: BTreeMap<String, Option<String>> = spec
        .iter()
        .map(|(k, v)| (k.to_lowercase(), v.clone()))
        .collect();
    for k in given.keys() {
        if !def.partition_columns.iter().any(|c| &c.name == k) {
            return Err(EngineError::invalid(format!(
                "'{k}' is not a partition column of {} (partition columns: {})",
                def.qualified_name(),
                def.partition_columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    def.partition_columns
        .iter()
        .map(|c| {
            let v = given.get(&c.name).cloned().flatten().ok_or_else(|| {
                EngineError::invalid(format!("partition spec needs a value for '{}'", c.name))
            })?;
            validate_partition_value(&c.name, &v).map_err(EngineError::Invalid)?;
            Ok((c.name.clone(), v))
        })
        .collect()
}

/// Checks and applies table properties (sensitive columns, bucketing version, time zone,
/// Parquet codec).
fn validate_properties(def: &mut TableDef) -> Result<()> {
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
    Ok(())
}

fn column_flags(def: &TableDef, c: &ColumnDef, partition: bool) -> String {
    let mut flags = Vec::new();
    if partition {
        flags.push("partition key");
    }
    if def
        .bucket
        .as_ref()
        .map(|b| b.columns.contains(&c.name))
        .unwrap_or(false)
    {
        flags.push("bucket key");
    }
    if c.sensitive {
        flags.push("sensitive");
    }
    flags.join(", ")
}

/// `DESCRIBE [FORMATTED]`.
fn describe(def: &TableDef, formatted: bool, cuve_wrote: bool) -> Result<RecordBatch> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for c in &def.columns {
        rows.push(vec![
            c.name.clone(),
            c.data_type.clone(),
            c.comment.clone().unwrap_or_default(),
            column_flags(def, c, false),
        ]);
    }
    for c in &def.partition_columns {
        rows.push(vec![
            c.name.clone(),
            c.data_type.clone(),
            c.comment.clone().unwrap_or_default(),
            column_flags(def, c, true),
        ]);
    }
    if formatted {
        let kv = |k: &str, v: String| vec![k.to_string(), v, String::new(), String::new()];
        rows.push(vec![String::new(); 4]);
        rows.push(kv("# Detailed Table Information", String::new()));
        rows.push(kv("Database:", def.database.clone()));
        rows.push(kv("Table:", def.name.clone()));
        rows.push(kv("Comment:", def.comment.clone().unwrap_or_default()));
        rows.push(kv(
            "Table Type:",
            if def.external {
                "EXTERNAL_TABLE".into()
            } else {
                "MANAGED_TABLE".into()
            },
        ));
        rows.push(kv("Location:", def.location.clone()));
        rows.push(kv("Storage Format:", def.format.as_str().into()));
        rows.push(kv("Created:", def.created_at.clone()));
        rows.push(kv("Last Modified:", def.updated_at.clone()));
        rows.push(kv(
            "Partition Columns:",
            def.partition_columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ));
        if let Some(b) = &def.bucket {
            rows.push(kv("Num Buckets:", b.num_buckets.to_string()));
            rows.push(kv("Bucket Columns:", b.columns.join(", ")));
            rows.push(kv("Sort Columns:", b.sorted_by.join(", ")));
            rows.push(kv(
                "Bucketing Version:",
                def.bucketing_version().to_string(),
            ));
            let layout = if let Some(m) = def.properties.get(verify::MISMATCH_PROPERTY) {
                format!("not trusted, bucket optimisations are off: {m}")
            } else if cuve_wrote {
                "written by Cuve: bucket pruning and co-located plans apply".to_string()
            } else {
                "foreign: bucket optimisations apply to files whose rows were checked against their bucket when registered, or that Cuve wrote (MSCK REPAIR TABLE checks new files)".to_string()
            };
            rows.push(kv("Bucket Layout:", layout));
        }
        let sensitive: Vec<&str> = def
            .all_columns()
            .filter(|c| c.sensitive)
            .map(|c| c.name.as_str())
            .collect();
        rows.push(kv("Sensitive Columns:", sensitive.join(", ")));
        for (k, v) in &def.properties {
            if !k.starts_with("cuve.view.") {
                rows.push(vec![String::new(), k.clone(), v.clone(), String::new()]);
            }
        }
    }
    string_batch(&["col_name", "data_type", "comment", "flags"], rows)
}

/// `SHOW CREATE TABLE`: Hive DDL that recreates the table.
pub fn show_create(def: &TableDef) -> String {
    let col = |c: &ColumnDef| {
        let mut s = format!("  `{}` {}", c.name, c.data_type);
        if let Some(cm) = &c.comment {
            s.push_str(&format!(" COMMENT {}", quote_literal(cm)));
        }
        s
    };
    let mut s = format!(
        "CREATE {}TABLE `{}`.`{}` (\n{})",
        if def.external { "EXTERNAL " } else { "" },
        def.database,
        def.name,
        def.columns.iter().map(col).collect::<Vec<_>>().join(",\n")
    );
    if let Some(c) = &def.comment {
        s.push_str(&format!("\nCOMMENT {}", quote_literal(c)));
    }
    if !def.partition_columns.is_empty() {
        s.push_str(&format!(
            "\nPARTITIONED BY (\n{})",
            def.partition_columns
                .iter()
                .map(col)
                .collect::<Vec<_>>()
                .join(",\n")
        ));
    }
    if let Some(b) = &def.bucket {
        s.push_str(&format!("\nCLUSTERED BY ({})", b.columns.join(", ")));
        if !b.sorted_by.is_empty() {
            s.push_str(&format!(" SORTED BY ({})", b.sorted_by.join(", ")));
        }
        s.push_str(&format!(" INTO {} BUCKETS", b.num_buckets));
    }
    s.push_str(&format!("\nSTORED AS {}", def.format.as_str()));
    s.push_str(&format!("\nLOCATION {}", quote_literal(&def.location)));
    let props: Vec<String> = def
        .properties
        .iter()
        .filter(|(k, _)| !k.starts_with("cuve.view."))
        .map(|(k, v)| format!("  {}={}", quote_literal(k), quote_literal(v)))
        .collect();
    if !props.is_empty() {
        s.push_str(&format!("\nTBLPROPERTIES (\n{})", props.join(",\n")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_like_patterns() {
        assert!(like_matches("stream*", "stream_log"));
        assert!(like_matches("a*|stream_log", "stream_log"));
        assert!(!like_matches("user*", "stream_log"));
        assert!(like_matches("s%", "stream_log"));
    }
}
