//! The search language ([`crate::sink::query`]) as Elasticsearch's query DSL, with the same
//! semantics as the embedded index (see `sink/embedded/search.rs`).
//!
//! Invariants: the query is parsed by the host, never handed to Elasticsearch as text, so a
//! malformed query fails before any request and both sinks accept the same language. Field
//! names map onto Elastic's document shape: `_connector` is [`CONNECTOR_FIELD`], `_id` the
//! document id, `body` [`BODY_FIELD`]; a string field is matched exactly through its value or
//! its `keyword` multi-field (dynamic mapping's), and by words through the field itself.
//! Sorts end with the `id` keyword (every document has one) as the tie-breaker, so
//! `search_after` pages visit each document once.

use std::ops::Bound;

use serde_json::{Value, json};

use super::{BODY_FIELD, CONNECTOR_FIELD};
use crate::sink::query::{self, Node, Occur, Order, Sort, Typed};

/// Fields searched by words when a query names none (title and name count double).
const DEFAULT_FIELDS: [&str; 4] = ["title^2", "name^2", BODY_FIELD, "*"];
/// The tie-breaker of every sort: the document id as a keyword.
pub(super) const TIE_FIELD: &str = "id";

/// The Elasticsearch field for a field name of the language.
pub(super) fn es_field(name: &str) -> &str {
    match name {
        query::CONNECTOR_FACET => CONNECTOR_FIELD,
        other => other,
    }
}

/// Characters `simple_query_string` treats as operators: words are given to it without them
/// (the analyser drops them anyway).
fn plain(text: &str) -> String {
    text.chars()
        .map(|c| if "+|-\"*()~\\".contains(c) { ' ' } else { c })
        .collect()
}

/// Words of `text` in `fields`: a term, phrase (with slop) or prefix.
fn words(fields: &[&str], text: &str, quoted: bool, slop: u32, prefix: bool) -> Value {
    let text = plain(text);
    let text = text.trim();
    let query = if prefix {
        format!("{text}*")
    } else if quoted && slop > 0 {
        format!("\"{text}\"~{slop}")
    } else if quoted || text.contains(char::is_whitespace) {
        format!("\"{text}\"")
    } else {
        text.to_string()
    };
    json!({"simple_query_string": {
        "query": query,
        "fields": fields,
        "default_operator": "and",
    }})
}

fn any(clauses: Vec<Value>) -> Value {
    json!({"bool": {"should": clauses, "minimum_should_match": 1}})
}

/// A typed JSON value for a term or range: numbers as numbers, dates as RFC 3339.
fn typed_json(value: &Typed, raw: &str) -> Value {
    match value {
        Typed::Int(i) => json!(i),
        Typed::Float(x) => json!(x),
        Typed::Bool(b) => json!(b),
        Typed::Date { micros, .. } => json!(micros_rfc3339(*micros)),
        Typed::Str(_) => json!(raw),
    }
}

fn micros_rfc3339(micros: i64) -> String {
    use tantivy::time::{OffsetDateTime, format_description::well_known::Rfc3339};
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Documents whose `name` holds exactly `value` (through the field and its keyword
/// multi-field: the mapping is not known here).
pub(super) fn exact(name: &str, value: &str) -> Value {
    exact_on(name, &[name, &format!("{name}.keyword")], value)
}

/// Documents whose `name` holds exactly `value`, compared as a string on `keywords` (the
/// fields holding whole values), as a number, date or boolean on `name`.
pub(super) fn exact_on(name: &str, keywords: &[&str], value: &str) -> Value {
    match name {
        "_id" => return json!({"ids": {"values": [value]}}),
        query::CONNECTOR_FACET => return json!({"term": {CONNECTOR_FIELD: value}}),
        BODY_FIELD => return words(&[BODY_FIELD], value, true, 0, false),
        _ => {}
    }
    let typed = Typed::of(value);
    let mut clauses: Vec<Value> = keywords
        .iter()
        .map(|k| json!({"term": {*k: value}}))
        .collect();
    match &typed {
        Typed::Int(_) | Typed::Float(_) | Typed::Bool(_) => {
            clauses.push(json!({"term": {name: typed_json(&typed, value)}}));
        }
        Typed::Date { .. } => {
            let (lo, hi) =
                query::date_bounds(&Bound::Included(typed.clone()), &Bound::Included(typed));
            clauses.push(date_range(name, lo, hi));
        }
        Typed::Str(_) => {}
    }
    any(clauses)
}

fn date_range(name: &str, lo: Bound<i64>, hi: Bound<i64>) -> Value {
    let mut spec = serde_json::Map::new();
    match lo {
        Bound::Included(m) => {
            spec.insert("gte".into(), json!(micros_rfc3339(m)));
        }
        Bound::Excluded(m) => {
            spec.insert("gt".into(), json!(micros_rfc3339(m)));
        }
        Bound::Unbounded => {}
    }
    match hi {
        Bound::Included(m) => {
            spec.insert("lte".into(), json!(micros_rfc3339(m)));
        }
        Bound::Excluded(m) => {
            spec.insert("lt".into(), json!(micros_rfc3339(m)));
        }
        Bound::Unbounded => {}
    }
    json!({"range": {name: spec}})
}

fn range(name: &str, lower: &Bound<String>, upper: &Bound<String>) -> Value {
    let lo = lower.as_ref().map(|v| Typed::of(v));
    let hi = upper.as_ref().map(|v| Typed::of(v));
    let typed: Vec<&Typed> = [&lo, &hi]
        .into_iter()
        .filter_map(|b| match b {
            Bound::Included(t) | Bound::Excluded(t) => Some(t),
            Bound::Unbounded => None,
        })
        .collect();
    if typed.is_empty() {
        return json!({"exists": {"field": name}});
    }
    if typed.iter().all(|t| matches!(t, Typed::Date { .. })) {
        let (lo, hi) = query::date_bounds(&lo, &hi);
        return date_range(name, lo, hi);
    }
    let numeric = typed
        .iter()
        .all(|t| matches!(t, Typed::Int(_) | Typed::Float(_)));
    let spec = |field: &str| {
        let mut spec = serde_json::Map::new();
        for (bound, inc, exc) in [(lower, "gte", "gt"), (upper, "lte", "lt")] {
            let value = |v: &String| {
                if numeric {
                    typed_json(&Typed::of(v), v)
                } else {
                    json!(v)
                }
            };
            match bound {
                Bound::Included(v) => {
                    spec.insert(inc.into(), value(v));
                }
                Bound::Excluded(v) => {
                    spec.insert(exc.into(), value(v));
                }
                Bound::Unbounded => {}
            }
        }
        json!({"range": {field: spec}})
    };
    if numeric {
        spec(name)
    } else {
        // Strings compare as written: through the keyword multi-field when there is one.
        any(vec![spec(name), spec(&format!("{name}.keyword"))])
    }
}

/// The query DSL for a parsed query.
pub(super) fn node(n: &Node) -> Value {
    match n {
        Node::All => json!({"match_all": {}}),
        Node::Bool(clauses) => {
            let (mut must, mut should, mut must_not) = (Vec::new(), Vec::new(), Vec::new());
            for (occur, clause) in clauses {
                let q = node(clause);
                match occur {
                    Occur::Must => must.push(q),
                    Occur::Should => should.push(q),
                    Occur::MustNot => must_not.push(q),
                }
            }
            let mut b = json!({"must": must, "should": should, "must_not": must_not});
            if must.is_empty() && !should.is_empty() {
                b["minimum_should_match"] = json!(1);
            }
            json!({ "bool": b })
        }
        Node::Boost(inner, boost) => json!({"bool": {"must": [node(inner)], "boost": boost}}),
        Node::Text {
            field: None,
            text,
            quoted,
            slop,
            prefix,
        } => words(&DEFAULT_FIELDS, text, *quoted, *slop, *prefix),
        Node::Text {
            field: Some(name),
            text,
            quoted,
            slop,
            prefix,
        } => match name.as_str() {
            BODY_FIELD => words(&[BODY_FIELD], text, *quoted, *slop, *prefix),
            "_id" | query::CONNECTOR_FACET if *prefix => {
                json!({"prefix": {es_field(name): text}})
            }
            "_id" | query::CONNECTOR_FACET => exact(name, text),
            _ if *prefix => {
                let mut clauses = vec![
                    json!({"prefix": {name.as_str(): text}}),
                    json!({"prefix": {format!("{name}.keyword"): text}}),
                ];
                if text.chars().all(char::is_alphanumeric) && !text.is_empty() {
                    clauses.push(words(&[name], text, false, 0, true));
                }
                any(clauses)
            }
            _ => any(vec![
                exact(name, text),
                words(&[name], text, *quoted, *slop, false),
            ]),
        },
        Node::Range {
            field,
            lower,
            upper,
        } => range(field, lower, upper),
        Node::Any { field, values } => any(values.iter().map(|v| exact(field, v)).collect()),
        Node::Exists { field } => json!({"exists": {"field": es_field(field)}}),
    }
}

/// The `sort` of a search: the key (documents without it last), then the tie-breaker.
/// `keyword` names the field to sort a string field on (its keyword multi-field).
pub(super) fn sort(sort: &Sort, keyword: Option<&str>) -> Value {
    let order = match sort.order {
        Order::Asc => "asc",
        Order::Desc => "desc",
    };
    let key = if sort.is_score() {
        json!({"_score": {"order": order}})
    } else {
        let field = keyword.unwrap_or(es_field(&sort.field));
        json!({ field: {"order": order, "missing": "_last", "unmapped_type": "keyword"} })
    };
    json!([key, {TIE_FIELD: {"order": "asc", "unmapped_type": "keyword"}}])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dates_render_as_rfc3339() {
        assert_eq!(
            micros_rfc3339(1_704_153_600_000_000),
            "2024-01-02T00:00:00Z"
        );
        let q = node(&query::parse("_timestamp:[2024-01-01 TO 2024-06-30]").unwrap());
        assert_eq!(
            q,
            json!({"range": {"_timestamp": {"gte": "2024-01-01T00:00:00Z", "lt": "2024-07-01T00:00:00Z"}}})
        );
        let q = node(&query::parse("size:>1000000").unwrap());
        assert_eq!(q, json!({"range": {"size": {"gt": 1000000}}}));
    }
}
