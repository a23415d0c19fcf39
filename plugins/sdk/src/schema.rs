//! The configuration schema, declared once: a builder for the manifest's [`ConfigField`]s, and
//! typed reads of a configuration whose defaults and bounds come from that same declaration.
//!
//! ```ignore
//! use tributary_sdk::schema::{Schema, integer, text};
//!
//! fn schema() -> Schema {
//!     Schema::new([
//!         text("base_url", "Base URL").required().tooltip("e.g. https://api.example.com"),
//!         text("api_token", "API token").sensitive(),
//!         integer("page_size", "Page size").default(50).range(1, 1000),
//!     ])
//! }
//!
//! // In `manifest`: `config: schema().fields()`. In a sync:
//! let values = schema().read(&request.config)?;
//! let page_size = values.u32("page_size")?; // 50 when absent, clamped to 1..=1000
//! ```
//!
//! A read of a key the schema does not declare is a `Config` error naming the key: a typo in
//! plugin code fails the first test instead of silently reading a default.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Config;
use crate::{ConfigField, Error, FieldDependency, FieldKind, Result, SelectOption};

/// One configuration field under construction (see the module example).
#[derive(Clone, Debug)]
pub struct Field(ConfigField);

/// A field with every option off: the starting point for plugins that fill in
/// [`ConfigField`]s themselves rather than through [`Field`].
pub fn bare(key: &str, label: &str, kind: FieldKind) -> ConfigField {
    ConfigField {
        key: key.into(),
        label: label.into(),
        tooltip: None,
        kind,
        options: Vec::new(),
        default_value: None,
        required: false,
        sensitive: false,
        hidden: false,
        depends_on: Vec::new(),
        min: None,
        max: None,
    }
}

fn field(key: &str, label: &str, kind: FieldKind) -> Field {
    Field(bare(key, label, kind))
}

/// A one-line text setting.
pub fn text(key: &str, label: &str) -> Field {
    field(key, label, FieldKind::Text)
}

/// A multi-line text setting.
pub fn textarea(key: &str, label: &str) -> Field {
    field(key, label, FieldKind::Textarea)
}

/// An integer setting (bounds with [`Field::range`]).
pub fn integer(key: &str, label: &str) -> Field {
    field(key, label, FieldKind::Integer)
}

/// A boolean setting.
pub fn boolean(key: &str, label: &str) -> Field {
    field(key, label, FieldKind::Boolean)
}

/// A list of strings (comma-separated in UIs, a JSON array in the configuration).
pub fn list(key: &str, label: &str) -> Field {
    field(key, label, FieldKind::List)
}

/// Free JSON (e.g. advanced rules).
pub fn json(key: &str, label: &str) -> Field {
    field(key, label, FieldKind::Json)
}

/// One of `options`, given as `(value, label)` pairs.
pub fn select(key: &str, label: &str, options: &[(&str, &str)]) -> Field {
    let mut f = field(key, label, FieldKind::Select);
    f.0.options = options
        .iter()
        .map(|(value, label)| SelectOption {
            value: (*value).into(),
            label: (*label).into(),
        })
        .collect();
    f
}

/// `retry_count`: retries per request, 0–10, default `default`.
pub fn retry_count(default: u32) -> Field {
    integer("retry_count", "Retries per request")
        .default(default)
        .range(0, 10)
}

/// `concurrent_downloads`: content downloads the host runs at once, 1–500, default `default`.
pub fn concurrent_downloads(default: u32) -> Field {
    integer("concurrent_downloads", "Concurrent downloads")
        .default(default)
        .range(1, 500)
}

/// `use_text_extraction_service`: send content to the host's extraction service (default off).
pub fn use_text_extraction_service() -> Field {
    boolean("use_text_extraction_service", "Use text extraction service")
        .default(false)
        .tooltip("Send content to the host's external extraction service")
}

impl Field {
    /// The field must have a value (a default counts).
    pub fn required(mut self) -> Self {
        self.0.required = true;
        self
    }

    /// A secret: write-only in APIs, never logged.
    pub fn sensitive(mut self) -> Self {
        self.0.sensitive = true;
        self
    }

    /// Not shown in UIs (e.g. base-URL overrides for tests).
    pub fn hidden(mut self) -> Self {
        self.0.hidden = true;
        self
    }

    /// Help text.
    pub fn tooltip(mut self, tooltip: &str) -> Self {
        self.0.tooltip = Some(tooltip.into());
        self
    }

    /// The default, filled in by the host when the setting is absent.
    pub fn default(mut self, value: impl Into<Value>) -> Self {
        self.0.default_value = Some(value.into().to_string());
        self
    }

    /// Inclusive bounds for an integer.
    pub fn range(mut self, min: i64, max: i64) -> Self {
        self.0.min = Some(min);
        self.0.max = Some(max);
        self
    }

    /// Relevant (shown, required, validated) only when `field` has `value`.
    pub fn depends_on(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.0.depends_on.push(FieldDependency {
            field: field.into(),
            value: value.into().to_string(),
        });
        self
    }

    /// The WIT record.
    pub fn build(self) -> ConfigField {
        self.0
    }
}

impl From<Field> for ConfigField {
    fn from(field: Field) -> Self {
        field.0
    }
}

/// A plugin's configuration schema: what its manifest declares and what [`Values`] reads.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    fields: Vec<ConfigField>,
}

impl Schema {
    /// A schema of these fields, in display order.
    pub fn new<F: Into<ConfigField>>(fields: impl IntoIterator<Item = F>) -> Self {
        Self {
            fields: fields.into_iter().map(Into::into).collect(),
        }
    }

    /// The fields, for [`crate::Manifest::config`].
    pub fn fields(&self) -> Vec<ConfigField> {
        self.fields.clone()
    }

    /// The declaration of `key`.
    pub fn field(&self, key: &str) -> Option<&ConfigField> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// Parses the configuration JSON the host passes to exports, for typed reads.
    pub fn read(&self, config: &str) -> Result<Values> {
        Ok(Values {
            schema: self.clone(),
            config: Config::parse(config)?,
        })
    }
}

/// A configuration read through its [`Schema`]: absent values fall back to the declared default,
/// integers are clamped to the declared bounds, and keys must be declared.
#[derive(Clone, Debug)]
pub struct Values {
    schema: Schema,
    config: Config,
}

impl Values {
    /// The untyped configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn declared(&self, key: &str) -> Result<&ConfigField> {
        self.schema.field(key).ok_or_else(|| {
            Error::Config(format!(
                "`{key}` is not declared in the plugin's configuration schema"
            ))
        })
    }

    /// The value of `key`, or its declared default (blank strings count as absent).
    pub fn value(&self, key: &str) -> Result<Option<Value>> {
        let field = self.declared(key)?;
        let given = self
            .config
            .get(key)
            .filter(|v| !matches!(v, Value::String(s) if s.trim().is_empty()));
        if let Some(v) = given {
            return Ok(Some(v.clone()));
        }
        match &field.default_value {
            Some(default) => serde_json::from_str(default)
                .map(Some)
                .map_err(|e| Error::Config(format!("the default of `{key}` is not JSON: {e}"))),
            None => Ok(None),
        }
    }

    fn missing(&self, key: &str) -> Error {
        let label = self
            .schema
            .field(key)
            .map(|f| format!(" ({})", f.label))
            .unwrap_or_default();
        Error::Config(format!("`{key}`{label} is required"))
    }

    /// A string that must be present (or defaulted) and not blank.
    pub fn str(&self, key: &str) -> Result<String> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    /// A string, `None` when absent or blank.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>> {
        match self.value(key)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Some(other) => Ok(Some(other.to_string())),
        }
    }

    /// An integer clamped to the declared bounds; a missing value without default is an error.
    pub fn int(&self, key: &str) -> Result<i64> {
        let field = self.declared(key)?;
        let raw = match self.value(key)? {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(_) => None,
            None => return Err(self.missing(key)),
        }
        .ok_or_else(|| Error::Config(format!("`{key}` must be an integer")))?;
        Ok(raw
            .max(field.min.unwrap_or(i64::MIN))
            .min(field.max.unwrap_or(i64::MAX)))
    }

    /// A non-negative integer (negative values are a configuration error).
    pub fn u64(&self, key: &str) -> Result<u64> {
        let n = self.int(key)?;
        u64::try_from(n).map_err(|_| Error::Config(format!("`{key}` must not be negative")))
    }

    /// A non-negative integer that fits `u32`.
    pub fn u32(&self, key: &str) -> Result<u32> {
        let n = self.u64(key)?;
        u32::try_from(n).map_err(|_| Error::Config(format!("`{key}` is too large")))
    }

    /// A boolean; absent without default is `false`.
    pub fn bool(&self, key: &str) -> Result<bool> {
        match self.value(key)? {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(Error::Config(format!("`{key}` must be true or false"))),
        }
    }

    /// A list of strings (a JSON array or a comma-separated string); empty when absent.
    pub fn list(&self, key: &str) -> Result<Vec<String>> {
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        Ok(match self.value(key)? {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::trim).filter(|s| !s.is_empty()))
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) => split(&s),
            _ => Vec::new(),
        })
    }

    /// The chosen option of a select field, checked against the declared options.
    pub fn select(&self, key: &str) -> Result<String> {
        let field = self.declared(key)?;
        let value = self.str(key)?;
        if field.options.iter().any(|o| o.value == value) {
            Ok(value)
        } else {
            let options: Vec<&str> = field.options.iter().map(|o| o.value.as_str()).collect();
            Err(Error::Config(format!(
                "`{key}` is {value:?}, not one of {}",
                options.join(", ")
            )))
        }
    }

    /// A JSON setting decoded into `T`; `None` when absent.
    pub fn json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let value = match self.value(key)? {
            None => return Ok(None),
            // JSON fields may arrive as a JSON text inside a string.
            Some(Value::String(s)) => serde_json::from_str(&s)
                .map_err(|e| Error::Config(format!("`{key}` is not valid JSON: {e}")))?,
            Some(v) => v,
        };
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| Error::Config(format!("`{key}`: {e}")))
    }

    /// An absolute URL (for `allowed-hosts`, see [`crate::http::host_of`]) without trailing `/`.
    pub fn url(&self, key: &str) -> Result<String> {
        let url = self.str(key)?;
        crate::http::host_of(&url).map_err(|e| e.context(format!("`{key}`")))?;
        Ok(url.trim_end_matches('/').to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn schema() -> Schema {
        Schema::new([
            text("base_url", "Base URL").required().tooltip("where"),
            text("token", "Token").sensitive(),
            integer("page_size", "Page size").default(50).range(1, 100),
            integer("depth", "Depth"),
            boolean("recursive", "Recursive").default(true),
            list("paths", "Paths"),
            select("mode", "Mode", &[("fast", "Fast"), ("slow", "Slow")])
                .default("fast")
                .depends_on("recursive", true),
            json("rules", "Rules"),
            retry_count(3),
        ])
    }

    #[test]
    fn builder_fills_the_wit_record() {
        let fields = schema().fields();
        assert_eq!(fields.len(), 9);
        let base = &fields[0];
        assert!(base.required && !base.sensitive);
        assert_eq!(base.tooltip.as_deref(), Some("where"));
        assert!(fields[1].sensitive);
        assert_eq!(fields[2].default_value.as_deref(), Some("50"));
        assert_eq!((fields[2].min, fields[2].max), (Some(1), Some(100)));
        assert_eq!(fields[6].default_value.as_deref(), Some("\"fast\""));
        assert_eq!(fields[6].options.len(), 2);
        assert_eq!(fields[6].depends_on[0].field, "recursive");
        assert_eq!(fields[6].depends_on[0].value, "true");
        assert_eq!(fields[8].key, "retry_count");
    }

    #[test]
    fn typed_reads_use_the_declared_defaults_and_bounds() {
        let v = schema()
            .read(r#"{"base_url": "http://h:1/api/", "page_size": 500, "paths": "a, b", "rules": "[1]"}"#)
            .unwrap();
        assert_eq!(v.url("base_url").unwrap(), "http://h:1/api");
        assert_eq!(v.u32("page_size").unwrap(), 100, "clamped to max");
        assert!(v.bool("recursive").unwrap(), "declared default");
        assert_eq!(v.select("mode").unwrap(), "fast");
        assert_eq!(v.list("paths").unwrap(), ["a", "b"]);
        assert_eq!(v.json::<Vec<u8>>("rules").unwrap(), Some(vec![1]));
        assert_eq!(v.u32("retry_count").unwrap(), 3);
        assert_eq!(v.opt_str("token").unwrap(), None);
        assert!(
            matches!(v.int("depth"), Err(Error::Config(m)) if m.contains("`depth` (Depth) is required"))
        );
        assert!(matches!(v.str("page_sise"), Err(Error::Config(m)) if m.contains("not declared")));
    }

    #[test]
    fn bad_values_are_config_errors() {
        let v = schema()
            .read(r#"{"base_url": "nope", "page_size": "x", "mode": "medium", "recursive": 3}"#)
            .unwrap();
        assert!(matches!(v.url("base_url"), Err(Error::Config(m)) if m.contains("`base_url`")));
        assert!(matches!(v.int("page_size"), Err(Error::Config(_))));
        assert!(matches!(v.select("mode"), Err(Error::Config(m)) if m.contains("fast, slow")));
        assert!(v.bool("recursive").is_err());
        assert!(schema().read("[]").is_err());
    }
}
