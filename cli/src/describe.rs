//! `tributary plugin describe <name|file.wasm>`: a plugin's settings as a table — key, type,
//! default, required, sensitive, depends-on, tooltip — for a bundled or loaded plugin (by name)
//! or a component file. `connectors` prints it too when a connector's configuration is
//! incomplete.
//!
//! Describing reads state only: a name is looked up in a host opened without creating its data
//! directory; a file is inspected like `plugin check`.

use std::path::Path;

use anyhow::Context;
use tributary_host::bindings::plugin::{FieldKind, PluginManifest};
use tributary_host::{Host, HostConfig, OpenOptions};

/// What `describe` was asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// A component file.
    File(&'a Path),
    /// A loaded plugin (bundled or from `plugins_dir`).
    Name(&'a str),
}

impl<'a> Target<'a> {
    /// A path (with a `/` or ending in `.wasm`) is a file, anything else a plugin name.
    pub fn parse(text: &'a str) -> Self {
        if text.contains('/') || text.ends_with(".wasm") || Path::new(text).is_file() {
            Target::File(Path::new(text))
        } else {
            Target::Name(text)
        }
    }
}

/// The manifest of `target`.
pub async fn manifest(config: &HostConfig, target: Target<'_>) -> anyhow::Result<PluginManifest> {
    match target {
        Target::File(path) => {
            let wasm =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let engines = config.engines()?;
            engines.runtime.on_compile(crate::progress::compile_hook());
            let inspection = tributary_host::plugin::check::inspect(
                &engines,
                wasm,
                &path.display().to_string(),
                None,
            )
            .await?;
            Ok(inspection.manifest)
        }
        Target::Name(name) => {
            let host = Host::open_with(
                config.clone(),
                OpenOptions {
                    on_compile: Some(crate::progress::compile_hook()),
                    ..OpenOptions::default()
                },
            )
            .await?;
            Ok(host.plugin(name)?.manifest.clone())
        }
    }
}

fn kind(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Text => "text",
        FieldKind::Textarea => "textarea",
        FieldKind::Integer => "integer",
        FieldKind::Boolean => "boolean",
        FieldKind::List => "list",
        FieldKind::Select => "select",
        FieldKind::Json => "json",
    }
}

/// The settings table: a header line, then one row per field (hidden fields last, marked).
pub fn render(m: &PluginManifest) -> String {
    let mut rows = vec![[
        "KEY".to_string(),
        "TYPE".into(),
        "DEFAULT".into(),
        "REQUIRED".into(),
        "SENSITIVE".into(),
        "DEPENDS-ON".into(),
        "TOOLTIP".into(),
    ]];
    let mut fields: Vec<_> = m.config.iter().collect();
    fields.sort_by_key(|f| f.hidden);
    for f in fields {
        let mut kind = kind(f.kind).to_string();
        if !f.options.is_empty() {
            let values: Vec<&str> = f.options.iter().map(|o| o.value.as_str()).collect();
            kind = format!("{kind}({})", values.join("|"));
        }
        match (f.min, f.max) {
            (Some(a), Some(b)) => kind.push_str(&format!(" {a}..={b}")),
            (Some(a), None) => kind.push_str(&format!(" >={a}")),
            (None, Some(b)) => kind.push_str(&format!(" <={b}")),
            (None, None) => {}
        }
        let depends: Vec<String> = f
            .depends_on
            .iter()
            .map(|d| format!("{}={}", d.field, d.value))
            .collect();
        let mut tooltip = f.tooltip.clone().unwrap_or_else(|| f.label.clone());
        if f.hidden {
            tooltip = format!("(hidden) {tooltip}");
        }
        let yes = |b: bool| if b { "yes" } else { "" }.to_string();
        rows.push([
            f.key.clone(),
            kind,
            f.default_value.clone().unwrap_or_default(),
            yes(f.required),
            yes(f.sensitive),
            depends.join(", "),
            tooltip.replace('\n', " "),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format!(
        "{} {} — {}\n{}\n\n",
        m.name, m.version, m.display_name, m.description
    );
    for row in &rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths.iter()) {
            line.push_str(&format!("{cell:<w$}  "));
        }
        line.push_str(&row[6]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tributary_host::bindings::plugin::{ConfigField, Features, FieldDependency};

    fn field(key: &str, kind: FieldKind) -> ConfigField {
        ConfigField {
            key: key.into(),
            label: format!("{key} label"),
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

    #[test]
    fn the_table_has_a_row_per_field_with_every_column() {
        let manifest = PluginManifest {
            name: "acme".into(),
            display_name: "Acme".into(),
            version: "1.2.3".into(),
            description: "Acme files".into(),
            config: vec![
                ConfigField {
                    hidden: true,
                    default_value: Some("\"https://api.acme.test\"".into()),
                    ..field("base_url", FieldKind::Text)
                },
                ConfigField {
                    required: true,
                    sensitive: true,
                    tooltip: Some("From the admin\nconsole.".into()),
                    depends_on: vec![FieldDependency {
                        field: "mode".into(),
                        value: "\"cloud\"".into(),
                    }],
                    ..field("token", FieldKind::Text)
                },
                ConfigField {
                    default_value: Some("50".into()),
                    min: Some(1),
                    max: Some(500),
                    ..field("page_size", FieldKind::Integer)
                },
            ],
            features: Features::empty(),
        };
        let table = render(&manifest);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "acme 1.2.3 — Acme");
        assert!(lines[3].starts_with("KEY"), "{table}");
        let squeeze = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
        // Hidden fields last; multi-line tooltips on one line.
        assert_eq!(
            squeeze(lines[4]),
            "token text yes yes mode=\"cloud\" From the admin console."
        );
        assert_eq!(
            squeeze(lines[5]),
            "page_size integer 1..=500 50 page_size label"
        );
        assert_eq!(
            squeeze(lines[6]),
            "base_url text \"https://api.acme.test\" (hidden) base_url label"
        );
        // Columns line up: every row's second column starts where the header's does.
        let at = lines[3].find("TYPE").unwrap();
        assert!(
            lines[4..]
                .iter()
                .all(|l| l[at..].starts_with(|c: char| c != ' '))
        );
    }

    #[test]
    fn a_path_is_a_file_and_a_bare_word_a_plugin_name() {
        assert_eq!(Target::parse("dropbox"), Target::Name("dropbox"));
        assert_eq!(
            Target::parse("dist/x.wasm"),
            Target::File(Path::new("dist/x.wasm"))
        );
        assert_eq!(Target::parse("x.wasm"), Target::File(Path::new("x.wasm")));
    }
}
