//! Connector configuration checked against a plugin's manifest schema.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default), values are coerced
//! to the field's kind (`"10"` → 10 for integers, `"a, b"` → `["a", "b"]` for lists), defaults
//! are filled in, and required fields are required only when their `depends-on` conditions hold.
//! Every problem is reported at once, naming the field by key and label.

use serde_json::{Map, Value};

use crate::bindings::plugin::{ConfigField, FieldKind};

/// Resolves `raw` against `fields`: the plugin receives the returned object.
pub fn resolve(
    fields: &[ConfigField],
    raw: &Map<String, Value>,
) -> Result<Map<String, Value>, Vec<String>> {
    let mut errors = Vec::new();
    for key in raw.keys() {
        if !fields.iter().any(|f| &f.key == key) {
            let known: Vec<&str> = fields.iter().map(|f| f.key.as_str()).collect();
            errors.push(format!(
                "unknown setting `{key}` (known settings: {})",
                known.join(", ")
            ));
        }
    }
    let mut resolved = Map::new();
    for field in fields {
        let value = match raw.get(&field.key).filter(|v| !is_blank(v)) {
            Some(v) => match coerce(field, v) {
                Ok(v) => Some(v),
                Err(e) => {
                    errors.push(format!("`{}` ({}): {e}", field.key, field.label));
                    None
                }
            },
            None => match &field.default_value {
                Some(default) => match serde_json::from_str::<Value>(default) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        errors.push(format!(
                            "`{}`: the plugin's default is not JSON: {e}",
                            field.key
                        ));
                        None
                    }
                },
                None => None,
            },
        };
        if let Some(v) = value {
            resolved.insert(field.key.clone(), v);
        }
    }
    for field in fields {
        if field.required && active(field, &resolved) && !resolved.contains_key(&field.key) {
            let when = if field.depends_on.is_empty() {
                String::new()
            } else {
                let conds: Vec<String> = field
                    .depends_on
                    .iter()
                    .map(|d| format!("`{}` is {}", d.field, d.value))
                    .collect();
                format!(" when {}", conds.join(" and "))
            };
            errors.push(format!(
                "`{}` ({}) is required{when}",
                field.key, field.label
            ));
        }
    }
    if errors.is_empty() {
        Ok(resolved)
    } else {
        Err(errors)
    }
}

/// Brings integer settings of a *migrated* configuration (a connector document written for
/// Elastic's connectors service) into the range `fields` declares, returning one warning per
/// changed value. Elastic accepted e.g. `retry_count` 20 or `concurrent_downloads` 2000, so
/// refusing them would stop a migrated connector; a value typed for tributary (`tributary.toml`,
/// the API) still goes through the strict [`resolve`] alone.
pub fn clamp_migrated(fields: &[ConfigField], raw: &mut Map<String, Value>) -> Vec<String> {
    let mut warnings = Vec::new();
    for field in fields {
        if !matches!(field.kind, FieldKind::Integer) {
            continue;
        }
        let Some(value) = raw.get_mut(&field.key) else {
            continue;
        };
        let n = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        let Some(n) = n else { continue };
        let bound = match (field.min, field.max) {
            (Some(min), _) if n < min => min,
            (_, Some(max)) if n > max => max,
            _ => continue,
        };
        warnings.push(format!(
            "`{}` ({}): the migrated value {n} is out of range ({}..={}); using {bound}",
            field.key,
            field.label,
            field.min.map(|m| m.to_string()).unwrap_or_default(),
            field.max.map(|m| m.to_string()).unwrap_or_default(),
        ));
        *value = Value::from(bound);
    }
    warnings
}

/// Whether every `depends-on` condition of `field` holds in `values`.
pub fn active(field: &ConfigField, values: &Map<String, Value>) -> bool {
    field.depends_on.iter().all(|dep| {
        let expected =
            serde_json::from_str::<Value>(&dep.value).unwrap_or(Value::String(dep.value.clone()));
        values.get(&dep.field) == Some(&expected)
    })
}

fn is_blank(v: &Value) -> bool {
    v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty())
}

fn coerce(field: &ConfigField, v: &Value) -> Result<Value, String> {
    match field.kind {
        FieldKind::Text | FieldKind::Textarea => match v {
            Value::String(s) => Ok(Value::String(s.clone())),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            other => Err(format!("expected text, got {other}")),
        },
        FieldKind::Integer => {
            let n = match v {
                Value::Number(n) => n
                    .as_i64()
                    .ok_or_else(|| format!("expected a whole number, got {n}"))?,
                Value::String(s) => s
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| format!("expected a whole number, got {s:?}"))?,
                other => return Err(format!("expected a whole number, got {other}")),
            };
            if let Some(min) = field.min.filter(|min| n < *min) {
                return Err(format!("{n} is below the minimum of {min}"));
            }
            if let Some(max) = field.max.filter(|max| n > *max) {
                return Err(format!("{n} is above the maximum of {max}"));
            }
            Ok(Value::from(n))
        }
        FieldKind::Boolean => match v {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            other => Err(format!("expected true or false, got {other}")),
        },
        FieldKind::List => match v {
            Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(Value::String(s.trim().to_string())),
                    Value::Number(n) => Ok(Value::String(n.to_string())),
                    other => Err(format!("list items must be text, got {other}")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::String(s) => Ok(Value::Array(
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.into()))
                    .collect(),
            )),
            other => Err(format!("expected a list, got {other}")),
        },
        FieldKind::Select => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => return Err(format!("expected one of the options, got {other}")),
            };
            if field.options.iter().any(|o| o.value == s) {
                Ok(Value::String(s))
            } else {
                let options: Vec<&str> = field.options.iter().map(|o| o.value.as_str()).collect();
                Err(format!("{s:?} is not one of: {}", options.join(", ")))
            }
        }
        FieldKind::Json => Ok(v.clone()),
    }
}

/// A copy of `config` with sensitive values replaced, for display and logs.
pub fn redact(fields: &[ConfigField], config: &Map<String, Value>) -> Map<String, Value> {
    config
        .iter()
        .map(|(k, v)| {
            let secret = fields.iter().any(|f| &f.key == k && f.sensitive);
            (
                k.clone(),
                if secret {
                    Value::String("********".into())
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::bindings::plugin::{FieldDependency, SelectOption};
    use serde_json::json;

    fn field(key: &str, kind: FieldKind) -> ConfigField {
        ConfigField {
            key: key.into(),
            label: key.to_uppercase(),
            tooltip: None,
            kind,
            options: vec![],
            default_value: None,
            required: false,
            sensitive: false,
            hidden: false,
            depends_on: vec![],
            min: None,
            max: None,
        }
    }

    fn schema() -> Vec<ConfigField> {
        vec![
            ConfigField {
                required: true,
                ..field("app_key", FieldKind::Text)
            },
            ConfigField {
                default_value: Some("3".into()),
                min: Some(0),
                max: Some(10),
                ..field("retry_count", FieldKind::Integer)
            },
            ConfigField {
                default_value: Some("false".into()),
                ..field("dls", FieldKind::Boolean)
            },
            ConfigField {
                required: true,
                depends_on: vec![FieldDependency {
                    field: "dls".into(),
                    value: "true".into(),
                }],
                ..field("admin", FieldKind::Text)
            },
            field("exts", FieldKind::List),
            ConfigField {
                options: vec![SelectOption {
                    value: "a".into(),
                    label: "A".into(),
                }],
                default_value: Some("\"a\"".into()),
                ..field("mode", FieldKind::Select)
            },
            ConfigField {
                sensitive: true,
                ..field("secret", FieldKind::Text)
            },
        ]
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn fills_defaults_and_coerces() {
        let out = resolve(
            &schema(),
            &map(json!({"app_key": "k", "retry_count": "5", "exts": "pdf, txt", "secret": "s"})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(out.clone()),
            json!({"app_key": "k", "retry_count": 5, "dls": false, "exts": ["pdf", "txt"], "mode": "a", "secret": "s"})
        );
        assert_eq!(redact(&schema(), &out)["secret"], json!("********"));
    }

    #[test]
    fn reports_every_problem() {
        let errors = resolve(
            &schema(),
            &map(json!({"retry_count": 11, "dls": "yes", "mode": "b", "typo": 1})),
        )
        .unwrap_err();
        let all = errors.join("\n");
        assert!(all.contains("unknown setting `typo`"), "{all}");
        assert!(
            all.contains("`retry_count` (RETRY_COUNT): 11 is above the maximum of 10"),
            "{all}"
        );
        assert!(all.contains("`dls` (DLS): expected true or false"), "{all}");
        assert!(all.contains("\"b\" is not one of: a"), "{all}");
        assert!(all.contains("`app_key` (APP_KEY) is required"), "{all}");
        assert_eq!(errors.len(), 5, "{all}");
    }

    #[test]
    fn migrated_out_of_range_numbers_are_clamped_with_a_warning() {
        let fields = schema();
        let mut raw = map(json!({"retry_count": 20, "app_key": "k"}));
        let warnings = clamp_migrated(&fields, &mut raw);
        assert_eq!(raw["retry_count"], json!(10));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("`retry_count`") && warnings[0].contains("20"));
        assert!(resolve(&fields, &raw).is_ok());
        let mut raw = map(json!({"retry_count": "-3"}));
        clamp_migrated(&fields, &mut raw);
        assert_eq!(raw["retry_count"], json!(0));
        // In range, or not a number: untouched (the strict check reports the latter).
        let mut raw = map(json!({"retry_count": "many"}));
        assert!(clamp_migrated(&fields, &mut raw).is_empty());
        assert_eq!(raw["retry_count"], json!("many"));
        // Typed for tributary, the strict check still refuses it.
        assert!(resolve(&fields, &map(json!({"retry_count": 20}))).is_err());
    }

    #[test]
    fn dependencies_gate_required_fields() {
        assert!(resolve(&schema(), &map(json!({"app_key": "k"}))).is_ok());
        let errors = resolve(&schema(), &map(json!({"app_key": "k", "dls": true}))).unwrap_err();
        assert_eq!(
            errors,
            vec!["`admin` (ADMIN) is required when `dls` is true".to_string()]
        );
    }

    /// Property tests: the schema comes from a plugin's manifest, the values from operators and
    /// APIs. Manifests themselves are checked by `registry::check_manifest`, tested here too.
    mod props {
        use proptest::prelude::*;

        use super::*;
        use crate::bindings::plugin::{Features, PluginManifest};
        use crate::plugin::registry::check_manifest;

        fn kind() -> impl Strategy<Value = FieldKind> {
            prop_oneof![
                Just(FieldKind::Text),
                Just(FieldKind::Textarea),
                Just(FieldKind::Integer),
                Just(FieldKind::Boolean),
                Just(FieldKind::List),
                Just(FieldKind::Select),
                Just(FieldKind::Json),
            ]
        }

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                prop_oneof![".{0,12}", " ?[0-9-]{0,20} ?", "(true|false|TRUE|a|b|, )+"]
                    .prop_map(Value::String),
            ];
            leaf.prop_recursive(2, 12, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map("[a-d]{1,2}", inner, 0..3)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// Any JSON text, and text that is not JSON.
        fn json_text() -> impl Strategy<Value = String> {
            prop_oneof![json_value().prop_map(|v| v.to_string()), ".{0,12}"]
        }

        /// A field; with `defaults`, possibly a default (of any kind, or not JSON at all).
        fn config_field(defaults: bool) -> impl Strategy<Value = ConfigField> {
            (
                prop_oneof!["[a-d]{1,2}", "[a-z_]{0,4}", ".{0,6}"],
                kind(),
                prop::collection::vec("[a-c]{1,2}", 0..3),
                prop::option::of(json_text()),
                any::<bool>(),
                prop::collection::vec(("[a-d]{1,2}", json_text()), 0..2),
                prop::option::of(-100i64..100),
                prop::option::of(-100i64..100),
            )
                .prop_map(
                    move |(key, kind, options, default, required, deps, min, max)| ConfigField {
                        label: key.to_uppercase(),
                        key,
                        tooltip: None,
                        kind,
                        options: options
                            .into_iter()
                            .map(|o| SelectOption {
                                label: o.clone(),
                                value: o,
                            })
                            .collect(),
                        default_value: if defaults { default } else { None },
                        required,
                        sensitive: false,
                        hidden: false,
                        depends_on: deps
                            .into_iter()
                            .map(|(field, value)| FieldDependency { field, value })
                            .collect(),
                        min,
                        max,
                    },
                )
        }

        fn raw_config() -> impl Strategy<Value = Map<String, Value>> {
            prop::collection::btree_map("[a-e]{1,2}", json_value(), 0..6)
                .prop_map(|m| m.into_iter().collect())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Resolving any configuration against any schema never panics; what it accepts holds
            /// only declared keys, integers within their bounds, options of their selects, and
            /// every required field whose conditions hold.
            #[test]
            fn resolve_never_panics_and_keeps_its_promises(
                fields in prop::collection::vec(config_field(true), 0..6),
                raw in raw_config(),
            ) {
                let Ok(resolved) = resolve(&fields, &raw) else {
                    return Ok(());
                };
                for (key, value) in &resolved {
                    let field = fields.iter().find(|f| &f.key == key);
                    prop_assert!(field.is_some(), "undeclared `{}`", key);
                    let field = field.unwrap();
                    if raw.get(key).is_some_and(|v| !is_blank(v)) {
                        match field.kind {
                            FieldKind::Integer => {
                                let n = value.as_i64().unwrap();
                                prop_assert!(field.min.is_none_or(|m| n >= m));
                                prop_assert!(field.max.is_none_or(|m| n <= m));
                            }
                            FieldKind::Select => prop_assert!(
                                field.options.iter().any(|o| Some(o.value.as_str()) == value.as_str())
                            ),
                            FieldKind::Boolean => prop_assert!(value.is_boolean()),
                            FieldKind::List => prop_assert!(value.as_array().is_some_and(
                                |items| items.iter().all(Value::is_string)
                            )),
                            FieldKind::Text | FieldKind::Textarea => prop_assert!(value.is_string()),
                            FieldKind::Json => prop_assert_eq!(Some(value), raw.get(key)),
                        }
                    }
                }
                for field in &fields {
                    if field.required && active(field, &resolved) {
                        prop_assert!(resolved.contains_key(&field.key));
                    }
                }
                let _ = redact(&fields, &resolved);
            }

            /// Without plugin defaults, a resolved configuration is a fixed point: resolving it
            /// again changes nothing (what the host stores is what the plugin gets).
            #[test]
            fn resolved_configurations_are_fixed_points(
                fields in prop::collection::vec(config_field(false), 0..6),
                raw in raw_config(),
            ) {
                // Keys must be unique, as `check_manifest` guarantees.
                let mut seen = std::collections::HashSet::new();
                prop_assume!(fields.iter().all(|f| seen.insert(f.key.clone())));
                if let Ok(resolved) = resolve(&fields, &raw) {
                    prop_assert_eq!(resolve(&fields, &resolved), Ok(resolved));
                }
            }

            /// Checking any manifest never panics, and an accepted one keeps every promise the
            /// host relies on.
            #[test]
            fn accepted_manifests_are_well_formed(
                name in prop_oneof!["[a-z0-9-]{1,8}", ".{0,10}", "[a-z]{60,70}"],
                version in prop_oneof!["[0-9.]{1,8}", ".{0,3}"],
                config in prop::collection::vec(config_field(true), 0..6),
            ) {
                let manifest = PluginManifest {
                    name,
                    display_name: "x".into(),
                    version,
                    description: String::new(),
                    config,
                    features: Features::empty(),
                };
                if check_manifest(&manifest).is_err() {
                    return Ok(());
                }
                let m = &manifest;
                prop_assert!(!m.name.is_empty() && m.name.len() <= 64);
                prop_assert!(m.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
                prop_assert!(!m.version.is_empty() && m.version.len() <= 64);
                let keys: std::collections::HashSet<&str> = m.config.iter().map(|f| f.key.as_str()).collect();
                prop_assert_eq!(keys.len(), m.config.len(), "keys are unique");
                for f in &m.config {
                    prop_assert!(!f.key.is_empty() && f.key.len() <= 64);
                    prop_assert!(f.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
                    prop_assert!(f.kind != FieldKind::Select || !f.options.is_empty());
                    if let Some(d) = &f.default_value {
                        prop_assert!(serde_json::from_str::<Value>(d).is_ok());
                    }
                    for dep in &f.depends_on {
                        prop_assert!(keys.contains(dep.field.as_str()));
                    }
                }
                // An accepted schema resolves an empty configuration without panicking.
                let _ = resolve(&m.config, &Map::new());
            }
        }
    }
}
