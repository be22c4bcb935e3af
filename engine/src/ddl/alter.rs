//! `ALTER TABLE` (locations, partitions, properties) and `MSCK REPAIR TABLE`, and the checks of
//! foreign files' bucket layout they trigger.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cuve_catalog::{Catalog, PartitionDef, SENSITIVE_COLUMNS_PROPERTY, TableDef, partition_spec};
use datafusion::arrow::array::RecordBatch;

use super::create::validate_properties;
use crate::error::{EngineError, Result};
use crate::parse::{AlterAction, PartitionSpec, TableName};
use crate::session::{Session, string_batch};
use crate::table::layout::{
    BadPartitionDir, discover_partitions, resolve_location, validate_partition_value,
};
use crate::table::verify;

impl Session {
    pub(super) fn alter_table(
        &mut self,
        t: &TableName,
        action: AlterAction,
    ) -> Result<Vec<RecordBatch>> {
        let def = self.alterable_table(t)?;
        let catalog = self.engine.catalog().clone();
        match action {
            AlterAction::SetLocation {
                partition: None,
                location,
            } => {
                let loc = resolve_location(&location)?;
                if !crate::storage::dirs::is_dir(&loc)? {
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
                let dirs = if parts.is_empty() {
                    vec![loc.clone()]
                } else {
                    parts.iter().map(|p| PathBuf::from(&p.location)).collect()
                };
                crate::table::commit::adopt(&catalog, &def, &dirs)?;
                catalog.relocate_table(&def.database, &def.name, &moved.location, &parts)?;
                self.layout_result(&def, &dirs)
            }
            AlterAction::SetLocation {
                partition: Some(spec),
                location,
            } => {
                let values = full_partition(&def, &spec)?;
                let loc = resolve_location(&location)?;
                if !crate::storage::dirs::is_dir(&loc)? {
                    return Err(EngineError::File {
                        path: loc.display().to_string(),
                        message: "SET LOCATION: directory does not exist".into(),
                    });
                }
                self.check_location(&def.database, &def.name, &loc, !def.external)?;
                crate::table::commit::adopt(&catalog, &def, std::slice::from_ref(&loc))?;
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
                            if !crate::storage::dirs::is_dir(&p)? {
                                return Err(EngineError::File {
                                    path: p.display().to_string(),
                                    message: "ADD PARTITION: LOCATION does not exist".into(),
                                });
                            }
                            p
                        }
                        None => {
                            let p = PathBuf::from(&def.location).join(partition_spec(&values));
                            crate::storage::dirs::create_dir(&p)?;
                            p
                        }
                    };
                    defs.push(PartitionDef {
                        values,
                        location: dir.display().to_string(),
                    });
                }
                let dirs: Vec<PathBuf> = defs.iter().map(|p| PathBuf::from(&p.location)).collect();
                crate::table::commit::adopt(&catalog, &def, &dirs)?;
                catalog.add_partitions(&def.database, &def.name, &defs, if_not_exists)?;
                self.layout_result(&def, &dirs)
            }
            AlterAction::DropPartitions {
                if_exists,
                partitions,
                purge: _,
            } => {
                let mut specs = Vec::new();
                for spec in partitions {
                    let values = full_partition(&def, &spec)?;
                    let spec_text = partition_spec(&values);
                    let exists = catalog
                        .partitions(&def.database, &def.name)?
                        .iter()
                        .any(|p| p.spec() == spec_text);
                    match (exists, if_exists) {
                        (true, _) => specs.push(spec_text),
                        (false, true) => {}
                        (false, false) => {
                            return Err(cuve_catalog::CatalogError::PartitionNotFound {
                                table: def.qualified_name(),
                                spec: spec_text,
                            }
                            .into());
                        }
                    }
                }
                self.drop_partitions(&def, &specs)?;
                Ok(vec![])
            }
            AlterAction::Compact { partition } => {
                let spec = match partition {
                    Some(p) => Some(partition_spec(&full_partition(&def, &p)?)),
                    None => None,
                };
                let scope = crate::lifecycle::maintain::Scope {
                    expire: false,
                    compact: true,
                };
                let actions = crate::exec::blocking(|| {
                    crate::lifecycle::maintain::maintain_table(
                        &catalog,
                        &def,
                        scope,
                        spec.as_deref(),
                        false,
                        &self.access,
                    )
                })?;
                let rows = actions.iter().map(|a| vec![a.to_string()]).collect();
                Ok(vec![string_batch(&["action"], rows)?])
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

    /// Drops partitions (specs): a managed table's files leave storage once no query reads
    /// them, in one commit with the catalog change; an external table's stay where they are.
    fn drop_partitions(&self, def: &TableDef, specs: &[String]) -> Result<()> {
        if specs.is_empty() {
            return Ok(());
        }
        let catalog = self.engine.catalog().clone();
        if def.external {
            for s in specs {
                catalog.drop_partition(&def.database, &def.name, s)?;
            }
            return Ok(());
        }
        let parts: Vec<crate::lifecycle::rewrite::PartitionFiles> =
            crate::lifecycle::rewrite::current_files(&catalog, def)?
                .into_iter()
                .filter(|p| specs.contains(&p.spec()))
                .collect();
        let refs: Vec<&crate::lifecycle::rewrite::PartitionFiles> = parts.iter().collect();
        crate::exec::blocking(|| crate::lifecycle::expire::drop_partitions(&catalog, def, &refs))?;
        Ok(())
    }

    pub(super) fn msck_repair(&mut self, t: &TableName) -> Result<Vec<RecordBatch>> {
        let def = self.alterable_table(t)?;
        if def.partition_columns.is_empty() && def.bucket.is_some() {
            // Nothing to register: check the files of the table's root.
            let mut rows = vec![vec!["partitions added: 0, found: 0".to_string()]];
            let root = [PathBuf::from(&def.location)];
            let adopted = crate::table::commit::adopt(self.engine.catalog(), &def, &root)?;
            if adopted > 0 {
                rows.push(vec![format!("files recorded: {adopted}")]);
            }
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
        let dirs: Vec<PathBuf> = found.iter().map(|p| PathBuf::from(&p.location)).collect();
        let adopted = crate::table::commit::adopt(self.engine.catalog(), &def, &dirs)?;
        let added = self
            .engine
            .catalog()
            .add_partitions(&def.database, &def.name, &found, true)?;
        let known: Vec<String> = found.iter().map(|p| p.location.clone()).collect();
        let mut rows = vec![vec![format!(
            "partitions added: {added}, found: {}",
            found.len()
        )]];
        if adopted > 0 {
            rows.push(vec![format!("files recorded: {adopted}")]);
        }
        rows.extend(self.check_layout(&def.database, &def.name, &dirs)?);
        // Partitions registered whose directory is gone are reported, not dropped.
        for p in self.engine.catalog().partitions(&def.database, &def.name)? {
            if !known.contains(&p.location)
                && !crate::storage::is_object(&p.location)
                && !Path::new(&p.location).exists()
            {
                rows.push(vec![format!(
                    "partition {} is registered but its directory {} is missing",
                    p.spec(),
                    p.location
                )]);
            }
        }
        Ok(vec![string_batch(&["result"], rows)?])
    }

    /// Checks the bucket layout of the files in `dirs` (external bucketed tables; see
    /// table/verify.rs) and returns the warnings as result rows.
    pub(super) fn check_layout(
        &self,
        db: &str,
        name: &str,
        dirs: &[PathBuf],
    ) -> Result<Vec<Vec<String>>> {
        let Some(def) = self.engine.catalog().table(db, name)? else {
            return Ok(vec![]);
        };
        Ok(verify::check_dirs(self.engine.catalog(), &def, dirs)?
            .into_iter()
            .map(|w| vec![w])
            .collect())
    }

    /// [`Self::check_layout`] as a statement result (no rows when all is well).
    pub(super) fn layout_result(
        &self,
        def: &TableDef,
        dirs: &[PathBuf],
    ) -> Result<Vec<RecordBatch>> {
        let rows = self.check_layout(&def.database, &def.name, dirs)?;
        if rows.is_empty() {
            return Ok(vec![]);
        }
        Ok(vec![string_batch(&["result"], rows)?])
    }

    /// After a change of the declared layout (`bucketing_version`): forgets every check and
    /// checks every file again.
    pub(super) fn recheck_layout(
        &self,
        def: &TableDef,
        relayout: bool,
    ) -> Result<Vec<RecordBatch>> {
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
