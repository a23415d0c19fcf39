//! The query DSL subset the fake evaluates, over `_source` JSON.
//!
//! Supported: `match_all`, `match_none`, `term`, `terms`, `ids`, `exists`, `range`, `prefix`, `bool` (`must`,
//! `filter`, `should`, `must_not`, `minimum_should_match`), `match` and `simple_query_string`.
//! Anything else is a 400 `parsing_exception`, as Elasticsearch answers for an unknown query.
//!
//! Fields are resolved through the index's explicit mappings ([`score_in`]), as Elasticsearch
//! does: a field mapped `text` holds its analysed tokens (a `term` on it matches a token, not the
//! whole string); `field.sub` of a field mapped with the multi-field `sub` (e.g.
//! `_allow_access_control.keyword`) holds the parent's values; a sub-field the mappings do not
//! declare (`_allow_access_control.enum` when only `keyword` exists), or a field inside an
//! object mapped `enabled: false`, holds nothing and matches nothing.
//!
//! Assumptions (not Elasticsearch's real analysis): a field the mappings do not declare (dynamic
//! mapping) compares the stored JSON value exactly, as if `keyword` (the real system indexes map
//! those fields `keyword`), and `x.keyword` of such a field is `x` (the sub-field dynamic mapping
//! adds to strings); full-text queries lower-case and split on non-alphanumeric characters, and
//! the score is the number of matching terms times the field boost, not BM25. Dates are compared
//! as strings (ISO 8601 sorts correctly).

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// A query that cannot be parsed: the fake answers 400 `parsing_exception` with this reason.
#[derive(Debug)]
pub struct QueryError(pub String);

/// Looks up a dotted path (`connector.id`) in a source document. `_id` is the document id.
pub fn lookup<'a>(source: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = source.get(path) {
        return Some(v);
    }
    let mut current = source;
    for part in path.split('.') {
        current = current.get(part)?;
    }
    Some(current)
}

/// How the mappings declare a field path.
enum Mapped {
    /// Not declared: dynamic mapping.
    Dynamic,
    /// Declared with this type (`keyword`, `text`, …).
    Field(String),
    /// The multi-field of `parent` (`_allow_access_control.keyword`), of this type.
    Sub { parent: String, kind: String },
    /// Not searchable: an undeclared sub-field of a declared field, or inside a disabled
    /// object. Elasticsearch matches nothing on it.
    Unmapped,
}

fn mapped(mappings: &Value, path: &str) -> Mapped {
    let parts: Vec<&str> = path.split('.').collect();
    let mut props = mappings.get("properties");
    for (i, part) in parts.iter().enumerate() {
        let Some(field) = props.and_then(|p| p.get(*part)) else {
            return Mapped::Dynamic;
        };
        if field.get("enabled").and_then(Value::as_bool) == Some(false) {
            return Mapped::Unmapped;
        }
        let kind = field.get("type").and_then(Value::as_str);
        let rest = &parts[i + 1..];
        if rest.is_empty() {
            return match kind {
                Some(k) if k != "object" && k != "nested" => Mapped::Field(k.to_string()),
                _ => Mapped::Dynamic,
            };
        }
        if let Some(inner) = field.get("properties") {
            props = Some(inner);
            continue;
        }
        if kind.is_none_or(|k| k == "object" || k == "nested") {
            return Mapped::Dynamic;
        }
        // A leaf field: the rest can only name one of its multi-fields.
        return match (rest, field.get("fields")) {
            ([sub], Some(fields)) => match fields
                .get(*sub)
                .and_then(|f| f.get("type"))
                .and_then(Value::as_str)
            {
                Some(k) => Mapped::Sub {
                    parent: parts[..=i].join("."),
                    kind: k.to_string(),
                },
                None => Mapped::Unmapped,
            },
            _ => Mapped::Unmapped,
        };
    }
    Mapped::Dynamic
}

fn raw_values(source: &Value, field: &str) -> Vec<Value> {
    match lookup(source, field) {
        Some(Value::Array(items)) => items.iter().filter(|v| !v.is_null()).cloned().collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(v) => vec![v.clone()],
    }
}

fn analysed(values: Vec<Value>) -> Vec<Value> {
    values
        .iter()
        .flat_map(|v| match v {
            Value::String(s) => tokens(s),
            other => vec![other.to_string()],
        })
        .map(Value::String)
        .collect()
}

/// The indexed values of `field` in `source`, as `term`/`terms` (`analyse`: text fields hold
/// their tokens) and `exists` (not analysed) see them.
fn indexed_values(mappings: &Value, source: &Value, field: &str, analyse: bool) -> Vec<Value> {
    match mapped(mappings, field) {
        Mapped::Unmapped => Vec::new(),
        Mapped::Field(kind) if analyse && kind == "text" => analysed(raw_values(source, field)),
        Mapped::Field(_) => raw_values(source, field),
        Mapped::Sub { parent, kind } if analyse && kind == "text" => {
            analysed(raw_values(source, &parent))
        }
        Mapped::Sub { parent, .. } => raw_values(source, &parent),
        Mapped::Dynamic => {
            let direct = raw_values(source, field);
            match field.strip_suffix(".keyword") {
                Some(parent) if direct.is_empty() => raw_values(source, parent)
                    .into_iter()
                    .filter(Value::is_string)
                    .collect(),
                _ => direct,
            }
        }
    }
}

/// The values of `field` an aggregation or sort sees (not analysed; a `keyword` multi-field
/// holds its parent's values), sorted.
pub fn values_of(mappings: &Value, source: &Value, field: &str) -> Vec<Value> {
    let mut values = indexed_values(mappings, source, field, false);
    values.sort_by(compare);
    values
}

fn scalar_eq(stored: &Value, wanted: &Value) -> bool {
    match (stored, wanted) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Bool(a), Value::Bool(b)) => a == b,
        // Elasticsearch coerces the query value to the field type.
        (Value::Bool(a), Value::String(b)) => a.to_string() == *b,
        (Value::Number(a), Value::String(b)) => b.parse::<f64>().ok() == a.as_f64(),
        (Value::String(a), Value::Number(b)) => a.parse::<f64>().ok() == b.as_f64(),
        _ => false,
    }
}

fn field_matches(ctx: &Ctx<'_>, field: &str, wanted: &[Value]) -> bool {
    if field == "_id" {
        return wanted.iter().any(|w| w.as_str() == Some(ctx.id));
    }
    indexed_values(ctx.mappings, ctx.source, field, true)
        .iter()
        .any(|s| wanted.iter().any(|w| scalar_eq(s, w)))
}

/// One document under evaluation and its index's mappings.
struct Ctx<'a> {
    mappings: &'a Value,
    id: &'a str,
    source: &'a Value,
}

fn single_entry<'a>(kind: &str, body: &'a Value) -> Result<(&'a String, &'a Value), QueryError> {
    let obj = body
        .as_object()
        .ok_or_else(|| QueryError(format!("[{kind}] query malformed, no start_object")))?;
    let mut entries = obj.iter().filter(|(k, _)| *k != "boost" && *k != "_name");
    match (entries.next(), entries.next()) {
        (Some(e), None) => Ok(e),
        _ => Err(QueryError(format!(
            "[{kind}] query doesn't support multiple fields"
        ))),
    }
}

fn clauses(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
    }
}

/// Lower-cased alphanumeric terms.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// The text of `field` in `source`; `*` is every string leaf outside `_`-prefixed fields.
fn field_text(source: &Value, field: &str) -> Vec<String> {
    let mut out = Vec::new();
    if field == "*" {
        if let Some(map) = source.as_object() {
            for (k, v) in map {
                if !k.starts_with('_') {
                    strings(v, &mut out);
                }
            }
        }
    } else if let Some(v) = lookup(source, field) {
        strings(v, &mut out);
    }
    out
}

/// One parsed `simple_query_string` clause.
enum Clause {
    Term(String),
    Phrase(Vec<String>),
    /// `word*`: a token starting with it.
    Prefix(String),
}

struct Simple {
    must: Vec<Clause>,
    must_not: Vec<Clause>,
    any: bool,
}

fn parse_simple(query: &str, default_and: bool) -> Simple {
    let mut out = Simple {
        must: Vec::new(),
        must_not: Vec::new(),
        any: !default_and,
    };
    let mut rest = query.trim();
    while !rest.is_empty() {
        let negate = rest.starts_with('-');
        if negate || rest.starts_with('+') {
            rest = &rest[1..];
        }
        let clause = if let Some(after) = rest.strip_prefix('"') {
            let end = after.find('"').unwrap_or(after.len());
            let phrase = tokens(&after[..end]);
            rest = after.get(end + 1..).unwrap_or("");
            // `"…"~n` (slop): the fake matches the exact phrase.
            if let Some(slop) = rest.strip_prefix('~') {
                rest = slop.trim_start_matches(|c: char| c.is_ascii_digit());
            }
            Clause::Phrase(phrase)
        } else if let Some(raw) = rest
            .split(char::is_whitespace)
            .next()
            .filter(|w| w.len() > 1 && w.ends_with('*') && !w.contains('"'))
        {
            rest = &rest[raw.len()..];
            Clause::Prefix(raw[..raw.len() - 1].to_lowercase())
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let word = &rest[..end];
            rest = &rest[end..];
            if word == "|" || word.eq_ignore_ascii_case("or") {
                out.any = true;
                rest = rest.trim_start();
                continue;
            }
            Clause::Phrase(tokens(word))
        };
        let clause = match clause {
            Clause::Phrase(mut t) if t.len() == 1 => Clause::Term(t.remove(0)),
            other => other,
        };
        let empty = matches!(&clause, Clause::Phrase(t) if t.is_empty());
        if !empty {
            if negate {
                out.must_not.push(clause);
            } else {
                out.must.push(clause);
            }
        }
        rest = rest.trim_start();
    }
    out
}

fn clause_hits(clause: &Clause, text_tokens: &[String]) -> f64 {
    match clause {
        Clause::Prefix(p) => text_tokens.iter().filter(|x| x.starts_with(p)).count() as f64,
        Clause::Term(t) => text_tokens.iter().filter(|x| *x == t).count() as f64,
        Clause::Phrase(p) => {
            if p.is_empty() || p.len() > text_tokens.len() {
                return 0.0;
            }
            text_tokens
                .windows(p.len())
                .filter(|w| *w == p.as_slice())
                .count() as f64
        }
    }
}

fn parse_fields(v: Option<&Value>) -> Vec<(String, f64)> {
    let list: Vec<String> = match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => vec!["*".into()],
    };
    list.into_iter()
        .map(|f| match f.split_once('^') {
            Some((name, boost)) => (name.to_string(), boost.parse().unwrap_or(1.0)),
            None => (f, 1.0),
        })
        .collect()
}

fn simple_score(body: &Value, source: &Value) -> Result<Option<f64>, QueryError> {
    let obj = body
        .as_object()
        .ok_or_else(|| QueryError("[simple_query_string] malformed".into()))?;
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "query" | "fields" | "default_operator" | "lenient" | "analyze_wildcard" | "flags"
        ) {
            return Err(QueryError(format!(
                "[simple_query_string] unsupported field [{key}]"
            )));
        }
    }
    let query = obj
        .get("query")
        .and_then(Value::as_str)
        .ok_or_else(|| QueryError("[simple_query_string] requires a query".into()))?;
    let default_and = obj
        .get("default_operator")
        .and_then(Value::as_str)
        .is_some_and(|o| o.eq_ignore_ascii_case("and"));
    let parsed = parse_simple(query, default_and);
    let fields = parse_fields(obj.get("fields"));
    let per_field: Vec<(Vec<String>, f64)> = fields
        .iter()
        .map(|(f, boost)| {
            let toks = field_text(source, f)
                .iter()
                .flat_map(|t| tokens(t))
                .collect::<Vec<_>>();
            (toks, *boost)
        })
        .collect();
    let hits = |c: &Clause| -> f64 {
        per_field
            .iter()
            .map(|(toks, boost)| clause_hits(c, toks) * boost)
            .sum()
    };
    if parsed.must_not.iter().any(|c| hits(c) > 0.0) {
        return Ok(None);
    }
    let scores: Vec<f64> = parsed.must.iter().map(&hits).collect();
    if scores.is_empty() {
        // Only negations: everything else matches.
        return Ok((!parsed.must_not.is_empty()).then_some(1.0));
    }
    let matched = if parsed.any {
        scores.iter().any(|s| *s > 0.0)
    } else {
        scores.iter().all(|s| *s > 0.0)
    };
    Ok(matched.then(|| scores.iter().sum()))
}

/// Evaluates `query` against one document of an index without explicit mappings.
pub fn score(query: &Value, id: &str, source: &Value) -> Result<Option<f64>, QueryError> {
    score_in(query, &Value::Null, id, source)
}

/// Evaluates `query` against one document of an index with `mappings`: `Some(score)` when it
/// matches.
pub fn score_in(
    query: &Value,
    mappings: &Value,
    id: &str,
    source: &Value,
) -> Result<Option<f64>, QueryError> {
    eval(
        query,
        &Ctx {
            mappings,
            id,
            source,
        },
    )
}

fn eval(query: &Value, ctx: &Ctx<'_>) -> Result<Option<f64>, QueryError> {
    let (id, source) = (ctx.id, ctx.source);
    let (kind, body) = single_entry("query", query)?;
    match kind.as_str() {
        "match_all" => Ok(Some(1.0)),
        "match_none" => Ok(None),
        "term" => {
            let (field, v) = single_entry("term", body)?;
            let wanted = match v {
                Value::Object(o) => o
                    .get("value")
                    .cloned()
                    .ok_or_else(|| QueryError("[term] query does not support [value]".into()))?,
                other => other.clone(),
            };
            Ok(field_matches(ctx, field, &[wanted]).then_some(1.0))
        }
        "terms" => {
            let (field, v) = single_entry("terms", body)?;
            let wanted = v.as_array().ok_or_else(|| {
                QueryError(format!(
                    "[terms] query does not support [{field}] as a non-array"
                ))
            })?;
            Ok(field_matches(ctx, field, wanted).then_some(1.0))
        }
        "ids" => {
            let values = body
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| QueryError("[ids] query malformed, no values".into()))?;
            Ok(values.iter().any(|v| v.as_str() == Some(id)).then_some(1.0))
        }
        "exists" => {
            let field = body
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| QueryError("[exists] must be provided with a [field]".into()))?;
            let found =
                field == "_id" || !indexed_values(ctx.mappings, source, field, false).is_empty();
            Ok(found.then_some(1.0))
        }
        "match" => {
            let (field, v) = single_entry("match", body)?;
            let text = match v {
                Value::Object(o) => o.get("query").cloned().unwrap_or(Value::Null),
                other => other.clone(),
            };
            let wanted = match &text {
                Value::String(s) => tokens(s),
                other => vec![other.to_string()],
            };
            let have: Vec<String> = field_text(source, field)
                .iter()
                .flat_map(|t| tokens(t))
                .collect();
            let n = wanted.iter().filter(|w| have.contains(w)).count();
            Ok((n > 0).then_some(n as f64))
        }
        "simple_query_string" => simple_score(body, source),
        "range" => {
            let (field, spec) = single_entry("range", body)?;
            let spec = spec
                .as_object()
                .ok_or_else(|| QueryError(format!("[range] query malformed for [{field}]")))?;
            let values = indexed_values(ctx.mappings, source, field, false);
            let within = |v: &Value| {
                spec.iter().all(|(op, bound)| {
                    let o = compare_coerced(v, bound);
                    match op.as_str() {
                        "gte" => o != Ordering::Less,
                        "gt" => o == Ordering::Greater,
                        "lte" => o != Ordering::Greater,
                        "lt" => o == Ordering::Less,
                        _ => true, // format, time_zone, boost
                    }
                })
            };
            Ok(values.iter().any(within).then_some(1.0))
        }
        "prefix" => {
            let (field, v) = single_entry("prefix", body)?;
            let prefix = match v {
                Value::Object(o) => o.get("value").and_then(Value::as_str),
                other => other.as_str(),
            }
            .ok_or_else(|| QueryError(format!("[prefix] query malformed for [{field}]")))?;
            let found = indexed_values(ctx.mappings, source, field, true)
                .iter()
                .any(|v| v.as_str().is_some_and(|s| s.starts_with(prefix)));
            Ok(found.then_some(1.0))
        }
        "bool" => {
            let obj = body
                .as_object()
                .ok_or_else(|| QueryError("[bool] malformed".into()))?;
            for key in obj.keys() {
                if !matches!(
                    key.as_str(),
                    "must" | "filter" | "should" | "must_not" | "minimum_should_match" | "boost"
                ) {
                    return Err(QueryError(format!("[bool] query does not support [{key}]")));
                }
            }
            let mut total = 0.0;
            for q in clauses(obj.get("must")) {
                match eval(q, ctx)? {
                    Some(s) => total += s,
                    None => return Ok(None),
                }
            }
            for q in clauses(obj.get("filter")) {
                if eval(q, ctx)?.is_none() {
                    return Ok(None);
                }
            }
            for q in clauses(obj.get("must_not")) {
                if eval(q, ctx)?.is_some() {
                    return Ok(None);
                }
            }
            let should = clauses(obj.get("should"));
            let mut matched = 0;
            for q in &should {
                if let Some(s) = eval(q, ctx)? {
                    matched += 1;
                    total += s;
                }
            }
            // Elasticsearch: with no must/filter clause, at least one should clause must match.
            let has_required = obj.contains_key("must") || obj.contains_key("filter");
            let minimum = obj
                .get("minimum_should_match")
                .and_then(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .unwrap_or(if has_required || should.is_empty() {
                    0
                } else {
                    1
                });
            if (matched as u64) < minimum {
                return Ok(None);
            }
            Ok(Some(total.max(if should.is_empty() { 1.0 } else { 0.0 })))
        }
        other => Err(QueryError(format!("unknown query [{other}]"))),
    }
}

/// One sort key: a field (or `_id`, `_score`, `_doc`, `_shard_doc`) and its direction.
#[derive(Clone, Debug)]
pub struct SortKey {
    /// Field name.
    pub field: String,
    /// Descending.
    pub desc: bool,
}

/// Parses a `sort` value: `"f"`, `{"f": "asc"}`, `{"f": {"order": "desc"}}` or a list of them.
pub fn parse_sort(sort: Option<&Value>) -> Result<Vec<SortKey>, QueryError> {
    let items = match sort {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => vec![other.clone()],
    };
    let mut keys = Vec::new();
    for item in items {
        match item {
            Value::String(field) => keys.push(SortKey {
                desc: field == "_score",
                field,
            }),
            Value::Object(map) => {
                for (field, spec) in map {
                    let order = match &spec {
                        Value::String(s) => s.clone(),
                        Value::Object(o) => o
                            .get("order")
                            .and_then(Value::as_str)
                            .unwrap_or(if field == "_score" { "desc" } else { "asc" })
                            .to_string(),
                        _ => return Err(QueryError(format!("malformed sort for [{field}]"))),
                    };
                    keys.push(SortKey {
                        desc: order.eq_ignore_ascii_case("desc"),
                        field,
                    });
                }
            }
            other => return Err(QueryError(format!("malformed sort [{other}]"))),
        }
    }
    Ok(keys)
}

/// Compares a stored value with a query bound, coercing the bound to a number when the
/// stored value is one (Elasticsearch parses bounds with the field's type).
fn compare_coerced(stored: &Value, bound: &Value) -> Ordering {
    match (stored, bound) {
        (Value::Number(_), Value::String(s)) => match s.parse::<f64>() {
            Ok(b) => compare(stored, &serde_json::json!(b)),
            Err(_) => Ordering::Equal,
        },
        _ => compare(stored, bound),
    }
}

/// Compares two sort values (missing values sort last, as Elasticsearch's default `_last`).
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (x, y) => x.to_string().cmp(&y.to_string()),
    }
}

/// `_source` filtering: `true`/`false`, a list of included fields, or `{"includes": […]}`.
pub fn filter_source(source: &Value, spec: Option<&Value>) -> Option<Value> {
    let includes: Vec<String> = match spec {
        None | Some(Value::Bool(true)) => return Some(source.clone()),
        Some(Value::Bool(false)) => return None,
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::Object(o)) => match (o.get("includes"), o.get("excludes")) {
            (Some(Value::Array(a)), _) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            (None, Some(Value::Array(ex))) => {
                let mut out = source.clone();
                if let Some(map) = out.as_object_mut() {
                    for field in ex.iter().filter_map(Value::as_str) {
                        map.remove(field);
                    }
                }
                return Some(out);
            }
            _ => return Some(source.clone()),
        },
        Some(_) => return Some(source.clone()),
    };
    let mut out = Map::new();
    if let Some(map) = source.as_object() {
        for (k, v) in map {
            if includes.iter().any(|i| i == k || i == "*") {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Some(Value::Object(out))
}

/// A highlight of `text` for the query's terms: the first matching sentence-sized window with
/// matches wrapped in `pre`/`post`.
pub fn highlight(text: &str, query: &str, pre: &str, post: &str, size: usize) -> Option<String> {
    let wanted = tokens(query);
    if wanted.is_empty() {
        return None;
    }
    let mut out = String::new();
    let mut matched = false;
    let mut last = 0;
    let mut word_start = None;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let flush = |start: usize, end: usize, out: &mut String, last: &mut usize| {
        let word = &text[start..end];
        if wanted.iter().any(|w| *w == word.to_lowercase()) {
            out.push_str(&text[*last..start]);
            out.push_str(pre);
            out.push_str(word);
            out.push_str(post);
            *last = end;
            true
        } else {
            false
        }
    };
    for &(i, c) in &chars {
        if c.is_alphanumeric() {
            word_start.get_or_insert(i);
        } else if let Some(s) = word_start.take() {
            matched |= flush(s, i, &mut out, &mut last);
        }
    }
    if let Some(s) = word_start {
        matched |= flush(s, text.len(), &mut out, &mut last);
    }
    out.push_str(&text[last..]);
    if !matched {
        return None;
    }
    let cut: String = out
        .chars()
        .take(size.max(1) + pre.len() + post.len())
        .collect();
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bool_term_terms_and_text() {
        let doc = json!({"status": "pending", "connector": {"id": "c1"}, "title": "Quarterly revenue", "body": "revenue grew", "tags": ["a", "b"]});
        let q = json!({"bool": {"must": [{"terms": {"status": ["pending", "suspended"]}}, {"term": {"connector.id": "c1"}}]}});
        assert!(score(&q, "1", &doc).unwrap().is_some());
        let q = json!({"bool": {"must_not": {"term": {"tags": "b"}}}});
        assert!(score(&q, "1", &doc).unwrap().is_none());
        let q = json!({"simple_query_string": {"query": "revenue -holiday", "fields": ["title^2", "body"], "default_operator": "and"}});
        assert_eq!(score(&q, "1", &doc).unwrap(), Some(3.0));
        let q = json!({"simple_query_string": {"query": "\"revenue grew\" quarterly", "fields": ["*"], "default_operator": "and"}});
        assert!(score(&q, "1", &doc).unwrap().is_some());
        let q = json!({"bool": {"should": [{"term": {"status": "x"}}]}});
        assert!(score(&q, "1", &doc).unwrap().is_none());
        assert!(score(&json!({"fuzzy": {}}), "1", &doc).is_err());
        assert_eq!(
            highlight("Revenue grew, revenue!", "revenue", "<b>", "</b>", 200).unwrap(),
            "<b>Revenue</b> grew, <b>revenue</b>!"
        );
    }
}
