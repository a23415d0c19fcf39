//! Basic sync rules: include/exclude documents by a top-level field, applied by the host to every
//! source before any content is downloaded.
//!
//! Semantics follow Elastic's connectors: rules are checked in order, the first rule whose
//! condition holds decides (include or exclude), and a document no rule matches is included.
//! Conditions: `equals`, `contains`, `starts_with`, `ends_with`, `regex` (whole value), `<`, `>`
//! (numbers compare numerically, RFC 3339 timestamps chronologically, anything else as text).
//! A field that is absent never matches; a list field matches when any element does.

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a matching rule does.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Index the document.
    Include,
    /// Skip it (and delete it after a full sync if it was indexed before).
    Exclude,
}

/// A condition on a field value.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum Condition {
    /// The value equals the rule value.
    #[serde(rename = "equals")]
    Equals,
    /// The value contains the rule value.
    #[serde(rename = "contains")]
    Contains,
    /// The value starts with the rule value.
    #[serde(rename = "starts_with")]
    StartsWith,
    /// The value ends with the rule value.
    #[serde(rename = "ends_with")]
    EndsWith,
    /// The whole value matches the regular expression.
    #[serde(rename = "regex")]
    Regex,
    /// The value is less than the rule value.
    #[serde(rename = "<")]
    Less,
    /// The value is greater than the rule value.
    #[serde(rename = ">")]
    Greater,
}

/// A rule as written in configuration.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Top-level field name.
    pub field: String,
    /// Condition.
    pub rule: Condition,
    /// Value compared against (a string, or a number for `<`/`>`).
    pub value: Value,
    /// What a match does.
    pub policy: Policy,
}

#[derive(Clone, Debug)]
struct Compiled {
    spec: RuleSpec,
    value: String,
    regex: Option<Regex>,
}

/// A validated, ordered rule list.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    rules: Vec<Compiled>,
}

impl Rules {
    /// Validates and compiles rules; every problem is reported with the rule's position.
    pub fn compile(specs: &[RuleSpec]) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let n = i + 1;
            if spec.field.trim().is_empty() {
                errors.push(format!("rule {n}: `field` is empty"));
                continue;
            }
            let value = match &spec.value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    errors.push(format!(
                        "rule {n}: `value` must be a string or number, not {other}"
                    ));
                    continue;
                }
            };
            let regex = if spec.rule == Condition::Regex {
                match Regex::new(&format!("^(?:{value})$")) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        errors.push(format!("rule {n}: invalid regex `{value}`: {e}"));
                        continue;
                    }
                }
            } else {
                None
            };
            rules.push(Compiled {
                spec: spec.clone(),
                value,
                regex,
            });
        }
        if errors.is_empty() {
            Ok(Self { rules })
        } else {
            Err(errors)
        }
    }

    /// No rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a document with these fields is indexed.
    pub fn includes(&self, fields: &Map<String, Value>) -> bool {
        for rule in &self.rules {
            let Some(value) = fields.get(&rule.spec.field) else {
                continue;
            };
            if rule.matches(value) {
                return rule.spec.policy == Policy::Include;
            }
        }
        true
    }
}

impl Compiled {
    fn matches(&self, value: &Value) -> bool {
        match value {
            Value::Array(items) => items.iter().any(|v| self.matches(v)),
            Value::String(s) => self.matches_text(s),
            Value::Number(n) => self.matches_text(&n.to_string()),
            Value::Bool(b) => self.matches_text(&b.to_string()),
            Value::Null | Value::Object(_) => false,
        }
    }

    fn matches_text(&self, actual: &str) -> bool {
        let expected = self.value.as_str();
        match self.spec.rule {
            Condition::Equals => actual == expected,
            Condition::Contains => actual.contains(expected),
            Condition::StartsWith => actual.starts_with(expected),
            Condition::EndsWith => actual.ends_with(expected),
            Condition::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(actual)),
            Condition::Less => compare(actual, expected) == Some(std::cmp::Ordering::Less),
            Condition::Greater => compare(actual, expected) == Some(std::cmp::Ordering::Greater),
        }
    }
}

fn compare(actual: &str, expected: &str) -> Option<std::cmp::Ordering> {
    if let (Ok(a), Ok(b)) = (actual.trim().parse::<f64>(), expected.trim().parse::<f64>()) {
        return a.partial_cmp(&b);
    }
    if let (Some(a), Some(b)) = (timestamp_key(actual), timestamp_key(expected)) {
        return Some(a.cmp(&b));
    }
    Some(actual.cmp(expected))
}

/// An RFC 3339 timestamp (or a bare date) as seconds since the epoch, for ordering.
pub fn timestamp_key(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_at(s.find(['T', ' ']).unwrap_or(s.len()));
    let mut parts = date.split('-');
    let (y, m, d): (i64, i64, i64) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (mut secs, mut offset) = (0i64, 0i64);
    let rest = rest.trim_start_matches(['T', ' ']);
    if !rest.is_empty() {
        let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let mut hms = clock.split(':');
        let h: i64 = hms.next()?.parse().ok()?;
        let mi: i64 = hms.next()?.parse().ok()?;
        let sec: f64 = hms.next().unwrap_or("0").parse().ok()?;
        secs = h * 3600 + mi * 60 + sec as i64;
        if let Some(sign) = zone.chars().next().filter(|c| *c == '+' || *c == '-') {
            let mut z = zone[1..].split(':');
            let zh: i64 = z.next()?.parse().ok()?;
            let zm: i64 = z.next().unwrap_or("0").parse().ok()?;
            offset = (zh * 3600 + zm * 60) * if sign == '+' { 1 } else { -1 };
        }
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + secs - offset)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn rules(v: Value) -> Rules {
        Rules::compile(&serde_json::from_value::<Vec<RuleSpec>>(v).unwrap()).unwrap()
    }

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn first_match_wins_and_default_includes() {
        let r = rules(json!([
            {"field": "name", "rule": "ends_with", "value": ".tmp", "policy": "exclude"},
            {"field": "file_path", "rule": "starts_with", "value": "/Private", "policy": "exclude"},
            {"field": "file_path", "rule": "starts_with", "value": "/Private/ok", "policy": "include"},
            {"field": "size", "rule": ">", "value": 1000, "policy": "exclude"},
            {"field": "name", "rule": "regex", "value": "draft-\\d+\\.md", "policy": "exclude"},
        ]));
        assert!(!r.includes(&fields(json!({"name": "a.tmp"}))));
        assert!(
            !r.includes(&fields(json!({"name": "x", "file_path": "/Private/ok/x"}))),
            "earlier rule wins"
        );
        assert!(!r.includes(&fields(json!({"name": "big", "size": 5000}))));
        assert!(r.includes(&fields(json!({"name": "small", "size": 999}))));
        assert!(!r.includes(&fields(json!({"name": "draft-12.md"}))));
        assert!(
            r.includes(&fields(json!({"name": "my-draft-12.md"}))),
            "regex matches the whole value"
        );
        assert!(
            r.includes(&fields(json!({"other": 1}))),
            "absent fields never match"
        );
    }

    #[test]
    fn comparisons_understand_numbers_and_timestamps() {
        let r = rules(
            json!([{"field": "_timestamp", "rule": "<", "value": "2024-01-01T00:00:00Z", "policy": "exclude"}]),
        );
        assert!(
            r.includes(&fields(json!({"_timestamp": "2023-12-31T23:00:00-02:00"}))),
            "offsets are applied"
        );
        assert!(!r.includes(&fields(json!({"_timestamp": "2023-06-01T00:00:00Z"}))));
        assert!(r.includes(&fields(json!({"_timestamp": "2024-02-01T00:00:00Z"}))));
        assert_eq!(timestamp_key("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(timestamp_key("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(timestamp_key("nope"), None);
        let n = rules(json!([{"field": "size", "rule": "<", "value": "10", "policy": "exclude"}]));
        assert!(n.includes(&fields(json!({"size": 9.5e1}))));
        assert!(!n.includes(&fields(json!({"size": 9}))));
        let any = rules(
            json!([{"field": "tags", "rule": "equals", "value": "secret", "policy": "exclude"}]),
        );
        assert!(!any.includes(&fields(json!({"tags": ["a", "secret"]}))));
    }

    #[test]
    fn invalid_rules_are_named() {
        let specs: Vec<RuleSpec> = serde_json::from_value(json!([
            {"field": "name", "rule": "regex", "value": "(", "policy": "exclude"},
            {"field": " ", "rule": "equals", "value": "x", "policy": "include"},
            {"field": "n", "rule": "equals", "value": [1], "policy": "include"},
        ]))
        .unwrap();
        let errors = Rules::compile(&specs).unwrap_err();
        assert_eq!(errors.len(), 3);
        assert!(errors[0].starts_with("rule 1: invalid regex"));
        assert!(errors[1].starts_with("rule 2"));
        assert!(errors[2].starts_with("rule 3"));
        assert!(
            serde_json::from_value::<RuleSpec>(
                json!({"field": "a", "rule": "like", "value": "x", "policy": "include"})
            )
            .is_err()
        );
    }
}
