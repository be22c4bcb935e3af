//! What a query's scans read: partitions, buckets, files and bytes selected vs total. Recorded by
//! the table provider while planning, read by EXPLAIN, the CLI summary line and quota admission.

use std::sync::Mutex;

/// Pruning outcome of one table scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// `db.table`.
    pub table: String,
    pub partitions_read: usize,
    pub partitions_total: usize,
    /// `(read, total)` when the table is bucketed and bucket ids are known.
    pub buckets: Option<(usize, usize)>,
    pub files_read: usize,
    /// Files in the partitions that survived partition pruning.
    pub files_total: usize,
    pub bytes_read: u64,
}

impl std::fmt::Display for ScanReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: partitions read {}/{}",
            self.table, self.partitions_read, self.partitions_total
        )?;
        if let Some((r, t)) = self.buckets {
            write!(f, ", buckets read {r}/{t}")?;
        }
        write!(
            f,
            ", files read {}/{}, bytes read {}",
            self.files_read, self.files_total, self.bytes_read
        )
    }
}

/// Scan reports of the statement being planned; a session extension, cleared per statement.
#[derive(Debug, Default)]
pub struct QueryScans {
    reports: Mutex<Vec<ScanReport>>,
}

impl QueryScans {
    pub fn record(&self, r: ScanReport) {
        self.lock().push(r);
    }
    pub fn take(&self) -> Vec<ScanReport> {
        std::mem::take(&mut *self.lock())
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ScanReport>> {
        self.reports.lock().unwrap_or_else(|e| e.into_inner())
    }
}
