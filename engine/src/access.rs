//! Who the session is and what it may see. Every front end builds its session from an
//! [`AccessView`]; the catalog view and the plan checks consult it, deny by default.

use std::collections::BTreeSet;

/// A privilege a ticket can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    Select,
    Sensitive,
    Write,
    Alter,
}

/// What a session may see and do.
#[derive(Debug, Clone, Default)]
pub struct AccessView {
    /// Admins see and do everything.
    pub admin: bool,
    /// Who (for audit and messages).
    pub user: String,
    /// `(privilege, database, table or "*")`.
    pub grants: BTreeSet<(Privilege, String, String)>,
}

impl AccessView {
    /// The embedded default's local administrator.
    pub fn admin(user: impl Into<String>) -> Self {
        AccessView {
            admin: true,
            user: user.into(),
            grants: BTreeSet::new(),
        }
    }

    /// Whether `privilege` is granted on `db.table`.
    pub fn allows(&self, privilege: Privilege, db: &str, table: &str) -> bool {
        self.admin
            || self
                .grants
                .contains(&(privilege, db.to_string(), table.to_string()))
            || self
                .grants
                .contains(&(privilege, db.to_string(), "*".to_string()))
    }

    /// Whether any table of `db` is visible.
    pub fn sees_database(&self, db: &str) -> bool {
        self.admin
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
}
