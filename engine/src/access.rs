//! Who the session is and what it may see. Every front end builds its session from an
//! [`AccessView`] (from a ticket); the catalog view and the plan checks consult it, deny by
//! default.

use std::collections::BTreeSet;

use cuve_catalog::{Catalog, Grant, Quota, Role, TableDef, Ticket};

use crate::error::{EngineError, Result};

pub use cuve_catalog::Priv as Privilege;

/// What a session may see and do.
#[derive(Debug, Clone, Default)]
pub struct AccessView {
    /// Admins see and do everything.
    pub admin: bool,
    /// Who (for audit and messages).
    pub user: String,
    /// The ticket the session runs as (usage and audit are recorded against it).
    pub ticket_id: Option<String>,
    /// `(privilege, database, table or "*")`.
    pub grants: BTreeSet<(Privilege, String, String)>,
    /// Databases the user owns (every privilege on them).
    pub owned: Vec<String>,
    pub quota: Quota,
    /// Front end and peer, for audit (`cli`, `flight 127.0.0.1:5555`, ...).
    pub client: String,
}

impl AccessView {
    /// An administrator without a ticket (tests and embedded use).
    pub fn admin(user: impl Into<String>) -> Self {
        AccessView {
            admin: true,
            user: user.into(),
            client: "embedded".into(),
            ..Default::default()
        }
    }

    /// The view a ticket gives.
    pub fn from_ticket(t: &Ticket, client: impl Into<String>) -> Self {
        AccessView {
            admin: t.role == Role::Admin,
            user: t.owner.clone(),
            ticket_id: Some(t.id.clone()),
            grants: t
                .grants
                .iter()
                .map(|g| (g.privilege, g.database.clone(), g.table.clone()))
                .collect(),
            owned: if t.role == Role::Owner {
                t.owner_database.clone().into_iter().collect()
            } else {
                vec![]
            },
            quota: t.quota.clone(),
            client: client.into(),
        }
    }

    /// Whether `privilege` is granted on `db.table` (`table` may be `*`).
    pub fn allows(&self, privilege: Privilege, db: &str, table: &str) -> bool {
        self.admin
            || self.owned.iter().any(|d| d == db)
            || self
                .grants
                .contains(&(privilege, db.to_string(), table.to_string()))
            || self
                .grants
                .contains(&(privilege, db.to_string(), "*".to_string()))
    }

    /// Whether the database is visible (something in it is readable).
    pub fn sees_database(&self, db: &str) -> bool {
        self.admin
            || self.owned.iter().any(|d| d == db)
            || self
                .grants
                .iter()
                .any(|(p, d, _)| *p == Privilege::Select && d == db)
    }

    /// Whether `db.table` is visible (readable).
    pub fn sees_table(&self, db: &str, table: &str) -> bool {
        self.allows(Privilege::Select, db, table)
    }

    /// Whether sensitive columns of `db.table` are visible.
    pub fn sees_sensitive(&self, db: &str, table: &str) -> bool {
        self.allows(Privilege::Sensitive, db, table)
    }

    /// Whether this session may issue or change a ticket carrying `grants`: admins always;
    /// owners for grants on their own databases only.
    pub fn may_manage(&self, grants: &[Grant]) -> bool {
        self.admin
            || (!self.owned.is_empty() && grants.iter().all(|g| self.owned.contains(&g.database)))
    }

    /// Whether this session may issue or change tickets of a user with `role` carrying `grants`:
    /// admins always; owners only analysts' tickets, with grants on their own databases.
    pub fn may_manage_ticket(&self, role: Role, grants: &[Grant]) -> bool {
        self.admin || (role == Role::Analyst && self.may_manage(grants))
    }
}

/// The definition with sensitive columns removed when they are hidden.
pub fn visible_def(mut def: TableDef, hide_sensitive: bool) -> TableDef {
    if hide_sensitive {
        def.columns.retain(|c| !c.sensitive);
        def.partition_columns.retain(|c| !c.sensitive);
        // Their names are not shown either (DESCRIBE FORMATTED, SHOW CREATE TABLE).
        def.properties
            .remove(cuve_catalog::SENSITIVE_COLUMNS_PROPERTY);
        def.properties
            .insert("cuve.view.sensitive_hidden".into(), "true".into());
    }
    def
}

/// Loads `db.name` as `access` may see it (sensitive columns hidden unless granted); a missing
/// and a forbidden table give the same error.
pub fn visible_table(
    access: &AccessView,
    catalog: &Catalog,
    db: &str,
    name: &str,
) -> Result<TableDef> {
    let def = if access.sees_table(db, name) {
        catalog.table(db, name)?
    } else {
        None
    };
    let def =
        def.ok_or_else(|| EngineError::invalid(format!("table '{db}.{name}' does not exist")))?;
    Ok(visible_def(def, !access.sees_sensitive(db, name)))
}

/// DDL on a database needs ALTER on it.
pub fn require_alter(access: &AccessView, db: &str) -> Result<()> {
    if access.allows(Privilege::Alter, db, "*") {
        Ok(())
    } else {
        Err(EngineError::Denied(format!(
            "DDL on database '{db}' needs a ticket with ALTER on {db}.*"
        )))
    }
}

/// Statements only admins may run.
pub fn require_admin(access: &AccessView, what: &str) -> Result<()> {
    if access.admin {
        Ok(())
    } else {
        Err(EngineError::Denied(format!("{what} needs an admin ticket")))
    }
}

/// Writing rows into a table needs WRITE on it.
pub fn require_write(access: &AccessView, def: &TableDef) -> Result<()> {
    if access.allows(Privilege::Write, &def.database, &def.name) {
        Ok(())
    } else {
        Err(EngineError::Denied(format!(
            "INSERT into {} needs a ticket with WRITE on it",
            def.qualified_name()
        )))
    }
}
