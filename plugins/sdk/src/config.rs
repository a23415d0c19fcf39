//! Typed access to the configuration the host hands to every export.
//!
//! The host has already checked the values against the manifest schema and filled in defaults, so
//! a missing or mistyped required field here is a host/plugin mismatch and reported as `Config`.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{Error, Result};

/// A validated configuration object.
#[derive(Clone, Debug, Default)]
pub struct Config {
    values: Map<String, Value>,
}

impl Config {
    /// Parses the JSON object the host passes to exports.
    pub fn parse(json: &str) -> Result<Self> {
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(values)) => Ok(Self { values }),
            Ok(_) => Err(Error::Config("configuration is not a JSON object".into())),
            Err(err) => Err(Error::Config(format!(
                "configuration is not valid JSON: {err}"
            ))),
        }
    }

    /// Deserialises the whole configuration into a plugin's own struct.
    pub fn into_typed<T: DeserializeOwned>(self) -> Result<T> {
        serde_json::from_value(Value::Object(self.values))
            .map_err(|err| Error::Config(format!("configuration: {err}")))
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).filter(|v| !v.is_null())
    }

    /// A string value; empty strings count as absent.
    pub fn opt_str(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    /// A required, non-empty string.
    pub fn str(&self, key: &str) -> Result<&str> {
        self.opt_str(key)
            .ok_or_else(|| Error::Config(format!("`{key}` is required")))
    }

    /// A boolean, `default` when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        self.get(key).and_then(Value::as_bool).unwrap_or(default)
    }

    /// A non-negative integer, `default` when absent.
    pub fn u64_or(&self, key: &str, default: u64) -> u64 {
        self.get(key).and_then(Value::as_u64).unwrap_or(default)
    }

    /// A list of strings (a JSON array, or a comma-separated string).
    pub fn list(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::trim).filter(|s| !s.is_empty()))
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn typed_getters() {
        let c =
            Config::parse(r#"{"a": "x", "b": "", "n": 3, "t": true, "l": "p, q,,r", "j": ["s"]}"#)
                .unwrap();
        assert_eq!(c.str("a").unwrap(), "x");
        assert!(matches!(c.str("b"), Err(Error::Config(m)) if m.contains("`b`")));
        assert_eq!(c.u64_or("n", 9), 3);
        assert_eq!(c.u64_or("missing", 9), 9);
        assert!(c.bool_or("t", false));
        assert_eq!(c.list("l"), vec!["p", "q", "r"]);
        assert_eq!(c.list("j"), vec!["s"]);
        assert!(Config::parse("[1]").is_err());
    }
}
