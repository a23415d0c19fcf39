//! Request bodies: bulk operations serialized once, the queries that scope reads to a tenant
//! and connector, documents read back from hits, and an index's settings and mapping.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::*;
use crate::sink::{IndexRef, SinkDocument};

/// One bulk operation, serialized once.
pub(super) struct Op {
    pub(super) id: String,
    pub(super) action: Bytes,
    pub(super) source: Option<Bytes>,
}

impl Op {
    pub(super) fn len(&self) -> usize {
        self.action.len() + 1 + self.source.as_ref().map_or(0, |s| s.len() + 1)
    }
}

/// Documents of `tenant`'s `connector`, and documents no tributary connector wrote (Elastic's
/// service). A document of the connector without a tenant field predates the field.
pub(super) fn owned_by(tenant: &str, connector: &str) -> Value {
    json!({"bool": {
        "should": [
            {"bool": {"filter": [{"term": {CONNECTOR_FIELD: connector}}, of_tenant(tenant)]}},
            {"bool": {"must_not": [{"exists": {"field": CONNECTOR_FIELD}}]}},
        ],
        "minimum_should_match": 1,
    }})
}

/// Documents of `tenant` (and those written before documents named their tenant).
pub(super) fn of_tenant(tenant: &str) -> Value {
    json!({"bool": {
        "should": [
            {"term": {TENANT_FIELD: tenant}},
            {"bool": {"must_not": [{"exists": {"field": TENANT_FIELD}}]}},
        ],
        "minimum_should_match": 1,
    }})
}

/// [`owned_by`] for one `_source` read back.
pub(super) fn owns(source: &Value, tenant: &str, connector: &str) -> bool {
    match source.get(CONNECTOR_FIELD) {
        None | Some(Value::Null) => true,
        Some(c) => {
            c.as_str() == Some(connector)
                && match source.get(TENANT_FIELD) {
                    None | Some(Value::Null) => true,
                    Some(t) => t.as_str() == Some(tenant),
                }
        }
    }
}

/// `name` as one JSON pointer segment.
pub(super) fn pointer_escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// The document a search hit holds.
pub(super) fn from_hit(hit: &Value) -> SinkDocument {
    let mut fields: Map<String, Value> = match hit.get("_source") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let connector = match fields.remove(CONNECTOR_FIELD) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    fields.remove(TENANT_FIELD);
    let version = match fields.remove(VERSION_FIELD) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let body = match fields.remove(BODY_FIELD) {
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            fields.insert(BODY_FIELD.into(), other);
            None
        }
        None => None,
    };
    SinkDocument {
        id: hit
            .get("_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        connector,
        version,
        fields,
        body,
    }
}

/// Settings and mappings of the index `name` the sink creates for `owner`.
pub fn index_definition(name: &str, owner: &IndexRef) -> Value {
    let keyword = json!({"type": "keyword"});
    let text_with_keyword =
        json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}});
    let mut properties = json!({
        CONNECTOR_FIELD: keyword,
        TENANT_FIELD: keyword,
        VERSION_FIELD: keyword,
        "id": keyword,
        // What Elastic's dynamic mapping makes of it, and what its query template queries
        // (`.keyword`). As there, an identity over 256 characters is not indexed: it grants
        // nothing.
        ACL_FIELD: text_with_keyword,
        // Plugins' version markers are usually, not always, timestamps: keep the others.
        "_timestamp": {"type": "date", "ignore_malformed": true},
    });
    if name.starts_with(ACL_PREFIX) {
        // Access-control documents: who the identity is, and the query template Elastic's
        // document-level security applies — stored, never searched.
        properties["identity"] = json!({"type": "object", "dynamic": true});
        properties["query"] = json!({"type": "object", "enabled": false});
    } else {
        properties["title"] = text_with_keyword.clone();
        properties["name"] = text_with_keyword;
        properties[BODY_FIELD] = json!({"type": "text"});
        properties["url"] = keyword;
    }
    json!({"mappings": {
        "_meta": {"tributary": {"tenant": owner.tenant, "index": owner.name}},
        "properties": properties,
    }})
}
