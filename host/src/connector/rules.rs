//! Basic sync rules: include/exclude documents by a top-level field, applied by the host to every
//! source before any content is downloaded.
//!
//! Semantics follow Elastic's connectors: rules are checked in order, the first rule whose
//! condition holds decides (include or exclude), and a document no rule matches is included.
//! Conditions: `equals`, `contains`, `starts_with`, `ends_with`, `regex` (anchored at the start
//! only, like the Python `re.match` Elastic uses: `draft` matches `draft-12.md`), `<`, `>`
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
    /// The regular expression matches at the start of the value (Python's `re.match`, as in
    /// Elastic; end it with `$` to match the whole value).
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
                match Regex::new(&format!("^(?:{value})")) {
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

/// An RFC 3339 timestamp (or a bare date) as seconds since the epoch, for ordering. Values come
/// from documents (plugin-controlled): anything out of range is `None`, never an overflow.
pub fn timestamp_key(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_at(s.find(['T', ' ']).unwrap_or(s.len()));
    let mut parts = date.split('-');
    let (y, m, d): (i64, i64, i64) = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    if parts.next().is_some()
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
        || !(-MAX_YEAR..=MAX_YEAR).contains(&y)
    {
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
        if !(0..=24).contains(&h) || !(0..=59).contains(&mi) || !(0.0..61.0).contains(&sec) {
            return None;
        }
        secs = h * 3600 + mi * 60 + sec as i64;
        if let Some(sign) = zone.chars().next().filter(|c| *c == '+' || *c == '-') {
            let mut z = zone[1..].split(':');
            let zh: i64 = z.next()?.parse().ok()?;
            let zm: i64 = z.next().unwrap_or("0").parse().ok()?;
            if !(0..=23).contains(&zh) || !(0..=59).contains(&zm) {
                return None;
            }
            offset = (zh * 3600 + zm * 60) * if sign == '+' { 1 } else { -1 };
        }
    }
    // Days from civil (Howard Hinnant's algorithm); the year bound keeps it far from overflow.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + secs - offset)
}

/// Years beyond this are not dates anyone syncs (and would overflow seconds since the epoch).
const MAX_YEAR: i64 = 1_000_000;

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
            "regex is anchored at the start"
        );
        assert!(
            r.includes(&fields(json!({"other": 1}))),
            "absent fields never match"
        );
    }

    /// Elastic evaluates `regex` with Python's `re.match(value, field)`: anchored at the start
    /// of the field, not at its end, so a prefix pattern matches longer values.
    #[test]
    fn regex_is_anchored_at_the_start_only_like_python_re_match() {
        let r = rules(json!([
            {"field": "name", "rule": "regex", "value": "draft", "policy": "exclude"},
            {"field": "file_path", "rule": "regex", "value": "/Archive/\\d{4}", "policy": "exclude"},
            {"field": "ext", "rule": "regex", "value": "pdf$", "policy": "exclude"},
            {"field": "alt", "rule": "regex", "value": "a|b", "policy": "exclude"},
        ]));
        assert!(
            !r.includes(&fields(json!({"name": "draft-12.md"}))),
            "prefix"
        );
        assert!(
            !r.includes(&fields(json!({"name": "draft"}))),
            "whole value"
        );
        assert!(
            r.includes(&fields(json!({"name": "my draft"}))),
            "not a search"
        );
        assert!(!r.includes(&fields(json!({"file_path": "/Archive/2019/q1.pdf"}))));
        assert!(r.includes(&fields(json!({"file_path": "/Work/Archive/2019"}))));
        assert!(!r.includes(&fields(json!({"ext": "pdf"}))));
        assert!(
            r.includes(&fields(json!({"ext": "pdfx"}))),
            "`$` still ends"
        );
        // The anchor applies to the whole alternation, as `re.match` does.
        assert!(!r.includes(&fields(json!({"alt": "bcd"}))));
        assert!(r.includes(&fields(json!({"alt": "cab"}))));
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

    /// Property tests: rules come from operators and APIs, the values they test from plugins.
    mod props {
        use proptest::prelude::*;

        use super::*;

        fn condition() -> impl Strategy<Value = Condition> {
            prop_oneof![
                Just(Condition::Equals),
                Just(Condition::Contains),
                Just(Condition::StartsWith),
                Just(Condition::EndsWith),
                Just(Condition::Regex),
                Just(Condition::Less),
                Just(Condition::Greater),
            ]
        }

        fn policy() -> impl Strategy<Value = Policy> {
            prop_oneof![Just(Policy::Include), Just(Policy::Exclude)]
        }

        /// Any JSON value, a few levels deep.
        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                ".{0,24}".prop_map(Value::String),
                // Text that looks like numbers and timestamps, which `<`/`>` parse.
                r"[+-]?[0-9]{1,25}(\.[0-9]{0,5})?(e[+-]?[0-9]{1,4})?".prop_map(Value::String),
                r"-?[0-9]{1,20}-[0-9]{1,3}-[0-9]{1,3}([T ][0-9]{1,20}:[0-9]{1,20}(:[0-9.]{1,8})?([Zz]|[+-][0-9]{1,20}(:[0-9]{1,20})?)?)?"
                    .prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map("[a-c]{1,2}", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn has_float(v: &Value) -> bool {
            match v {
                Value::Number(n) => n.is_f64(),
                Value::Array(items) => items.iter().any(has_float),
                Value::Object(m) => m.values().any(has_float),
                _ => false,
            }
        }

        fn rule_spec() -> impl Strategy<Value = RuleSpec> {
            (
                prop_oneof!["[a-c_]{0,3}", ".{0,8}"],
                condition(),
                prop_oneof![
                    json_value(),
                    r"[a-c.*+?()\[\]|^$\\{}0-9]{0,12}".prop_map(Value::String)
                ],
                policy(),
            )
                .prop_map(|(field, rule, value, policy)| RuleSpec {
                    field,
                    rule,
                    value,
                    policy,
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Compiling any rules and testing any document never panics; errors name rules.
            #[test]
            fn rules_never_panic(
                specs in prop::collection::vec(rule_spec(), 0..6),
                fields in prop::collection::btree_map("[a-c_]{1,3}", json_value(), 0..6),
            ) {
                let fields: Map<String, Value> = fields.into_iter().collect();
                match Rules::compile(&specs) {
                    Ok(rules) => {
                        let _ = rules.includes(&fields);
                        prop_assert_eq!(rules.is_empty(), specs.is_empty());
                    }
                    Err(errors) => {
                        prop_assert!(!errors.is_empty());
                        for e in errors {
                            prop_assert!(e.starts_with("rule "), "{}", e);
                        }
                    }
                }
            }

            /// Rules survive a JSON round trip (the API stores them as JSON).
            #[test]
            fn rule_specs_round_trip_through_json(spec in rule_spec()) {
                // serde_json reads floats back exactly only with `float_roundtrip`: leave them out.
                prop_assume!(!has_float(&spec.value));
                let text = serde_json::to_string(&spec).unwrap();
                let once: RuleSpec = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(&once, &spec);
            }

            /// One `equals` rule decides exactly the documents whose field equals its value (or
            /// holds it in a list); every other document is included.
            #[test]
            fn an_equals_rule_decides_exactly_its_matches(
                value in "[a-z0-9 ]{0,6}",
                other in "[a-z0-9 ]{0,6}",
                policy in policy(),
            ) {
                let rules = Rules::compile(&[RuleSpec {
                    field: "name".into(),
                    rule: Condition::Equals,
                    value: Value::String(value.clone()),
                    policy,
                }])
                .unwrap();
                let doc = |v: Value| -> Map<String, Value> {
                    [("name".to_string(), v)].into_iter().collect()
                };
                let decided = policy == Policy::Include;
                prop_assert_eq!(rules.includes(&doc(Value::String(value.clone()))), decided);
                prop_assert_eq!(
                    rules.includes(&doc(Value::Array(vec![Value::String(other.clone()), Value::String(value.clone())]))),
                    decided
                );
                prop_assert_eq!(rules.includes(&doc(Value::String(other.clone()))), other != value || decided);
                prop_assert!(rules.includes(&Map::new()), "absent fields never match");
            }

            /// `<` and `>` agree with numeric order for numbers, and are mutually exclusive.
            #[test]
            fn comparisons_follow_numeric_order(a in -1e12f64..1e12, b in -1e12f64..1e12) {
                let rule = |rule| Rules::compile(&[RuleSpec {
                    field: "n".into(),
                    rule,
                    value: Value::from(b),
                    policy: Policy::Exclude,
                }])
                .unwrap();
                let doc: Map<String, Value> = [("n".to_string(), Value::from(a))].into_iter().collect();
                let less = !rule(Condition::Less).includes(&doc);
                let greater = !rule(Condition::Greater).includes(&doc);
                prop_assert_eq!(less, a < b);
                prop_assert_eq!(greater, a > b);
                prop_assert!(!(less && greater));
            }

            /// Timestamps never overflow, and valid ones order like the instants they name.
            #[test]
            fn timestamps_never_overflow_and_order_chronologically(
                text in ".{0,40}",
                (y1, m1, d1, h1, mi1, s1) in (1i64..9999, 1i64..=12, 1i64..=28, 0i64..24, 0i64..60, 0i64..60),
                (y2, m2, d2, h2, mi2, s2) in (1i64..9999, 1i64..=12, 1i64..=28, 0i64..24, 0i64..60, 0i64..60),
                offset_hours in 0i64..14,
            ) {
                let _ = timestamp_key(&text);
                let stamp = |y, m, d, h, mi, s| format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
                let a = timestamp_key(&stamp(y1, m1, d1, h1, mi1, s1)).unwrap();
                let b = timestamp_key(&stamp(y2, m2, d2, h2, mi2, s2)).unwrap();
                prop_assert_eq!(a.cmp(&b), (y1, m1, d1, h1, mi1, s1).cmp(&(y2, m2, d2, h2, mi2, s2)));
                // An offset moves the instant by exactly that much.
                let zoned = format!("{y1:04}-{m1:02}-{d1:02}T{h1:02}:{mi1:02}:{s1:02}+{offset_hours:02}:00");
                prop_assert_eq!(timestamp_key(&zoned), Some(a - offset_hours * 3600));
            }
        }

        #[test]
        fn absurd_timestamps_are_not_dates() {
            for s in [
                "9223372036854775807-01-01",
                "2024-01-01T9223372036854775807:00",
                "2024-01-01T00:00:00+9223372036854775807",
                "-9223372036854775808-12-31T23:59:59Z",
            ] {
                assert_eq!(timestamp_key(s), None, "{s}");
            }
        }
    }
}
