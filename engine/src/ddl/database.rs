//! Databases: `CREATE`/`DROP DATABASE`, `USE`, `SHOW DATABASES`, `SHOW TABLES`.

use cuve_catalog::{DatabaseDef, names};
use datafusion::arrow::array::RecordBatch;

use super::show::like_matches;
use crate::access;
use crate::error::Result;
use crate::parse::Statement;
use crate::session::{Session, string_batch};

impl Session {
    pub(super) fn run_database_statement(&mut self, stmt: Statement) -> Result<Vec<RecordBatch>> {
        match stmt {
            Statement::CreateDatabase {
                name,
                if_not_exists,
                comment,
            } => {
                access::require_admin(&self.access, "CREATE DATABASE")?;
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
                    crate::storage::dirs::create_dir(&dir)?;
                }
                Ok(vec![])
            }
            Statement::DropDatabase {
                name,
                if_exists,
                cascade,
            } => {
                access::require_admin(&self.access, "DROP DATABASE")?;
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
                        if !crate::storage::is_object(&dir.display().to_string()) {
                            let _ = std::fs::remove_dir(&dir);
                        }
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
            _ => Err(super::misrouted()),
        }
    }
}
