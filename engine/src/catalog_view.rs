//! The session's view of the catalog as DataFusion catalog/schema providers. Built from the
//! session's [`AccessView`]: databases, tables and sensitive columns the ticket may not see do
//! not exist here, so `information_schema`, `SHOW`, `DESCRIBE` and planning cannot reveal them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cuve_catalog::Catalog;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;

use crate::access::{AccessView, visible_def};
use crate::error::Result;
use crate::table::CuveTable;

type CacheKey = (String, String, bool);
/// (table row id, version): changes when a table is re-created or altered.
type Stamp = (i64, i64);

/// Providers cached by table version (shared by every session of an engine).
#[derive(Debug, Default)]
pub struct TableCache {
    /// (db, table, sensitive hidden) → (version, provider)
    tables: Mutex<HashMap<CacheKey, (Stamp, Arc<CuveTable>)>>,
}

impl TableCache {
    /// The provider of `db.table` as `access` sees it, `None` when it does not exist for it.
    pub fn get(
        &self,
        catalog: &Arc<Catalog>,
        access: &AccessView,
        db: &str,
        table: &str,
    ) -> Result<Option<Arc<CuveTable>>> {
        if !access.sees_table(db, table) {
            return Ok(None);
        }
        let Some(stamp) = catalog.table_stamp(db, table)? else {
            return Ok(None);
        };
        let hide = !access.sees_sensitive(db, table);
        let key = (db.to_string(), table.to_string(), hide);
        {
            let guard = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((v, t)) = guard.get(&key)
                && *v == stamp
            {
                return Ok(Some(t.clone()));
            }
        }
        let Some(def) = catalog.table(db, table)? else {
            return Ok(None);
        };
        let stamp = (stamp.0, def.version);
        let provider = Arc::new(CuveTable::try_new(visible_def(def, hide), catalog.clone())?);
        self.tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (stamp, provider.clone()));
        Ok(Some(provider))
    }
}

/// The `cuve` catalog of one session.
#[derive(Debug)]
pub struct CatalogView {
    pub catalog: Arc<Catalog>,
    pub access: Arc<AccessView>,
    pub cache: Arc<TableCache>,
}

impl CatalogProvider for CatalogView {
    fn schema_names(&self) -> Vec<String> {
        match self.catalog.databases() {
            Ok(dbs) => dbs
                .into_iter()
                .map(|d| d.name)
                .filter(|d| self.access.sees_database(d))
                .collect(),
            Err(e) => {
                log::error!("listing databases: {e}");
                vec![]
            }
        }
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if !self.access.sees_database(name) {
            return None;
        }
        match self.catalog.database(name) {
            Ok(Some(_)) => Some(Arc::new(DatabaseView {
                database: name.to_string(),
                catalog: self.catalog.clone(),
                access: self.access.clone(),
                cache: self.cache.clone(),
            })),
            _ => None,
        }
    }
}

/// One database (schema) of a session's catalog view.
#[derive(Debug)]
pub struct DatabaseView {
    database: String,
    catalog: Arc<Catalog>,
    access: Arc<AccessView>,
    cache: Arc<TableCache>,
}

#[async_trait]
impl SchemaProvider for DatabaseView {
    fn table_names(&self) -> Vec<String> {
        match self.catalog.table_names(&self.database) {
            Ok(names) => names
                .into_iter()
                .filter(|t| self.access.sees_table(&self.database, t))
                .collect(),
            Err(e) => {
                log::error!("listing tables of {}: {e}", self.database);
                vec![]
            }
        }
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let name = name.to_lowercase();
        Ok(self
            .cache
            .get(&self.catalog, &self.access, &self.database, &name)?
            .map(|t| t as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.access.sees_table(&self.database, &name)
            && matches!(
                self.catalog.table_version(&self.database, &name),
                Ok(Some(_))
            )
    }
}
