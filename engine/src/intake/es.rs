//! The Elasticsearch bulk format, as shippers send it: pairs of an action line
//! (`{"index": {"_index": "db.t", "_id": "…"}}`, or `create`) and a document line; answers with
//! ES's per-item statuses. A document without `_id` is keyed by its own `log_key` field, or by
//! the SHA-256 of its bytes, so a resent document is still stored once.

use serde_json::{Value, json};

/// One action of a bulk body.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkItem {
    /// `index`, `create`, `update`, `delete`...
    pub action: String,
    pub index: Option<String>,
    pub id: Option<String>,
    pub doc: Option<String>,
}

/// Parses a bulk body; an error names the line.
pub fn parse_bulk(body: &[u8]) -> Result<Vec<BulkItem>, String> {
    let text = std::str::from_utf8(body)
        .map_err(|e| format!("the bulk body is not UTF-8 (byte {})", e.valid_up_to()))?;
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let mut items = Vec::new();
    while let Some((no, line)) = lines.next() {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("line {no}: the action is not JSON: {e}"))?;
        let obj = v.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
            format!(
                "line {no}: an action is an object with one key (index, create, update or delete)"
            )
        })?;
        let (action, meta) = obj.iter().next().expect("one key");
        let meta = meta.as_object();
        let field = |k: &str| {
            meta.and_then(|m| m.get(k)).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let doc = if action == "delete" {
            None
        } else {
            let (_, d) = lines.next().ok_or_else(|| {
                format!("line {no}: the {action} action has no document line after it")
            })?;
            Some(d.to_string())
        };
        items.push(BulkItem {
            action: action.clone(),
            index: field("_index"),
            id: field("_id"),
            doc,
        });
    }
    Ok(items)
}

/// The key of a document without `_id`: its `log_key` field, else a hash of its bytes.
pub fn doc_id(doc: &str) -> String {
    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(doc)
        && let Some(Value::String(k)) = o.get("log_key")
        && !k.is_empty()
    {
        return k.clone();
    }
    format!(
        "sha256:{}",
        cuve_catalog::ledger::fingerprint(doc.as_bytes())
    )
}

/// One item of the response.
pub fn item(
    action: &str,
    index: &str,
    id: &str,
    status: u16,
    error: Option<(&str, &str)>,
) -> Value {
    let mut body = json!({"_index": index, "_id": id, "status": status});
    match error {
        None => {
            body["_version"] = json!(1);
            body["result"] = json!(if status == 201 { "created" } else { "noop" });
            body["_shards"] = json!({"total": 1, "successful": 1, "failed": 0});
            body["_seq_no"] = json!(0);
            body["_primary_term"] = json!(1);
        }
        Some((kind, reason)) => {
            body["error"] = json!({"type": kind, "reason": reason});
        }
    }
    json!({ action: body })
}

/// A top-level error in ES's shape.
pub fn error(status: u16, kind: &str, reason: &str) -> Value {
    json!({
        "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
        "status": status
    })
}

/// `GET /`: enough of ES's root for shippers' version checks.
pub fn root() -> Value {
    json!({
        "name": "cuve",
        "cluster_name": "cuve",
        "cluster_uuid": "cuve",
        "version": {
            "number": "8.11.0",
            "build_flavor": "default",
            "build_type": "cuve",
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_bodies() {
        let body = b"{\"index\":{\"_index\":\"d.t\",\"_id\":\"a:1\"}}\n{\"x\":1}\n\n{\"create\":{}}\r\n{\"x\":2}\n{\"delete\":{\"_id\":\"z\"}}\n";
        let items = parse_bulk(body).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].index.as_deref(), Some("d.t"));
        assert_eq!(items[0].id.as_deref(), Some("a:1"));
        assert_eq!(items[1].doc.as_deref(), Some("{\"x\":2}"));
        assert_eq!(items[2].action, "delete");
        assert!(
            parse_bulk(b"{\"index\":{}}\n")
                .unwrap_err()
                .contains("line 1")
        );
        assert!(parse_bulk(b"nope\n").unwrap_err().contains("not JSON"));
        assert_eq!(doc_id("{\"log_key\":\"k1\"}"), "k1");
        assert_eq!(doc_id("{\"x\":1}"), doc_id("{\"x\":1}"));
        assert_ne!(doc_id("{\"x\":1}"), doc_id("{\"x\":2}"));
    }
}
