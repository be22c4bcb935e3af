//! Tables on storage: the provider DataFusion scans, the layout and pruning rules, the Hive
//! bucket hash, the ORC source, the checks of foreign layouts, and the writer INSERT and ingest
//! share, and the vacuum of files no table refers to.

pub mod bucket;
pub mod commit;
pub mod compressibility;
pub mod layout;
pub mod leases;
pub mod mapped;
pub mod orc;
pub mod page_select;
pub mod provider;
pub mod prune;
pub mod reader;
pub mod scan_report;
pub mod vacuum;
pub mod verify;
pub mod writer;

pub use provider::CuveTable;
pub use scan_report::{QueryScans, ScanReport};
