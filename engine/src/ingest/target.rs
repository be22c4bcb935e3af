//! The table a writer of raw lines (`cuve ingest`, HTTP intake) writes to: its definition,
//! schema and partition time zone, and from them the row decoder and the layout.

use std::sync::Arc;

use cuve_catalog::{Catalog, StorageFormat, TableDef};
use datafusion::arrow::datatypes::SchemaRef;

use super::decode::{InputFormat, RowDecoder, TimeUnit};
use crate::error::{EngineError, Result};
use crate::table::CuveTable;
use crate::table::writer::Layout;

/// A Parquet table lines are written to.
pub struct Target {
    pub def: Arc<TableDef>,
    pub schema: SchemaRef,
    pub tz: chrono_tz::Tz,
}

impl Target {
    /// The target of `def`; `who` names the writer in errors (`ingest`, `intake`).
    pub fn of(def: TableDef, catalog: &Arc<Catalog>, who: &str) -> Result<Target> {
        if def.format != StorageFormat::Parquet {
            return Err(EngineError::Unsupported(format!(
                "{who} writes Parquet: table {} is STORED AS {}",
                def.qualified_name(),
                def.format.as_str()
            )));
        }
        let tz: chrono_tz::Tz = def
            .properties
            .get(cuve_catalog::PARTITION_TIME_ZONE_PROPERTY)
            .map(|s| s.as_str())
            .unwrap_or("UTC")
            .parse()
            .map_err(|_| EngineError::invalid("bad partition.time_zone property"))?;
        use datafusion::catalog::TableProvider;
        let schema = CuveTable::try_new(def.clone(), catalog.clone())?.schema();
        Ok(Target {
            def: Arc::new(def),
            schema,
            tz,
        })
    }

    /// A decoder of lines into rows of the table.
    pub fn decoder(&self, format: InputFormat, unit: TimeUnit) -> Result<RowDecoder> {
        RowDecoder::new(
            self.schema.clone(),
            &self
                .def
                .partition_columns
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>(),
            format,
            unit,
            self.tz,
        )
    }

    /// The table's layout, with its registered partitions.
    pub fn layout(&self, catalog: &Catalog) -> Result<Layout> {
        let registered = if self.def.partition_columns.is_empty() {
            vec![]
        } else {
            catalog.partitions(&self.def.database, &self.def.name)?
        };
        Ok(Layout::new(self.def.clone(), self.schema.clone())?.with_registered(registered))
    }
}
