//! Pruning before any file is opened: partition predicates are evaluated on the registered
//! partition values, and equality / IN / OR-of-equality predicates on the bucket columns select
//! bucket files.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{FieldRef, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::datasource::listing::helpers::expr_applicable_for_cols;
use datafusion::logical_expr::execution_props::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use datafusion::physical_expr::create_physical_expr;

use super::bucket::{BucketHash, TextKind, hash_scalar};
use crate::error::{EngineError, Result};

/// Drops table qualifiers from column references (`stream_log.dt` → `dt`).
pub fn unqualify(e: &Expr) -> Expr {
    e.clone()
        .transform_up(|e| {
            Ok(match e {
                Expr::Column(c) if c.relation.is_some() => {
                    Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))
                }
                other => Transformed::no(other),
            })
        })
        .map(|t| t.data)
        .unwrap_or_else(|_| e.clone())
}

/// Whether `filter` can be decided from partition values alone.
pub fn is_partition_filter(partition_cols: &[&str], filter: &Expr) -> bool {
    !partition_cols.is_empty() && expr_applicable_for_cols(partition_cols, &unqualify(filter))
}

/// Typed value of a partition directory value (`""` is null, as Hive's default partition).
pub fn partition_scalar(value: &str, field: &FieldRef) -> Result<ScalarValue> {
    if value.is_empty() {
        return ScalarValue::try_from(field.data_type()).map_err(EngineError::from);
    }
    ScalarValue::try_from_string(value.to_string(), field.data_type()).map_err(|_| {
        EngineError::invalid(format!(
            "partition value '{value}' is not a valid {} for column '{}'",
            field.data_type(),
            field.name()
        ))
    })
}

/// Indices of the partitions (rows of `values`) that satisfy all `filters`.
pub fn prune_partitions(
    fields: &[FieldRef],
    values: &[Vec<ScalarValue>],
    filters: &[Expr],
) -> Result<Vec<usize>> {
    let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    let applicable: Vec<Expr> = filters
        .iter()
        .filter(|f| is_partition_filter(&names, f))
        .map(unqualify)
        .collect();
    let Some(predicate) = conjunction(applicable) else {
        return Ok((0..values.len()).collect());
    };
    if values.is_empty() {
        return Ok(vec![]);
    }
    let schema = Arc::new(Schema::new(
        fields
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    let columns: Vec<ArrayRef> = (0..fields.len())
        .map(|i| ScalarValue::iter_to_array(values.iter().map(|row| row[i].clone())))
        .collect::<datafusion::error::Result<_>>()?;
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| EngineError::DataFusion(e.into()))?;
    let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
    let props = ExecutionProps::new();
    let physical = create_physical_expr(
        &predicate,
        &df_schema,
        &props,
        &PhysicalPlanningContext::default(),
    )?;
    let result = physical.evaluate(&batch)?.into_array(batch.num_rows())?;
    let mask = result.as_boolean();
    Ok((0..mask.len())
        .filter(|i| mask.is_valid(*i) && mask.value(*i))
        .collect())
}

/// The values a filter allows for column `col`, when it pins the column to a finite set.
fn values_for(e: &Expr, col: &str) -> Option<Vec<ScalarValue>> {
    let is_col = |e: &Expr| matches!(e, Expr::Column(c) if c.name == col);
    let lit = |e: &Expr| match e {
        Expr::Literal(v, _) => Some(v.clone()),
        _ => None,
    };
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::Eq if is_col(left) => lit(right).map(|v| vec![v]),
            Operator::Eq if is_col(right) => lit(left).map(|v| vec![v]),
            Operator::Or => {
                let mut l = values_for(left, col)?;
                l.extend(values_for(right, col)?);
                Some(l)
            }
            Operator::And => match (values_for(left, col), values_for(right, col)) {
                (Some(l), Some(r)) => Some(l.into_iter().filter(|v| r.contains(v)).collect()),
                (Some(x), None) | (None, Some(x)) => Some(x),
                (None, None) => None,
            },
            _ => None,
        },
        Expr::InList(list) if !list.negated && is_col(&list.expr) => {
            list.list.iter().map(lit).collect()
        }
        _ => None,
    }
}

/// The values `filters` (unqualified conjuncts) allow for column `col`, when they pin it to a
/// finite set.
pub fn allowed_values(filters: &[Expr], col: &str) -> Option<Vec<ScalarValue>> {
    let mut allowed: Option<Vec<ScalarValue>> = None;
    for f in filters {
        if let Some(vals) = values_for(f, col) {
            allowed = Some(match allowed {
                None => vals,
                Some(prev) => prev.into_iter().filter(|v| vals.contains(v)).collect(),
            });
        }
    }
    allowed
}

/// Buckets that can hold rows matching `filters`, or `None` when the filters do not pin every
/// bucket column (then every bucket is read).
pub fn select_buckets(
    filters: &[Expr],
    bucket_fields: &[FieldRef],
    kinds: &[TextKind],
    hash: BucketHash,
    num_buckets: u32,
) -> Option<BTreeSet<u32>> {
    const MAX_COMBINATIONS: usize = 4096;
    let filters: Vec<Expr> = filters.iter().map(unqualify).collect();
    let mut per_column: Vec<Vec<ScalarValue>> = Vec::new();
    for field in bucket_fields {
        per_column.push(allowed_values(&filters, field.name())?);
    }
    let combos: usize = per_column.iter().map(|v| v.len().max(1)).product();
    if combos > MAX_COMBINATIONS {
        return None;
    }
    // Cartesian product of the allowed values, hashed the way the writer hashes rows.
    let mut hashes: Vec<i32> = vec![0];
    for (i, (field, vals)) in bucket_fields.iter().zip(&per_column).enumerate() {
        let kind = kinds.get(i).copied().unwrap_or_default();
        let mut next = Vec::with_capacity(hashes.len() * vals.len());
        for h in &hashes {
            for v in vals {
                let fh = hash_scalar(hash, kind, v, field.data_type())?;
                next.push(h.wrapping_mul(31).wrapping_add(fh));
            }
        }
        hashes = next;
    }
    Some(
        hashes
            .into_iter()
            .map(|h| ((h & 0x7FFF_FFFF) as u32) % num_buckets)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::prelude::{col, lit};

    use super::*;

    #[test]
    fn prunes_partitions_by_predicate() {
        let fields = vec![Arc::new(Field::new("dt", DataType::Utf8, false))];
        let values: Vec<Vec<ScalarValue>> = ["2019-10-01", "2019-10-02", "2019-10-03"]
            .iter()
            .map(|v| vec![ScalarValue::from(*v)])
            .collect();
        let f = col("dt").between(lit("2019-10-02"), lit("2019-10-09"));
        assert_eq!(
            prune_partitions(&fields, &values, &[f]).unwrap(),
            vec![1, 2]
        );
        let f = col("t.dt").eq(lit("2019-10-01"));
        assert_eq!(prune_partitions(&fields, &values, &[f]).unwrap(), vec![0]);
        // a filter on another column does not prune
        let f = col("user_id").eq(lit("x"));
        assert_eq!(
            prune_partitions(&fields, &values, &[f]).unwrap(),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn selects_buckets_from_equalities() {
        let fields = vec![Arc::new(Field::new("u", DataType::Utf8, true))];
        let one = select_buckets(
            &[col("u").eq(lit("Trino rocks"))],
            &fields,
            &[],
            BucketHash::V2,
            4,
        );
        assert_eq!(one, Some(BTreeSet::from([1])));
        let f = col("u").eq(lit("a")).or(col("u").eq(lit("b")));
        assert!(
            select_buckets(&[f], &fields, &[], BucketHash::V2, 16)
                .unwrap()
                .len()
                <= 2
        );
        let f = col("u").in_list(vec![lit("a"), lit("b"), lit("c")], false);
        assert!(
            select_buckets(&[f], &fields, &[], BucketHash::V2, 16)
                .unwrap()
                .len()
                <= 3
        );
        let f = col("u").eq(lit("a")).or(col("x").eq(lit("b")));
        assert_eq!(select_buckets(&[f], &fields, &[], BucketHash::V2, 16), None);
        let f = col("u").in_list(vec![lit("a")], true);
        assert_eq!(select_buckets(&[f], &fields, &[], BucketHash::V2, 16), None);
    }
}
