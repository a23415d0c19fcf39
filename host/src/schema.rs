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
    fn dependencies_gate_required_fields() {
        assert!(resolve(&schema(), &map(json!({"app_key": "k"}))).is_ok());
        let errors = resolve(&schema(), &map(json!({"app_key": "k", "dls": true}))).unwrap_err();
        assert_eq!(
            errors,
            vec!["`admin` (ADMIN) is required when `dls` is true".to_string()]
        );
    }
}
