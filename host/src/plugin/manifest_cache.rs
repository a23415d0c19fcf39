//! Manifests kept beside their compile-cache entries, so a start the cache answers does not
//! instantiate every plugin just to ask what it is.
//!
//! Invariants:
//! - an entry is written only from a manifest a plugin returned and the host checked, under the
//!   name of the component's compile-cache entry (its digest and the engine's fingerprint);
//! - an entry is read back field for field: every WIT field has its place here (the conversions
//!   name them all, so a new field does not compile until it has one) and the feature flags are
//!   spelled out by name; an unreadable, unknown or older entry is ignored, and the manifest is
//!   read from the plugin again and rewritten;
//! - the cache is the operator's, as trusted as the compiled code beside it; the host still
//!   checks what it reads.
//!
//! Why: reading a manifest instantiates the plugin in an inert sandbox; each plugin a host
//! loads but does not run (the embedded Box and Feed plugins during a Dropbox sync) then kept
//! about 1 MB of its code and data resident.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::bindings::plugin::{
    ConfigField, Features, FieldDependency, FieldKind, PluginManifest, SelectOption,
};

/// Bumped whenever the layout below changes: entries of another format are ignored.
const FORMAT: u32 = 1;

/// The manifest at `path`, if there is a usable entry.
pub(crate) fn read(path: &Path) -> Option<PluginManifest> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("ignoring manifest cache entry {}: {e}", path.display());
            return None;
        }
    };
    match serde_json::from_slice::<Entry>(&bytes) {
        Ok(entry) if entry.format == FORMAT => entry.manifest.into_wit().ok(),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!("ignoring manifest cache entry {}: {e}", path.display());
            None
        }
    }
}

/// Keeps `manifest` at `path`; a failure only costs the next start an instantiation.
pub(crate) fn write(path: &Path, manifest: &PluginManifest) {
    let entry = Entry {
        format: FORMAT,
        manifest: Manifest::from_wit(manifest),
    };
    let written = serde_json::to_vec(&entry)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| crate::atomic_file::write_atomic(path, &bytes));
    if let Err(e) = written {
        tracing::warn!("could not write manifest cache {}: {e:#}", path.display());
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    format: u32,
    manifest: Manifest,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    display_name: String,
    version: String,
    description: String,
    config: Vec<Field>,
    features: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Field {
    key: String,
    label: String,
    tooltip: Option<String>,
    kind: Kind,
    options: Vec<(String, String)>,
    default_value: Option<String>,
    required: bool,
    sensitive: bool,
    hidden: bool,
    depends_on: Vec<(String, String)>,
    min: Option<i64>,
    max: Option<i64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Text,
    Textarea,
    Integer,
    Boolean,
    List,
    Select,
    Json,
}

/// Every feature flag and its name in an entry.
const FEATURES: [(Features, &str); 4] = [
    (Features::INCREMENTAL_SYNC, "incremental_sync"),
    (Features::ACCESS_CONTROL_SYNC, "access_control_sync"),
    (Features::ADVANCED_RULES, "advanced_rules"),
    (Features::DOCUMENT_LEVEL_SECURITY, "document_level_security"),
];

impl Manifest {
    fn from_wit(m: &PluginManifest) -> Self {
        let PluginManifest {
            name,
            display_name,
            version,
            description,
            config,
            features,
        } = m;
        Self {
            name: name.clone(),
            display_name: display_name.clone(),
            version: version.clone(),
            description: description.clone(),
            config: config.iter().map(Field::from_wit).collect(),
            features: FEATURES
                .iter()
                .filter(|(flag, _)| features.contains(*flag))
                .map(|(_, name)| (*name).to_string())
                .collect(),
        }
    }

    /// The WIT manifest; an unknown feature name makes the entry unusable.
    fn into_wit(self) -> Result<PluginManifest, String> {
        let mut features = Features::empty();
        for name in &self.features {
            let (flag, _) = FEATURES
                .iter()
                .find(|(_, n)| n == name)
                .ok_or_else(|| format!("unknown feature `{name}`"))?;
            features |= *flag;
        }
        Ok(PluginManifest {
            name: self.name,
            display_name: self.display_name,
            version: self.version,
            description: self.description,
            config: self.config.into_iter().map(Field::into_wit).collect(),
            features,
        })
    }
}

impl Field {
    fn from_wit(f: &ConfigField) -> Self {
        let ConfigField {
            key,
            label,
            tooltip,
            kind,
            options,
            default_value,
            required,
            sensitive,
            hidden,
            depends_on,
            min,
            max,
        } = f;
        Self {
            key: key.clone(),
            label: label.clone(),
            tooltip: tooltip.clone(),
            kind: match kind {
                FieldKind::Text => Kind::Text,
                FieldKind::Textarea => Kind::Textarea,
                FieldKind::Integer => Kind::Integer,
                FieldKind::Boolean => Kind::Boolean,
                FieldKind::List => Kind::List,
                FieldKind::Select => Kind::Select,
                FieldKind::Json => Kind::Json,
            },
            options: options
                .iter()
                .map(|SelectOption { value, label }| (value.clone(), label.clone()))
                .collect(),
            default_value: default_value.clone(),
            required: *required,
            sensitive: *sensitive,
            hidden: *hidden,
            depends_on: depends_on
                .iter()
                .map(|FieldDependency { field, value }| (field.clone(), value.clone()))
                .collect(),
            min: *min,
            max: *max,
        }
    }

    fn into_wit(self) -> ConfigField {
        ConfigField {
            key: self.key,
            label: self.label,
            tooltip: self.tooltip,
            kind: match self.kind {
                Kind::Text => FieldKind::Text,
                Kind::Textarea => FieldKind::Textarea,
                Kind::Integer => FieldKind::Integer,
                Kind::Boolean => FieldKind::Boolean,
                Kind::List => FieldKind::List,
                Kind::Select => FieldKind::Select,
                Kind::Json => FieldKind::Json,
            },
            options: self
                .options
                .into_iter()
                .map(|(value, label)| SelectOption { value, label })
                .collect(),
            default_value: self.default_value,
            required: self.required,
            sensitive: self.sensitive,
            hidden: self.hidden,
            depends_on: self
                .depends_on
                .into_iter()
                .map(|(field, value)| FieldDependency { field, value })
                .collect(),
            min: self.min,
            max: self.max,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn every_field() -> PluginManifest {
        let kinds = [
            FieldKind::Text,
            FieldKind::Textarea,
            FieldKind::Integer,
            FieldKind::Boolean,
            FieldKind::List,
            FieldKind::Select,
            FieldKind::Json,
        ];
        PluginManifest {
            name: "acme".into(),
            display_name: "Acme \"Docs\"".into(),
            version: "1.2.3-rc.1".into(),
            description: "ünïcode\nand lines".into(),
            config: kinds
                .into_iter()
                .enumerate()
                .map(|(i, kind)| ConfigField {
                    key: format!("field_{i}"),
                    label: format!("Field {i}"),
                    tooltip: (i % 2 == 0).then(|| format!("tip {i}")),
                    kind,
                    options: vec![SelectOption {
                        value: format!("v{i}"),
                        label: format!("V {i}"),
                    }],
                    default_value: (i % 3 == 0).then(|| format!("{i}")),
                    required: i % 2 == 1,
                    sensitive: i == 2,
                    hidden: i == 3,
                    depends_on: vec![FieldDependency {
                        field: "field_0".into(),
                        value: "true".into(),
                    }],
                    min: (i == 2).then_some(-5),
                    max: (i == 2).then_some(i64::MAX),
                })
                .collect(),
            features: Features::all(),
        }
    }

    #[test]
    fn every_field_and_every_feature_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let manifest = every_field();
        write(&path, &manifest);
        // The bindings' records have no `PartialEq`; their `Debug` shows every field.
        let shown = |m: Option<PluginManifest>| format!("{m:?}");
        assert_eq!(shown(read(&path)), shown(Some(manifest.clone())));
        // No flag goes unnamed (a flag added to the WIT must be added to `FEATURES`).
        let mut named = Features::empty();
        for (flag, _) in FEATURES {
            named |= flag;
        }
        assert_eq!(named, Features::all());
        for features in [Features::empty(), Features::ADVANCED_RULES] {
            let m = PluginManifest {
                features,
                ..manifest.clone()
            };
            write(&path, &m);
            assert_eq!(read(&path).map(|m| m.features), Some(features));
        }
    }

    #[test]
    fn unusable_entries_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        assert!(read(&path).is_none(), "no entry");
        let good = serde_json::to_value(Entry {
            format: FORMAT,
            manifest: Manifest::from_wit(&every_field()),
        })
        .unwrap();
        let mut other_format = good.clone();
        other_format["format"] = (FORMAT + 1).into();
        let mut unknown_feature = good.clone();
        unknown_feature["manifest"]["features"] = serde_json::json!(["time_travel"]);
        let mut unknown_field = good.clone();
        unknown_field["manifest"]["extra"] = true.into();
        let cut = good.to_string()[..40].to_string();
        for bad in [
            other_format.to_string(),
            unknown_feature.to_string(),
            unknown_field.to_string(),
            cut,
            "\u{0}\u{1}".into(),
        ] {
            std::fs::write(&path, &bad).unwrap();
            assert!(read(&path).is_none(), "{bad}");
        }
    }
}
