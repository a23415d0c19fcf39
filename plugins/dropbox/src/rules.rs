//! Advanced sync rules: a JSON array of `files/search_v2` queries.
//!
//! Shape, as Elastic validates it: `[{"query": "…", "options": {…}, "match_field_options": {…}}]`
//! with `query` required and no other keys. `options` may hold `path`, `max_results`,
//! `order_by`, `file_status`, `account_id`, `file_extensions` (non-empty list of strings) and
//! `file_categories` (non-empty list of `{".tag": …}`), plus Dropbox's `filename_only`. Unlike
//! Elastic, unknown option keys and values Dropbox would refuse are reported here rather than
//! failing the sync later, and `max_results` may be a number (what Dropbox wants) or a numeric
//! string (what Elastic's schema demands). Every `options.path` must exist: checked with
//! `files/get_metadata`, naming the invalid ones.
//!
//! Each rule is sent as a `files/search_v2` body and followed with `files/search/continue_v2`.
//! When both `file_extensions` and `file_categories` are given, Dropbox applies the categories.

use serde_json::{Map, Value, json};
use tributary_sdk::RuleError;

const OPTION_KEYS: &[&str] = &[
    "path",
    "max_results",
    "order_by",
    "file_status",
    "account_id",
    "file_extensions",
    "file_categories",
    "filename_only",
];

/// A validated rule, ready to send.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The `files/search_v2` body.
    pub body: Value,
    /// `options.path` as written, when it names a folder other than the root.
    pub path: Option<String>,
}

/// Names the rules of an advanced-rules array for a job report: `rule 1 (query "a"), …`
/// (the first ten; queries cut at 80 characters).
pub fn describe(rules: &Value) -> String {
    let Some(list) = rules.as_array() else {
        return "the advanced rules".into();
    };
    let mut names: Vec<String> = list
        .iter()
        .take(10)
        .enumerate()
        .map(
            |(i, rule)| match rule.get("query").and_then(Value::as_str) {
                Some(query) => {
                    let query: String = query.chars().take(80).collect();
                    format!("rule {} (query {query:?})", i + 1)
                }
                None => format!("rule {}", i + 1),
            },
        )
        .collect();
    if list.len() > 10 {
        names.push(format!("and {} more", list.len() - 10));
    }
    names.join(", ")
}

fn err(rule: usize, message: impl Into<String>) -> RuleError {
    RuleError {
        rule: u32::try_from(rule).ok(),
        message: message.into(),
    }
}

/// Checks the rules' shape and builds the search bodies; every problem is reported.
pub fn parse(rules: &Value) -> Result<Vec<Rule>, Vec<RuleError>> {
    let Value::Array(items) = rules else {
        return Err(vec![RuleError {
            rule: None,
            message: "advanced rules must be a JSON array of {\"query\": …, \"options\": …} \
                      objects"
                .into(),
        }]);
    };
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match parse_rule(i, item) {
            Ok(rule) => parsed.push(rule),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

fn parse_rule(i: usize, item: &Value) -> Result<Rule, Vec<RuleError>> {
    let Value::Object(map) = item else {
        return Err(vec![err(i, "must be an object with a `query`")]);
    };
    let mut errors = Vec::new();
    for key in map.keys() {
        if !["query", "options", "match_field_options"].contains(&key.as_str()) {
            errors.push(err(
                i,
                format!("unknown key `{key}` (allowed: query, options, match_field_options)"),
            ));
        }
    }
    match map.get("query") {
        Some(Value::String(q)) if !q.trim().is_empty() => {}
        Some(Value::String(_)) => errors.push(err(i, "`query` must not be empty")),
        Some(_) => errors.push(err(i, "`query` must be a string")),
        None => errors.push(err(i, "`query` is required")),
    }
    if let Some(mfo) = map.get("match_field_options")
        && !mfo.is_object()
    {
        errors.push(err(i, "`match_field_options` must be an object"));
    }
    let mut options = Map::new();
    let mut path = None;
    match map.get("options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (key, value) in o {
                match parse_option(key, value) {
                    Ok(Some(v)) => {
                        if key == "path" {
                            path = v.as_str().filter(|p| !p.is_empty()).map(str::to_string);
                        }
                        options.insert(key.clone(), v);
                    }
                    Ok(None) => {}
                    Err(message) => errors.push(err(i, format!("`options.{key}` {message}"))),
                }
            }
        }
        Some(_) => errors.push(err(i, "`options` must be an object")),
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut body = Map::new();
    body.insert(
        "query".into(),
        map.get("query").cloned().unwrap_or_default(),
    );
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    if let Some(mfo) = map.get("match_field_options") {
        body.insert("match_field_options".into(), mfo.clone());
    }
    Ok(Rule {
        body: Value::Object(body),
        path,
    })
}

/// A tag union value: `{".tag": "x"}` (Elastic) or the `"x"` shorthand Dropbox also takes.
fn tag(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s.as_str()),
        Value::Object(m) => m.get(".tag").and_then(Value::as_str),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

/// Checks one option; returns the value to send (`None` to drop it).
fn parse_option(key: &str, value: &Value) -> Result<Option<Value>, String> {
    match key {
        "path" => match value.as_str() {
            Some("/") | Some("") => Ok(Some(json!(""))),
            Some(p) if p.starts_with('/') || p.starts_with("id:") || p.starts_with("ns:") => {
                Ok(Some(json!(p.trim_end_matches('/'))))
            }
            Some(p) => Err(format!(
                "must be a folder path starting with `/`, got {p:?}"
            )),
            None => Err("must be a string".into()),
        },
        "max_results" => {
            let n = match value {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if (1..=1000).contains(&n) => Ok(Some(json!(n))),
                _ => Err(format!("must be a number from 1 to 1000, got {value}")),
            }
        }
        "order_by" => match tag(value) {
            Some(t @ ("relevance" | "last_modified_time")) => Ok(Some(json!({".tag": t}))),
            _ => Err(format!(
                "must be {{\".tag\": \"relevance\"}} or {{\".tag\": \"last_modified_time\"}}, got \
                 {value}"
            )),
        },
        "file_status" => match tag(value) {
            Some(t @ ("active" | "deleted")) => Ok(Some(json!({".tag": t}))),
            _ => Err(format!(
                "must be {{\".tag\": \"active\"}} or {{\".tag\": \"deleted\"}}, got {value}"
            )),
        },
        "account_id" => match value.as_str() {
            Some(s) if !s.is_empty() => Ok(Some(value.clone())),
            _ => Err("must be a non-empty string".into()),
        },
        "filename_only" => match value {
            Value::Bool(_) => Ok(Some(value.clone())),
            _ => Err("must be true or false".into()),
        },
        "file_extensions" => match value {
            Value::Array(items) if !items.is_empty() => {
                let mut exts = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(s) if !s.trim().is_empty() => {
                            exts.push(json!(s.trim().trim_start_matches('.')))
                        }
                        _ => {
                            return Err(
                                "must be a list of extensions like [\"txt\", \"pdf\"]".into()
                            );
                        }
                    }
                }
                Ok(Some(Value::Array(exts)))
            }
            _ => Err("must be a non-empty list of extensions like [\"txt\", \"pdf\"]".into()),
        },
        "file_categories" => match value {
            Value::Array(items) if !items.is_empty() => {
                let mut cats = Vec::new();
                for item in items {
                    match tag(item) {
                        Some(t) => cats.push(json!({".tag": t})),
                        None => {
                            return Err(
                                "must be a list like [{\".tag\": \"pdf\"}, {\".tag\": \"paper\"}]"
                                    .into(),
                            );
                        }
                    }
                }
                Ok(Some(Value::Array(cats)))
            }
            _ => Err("must be a non-empty list like [{\".tag\": \"pdf\"}]".into()),
        },
        other => Err(format!(
            "is not a search option (allowed: {}); `{other}` would be refused by Dropbox",
            OPTION_KEYS.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn elastic_examples_are_valid() {
        let rules = parse(&json!([
            {"query": "confidential"},
            {"query": "dropbox", "options": {"file_extensions": ["txt", "pdf"]}},
            {"query": "test", "options": {"file_categories": [{".tag": "paper"}, {".tag": "png"}]}},
            {"query": "x", "options": {"path": "/Reports/", "max_results": "10",
                                        "order_by": {".tag": "last_modified_time"}},
             "match_field_options": {"include_highlights": false}}
        ]))
        .unwrap();
        assert_eq!(rules.len(), 4);
        assert_eq!(rules[3].path.as_deref(), Some("/Reports"));
        assert_eq!(rules[3].body["options"]["max_results"], json!(10));
    }

    #[test]
    fn ignored_rules_are_named_by_their_queries() {
        assert_eq!(
            describe(&json!([{"query": "budget"}, {"options": {}}])),
            r#"rule 1 (query "budget"), rule 2"#
        );
        let many: Vec<Value> = (0..12).map(|i| json!({"query": i.to_string()})).collect();
        let text = describe(&Value::Array(many));
        assert!(text.starts_with(r#"rule 1 (query "0")"#) && text.ends_with(", and 2 more"));
    }

    #[test]
    fn every_problem_is_reported_with_its_rule() {
        let errors = parse(&json!([
            {"options": {}},
            {"query": "a", "extra": 1},
            {"query": "b", "options": {"file_extensions": [], "colour": "red"}},
            "nope"
        ]))
        .unwrap_err();
        let text: Vec<String> = errors
            .iter()
            .map(|e| format!("{:?}: {}", e.rule, e.message))
            .collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("Some(0)") && t.contains("`query` is required")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("Some(1)") && t.contains("unknown key `extra`")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("Some(2)") && t.contains("options.file_extensions")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("Some(2)") && t.contains("options.colour")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("Some(3)")), "{text:?}");
        assert!(parse(&json!({"query": "x"})).is_err());
    }
}
