//! `SHOW PARTITIONS`, `SHOW CREATE TABLE`, `SHOW TABLE STATS`, `SHOW FUNCTIONS`,
//! `DESCRIBE FUNCTION`, `DESCRIBE [FORMATTED]`.

use cuve_catalog::{ColumnDef, TableDef};

use super::quote_literal;
use datafusion::arrow::array::RecordBatch;

use crate::error::{EngineError, Result};
use crate::parse::Statement;
use crate::session::{Session, string_batch};
use crate::table::verify;

impl Session {
    pub(super) fn run_show_statement(&mut self, stmt: Statement) -> Result<Vec<RecordBatch>> {
        match stmt {
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
                // A managed table in an object store reads only files its commits recorded.
                let cuve_wrote = !verify::applies(self.engine.catalog(), &def)
                    || (!def.external
                        && def.bucketing_version() == 2
                        && crate::storage::is_object(&def.location));
                Ok(vec![describe(&def, formatted, cuve_wrote)?])
            }
            _ => Err(super::misrouted()),
        }
    }
}

pub(super) fn like_matches(pattern: &str, s: &str) -> bool {
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
    pub(super) fn hive_like_patterns() {
        assert!(like_matches("stream*", "stream_log"));
        assert!(like_matches("a*|stream_log", "stream_log"));
        assert!(!like_matches("user*", "stream_log"));
        assert!(like_matches("s%", "stream_log"));
    }
}
