//! What a plugin component is, without running a sync (`tributary plugin check`).
//!
//! Inspection compiles the component (through the compile cache), reads its imports and exports
//! from the component's type, and refuses — before anything runs — a component built for another
//! `tributary:connector` version (naming both versions) or one that imports something this host
//! does not offer (naming the import). A component that passes is linked exactly as
//! [`crate::Host::load_plugin`] links it, instantiated the same way in an inert sandbox
//! ([`Engines::inert`]: no hosts allowed, throwaway storage, no job), and asked for its manifest,
//! which is checked; then `allowed-hosts` is called with the configuration the schema's defaults
//! make (or one supplied by the caller).
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use tributary_host::HostConfig;
//! let engines = HostConfig::default().engines()?;
//! let wasm = std::fs::read("plugin.wasm")?;
//! let report = tributary_host::plugin::check::inspect(&engines, wasm, "plugin.wasm", None).await?;
//! println!("{}", report.render());
//! # Ok(()) }
//! ```

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::instance::{Engines, describe_trap, plugin_error};
use crate::bindings::plugin::{FieldKind, PluginManifest};
use crate::net::Allowlist;

/// The package every plugin targets.
pub const PACKAGE: &str = "tributary:connector";

/// The `tributary:connector` interfaces a plugin may import, with what each gives.
pub const CAPABILITIES: &[(&str, &str)] = &[
    ("log", "log lines into the job log"),
    ("http", "outbound HTTP to the allowlisted hosts only"),
    ("storage", "durable key/value state of the connector"),
    (
        "index",
        "documents, deletions and checkpoints of the running job",
    ),
    ("extract", "text extraction by the host"),
    ("types", "shared types"),
];

/// WASI 0.2 interfaces the host links, with what a plugin really gets from each.
pub const WASI: &[(&str, &str)] = &[
    ("wasi:io/error", "stream errors"),
    ("wasi:io/poll", "waiting (sleeps)"),
    ("wasi:io/streams", "stdio streams"),
    ("wasi:clocks/wall-clock", "the time"),
    ("wasi:clocks/monotonic-clock", "timers and sleeps"),
    ("wasi:random/random", "randomness"),
    ("wasi:random/insecure", "randomness"),
    ("wasi:random/insecure-seed", "randomness"),
    ("wasi:cli/stdin", "empty input"),
    ("wasi:cli/stdout", "discarded output"),
    ("wasi:cli/stderr", "captured for error reports"),
    ("wasi:cli/environment", "empty: no variables, no arguments"),
    ("wasi:cli/exit", "exit (fails the call)"),
    ("wasi:cli/terminal-input", "no terminal"),
    ("wasi:cli/terminal-output", "no terminal"),
    ("wasi:cli/terminal-stdin", "no terminal"),
    ("wasi:cli/terminal-stdout", "no terminal"),
    ("wasi:cli/terminal-stderr", "no terminal"),
    ("wasi:filesystem/types", "no files: nothing is preopened"),
    ("wasi:filesystem/preopens", "no files: nothing is preopened"),
    ("wasi:sockets/network", "denied: use the http capability"),
    (
        "wasi:sockets/instance-network",
        "denied: use the http capability",
    ),
    ("wasi:sockets/tcp", "denied: use the http capability"),
    (
        "wasi:sockets/tcp-create-socket",
        "denied: use the http capability",
    ),
    ("wasi:sockets/udp", "denied: use the http capability"),
    (
        "wasi:sockets/udp-create-socket",
        "denied: use the http capability",
    ),
    (
        "wasi:sockets/ip-name-lookup",
        "denied: use the http capability",
    ),
];

/// One import of a component.
#[derive(Clone, Debug)]
pub struct Import {
    /// Full name, e.g. `tributary:connector/http@0.1.0`.
    pub name: String,
    /// What the host provides for it, or why it does not.
    pub note: String,
    /// Whether the host offers it.
    pub offered: bool,
}

/// What `plugin check` found.
pub struct Inspection {
    /// Where the component came from.
    pub source: String,
    /// SHA-256 of the component, hex.
    pub digest: String,
    /// Size in bytes.
    pub size: usize,
    /// The `tributary:connector` version it was built against.
    pub version: String,
    /// Its imports.
    pub imports: Vec<Import>,
    /// Its exports.
    pub exports: Vec<String>,
    /// Its manifest (checked).
    pub manifest: PluginManifest,
    /// The configuration `allowed-hosts` was called with, when there was a complete one.
    pub config: Option<Map<String, Value>>,
    /// The hosts it asks for with that configuration, or why they are unknown.
    pub hosts: Result<Vec<String>, String>,
    /// Time to compile (or load from the compile cache) and instantiate.
    pub timings: (Duration, Duration),
}

/// The package version of an interface name like `tributary:connector/http@0.1.0`.
fn split_name(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('@') {
        Some((base, version)) => (base, Some(version)),
        None => (name, None),
    }
}

/// Whether two versions are compatible the way wasmtime matches imports: equal major (and
/// minor, while the major is 0).
pub fn compatible(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<String> { v.split('.').map(str::to_string).collect() };
    let (a, b) = (parts(a), parts(b));
    match (a.first(), b.first()) {
        (Some(ma), Some(mb)) if ma == mb && ma == "0" => a.get(1) == b.get(1),
        (Some(ma), Some(mb)) => ma == mb,
        _ => false,
    }
}

fn classify(name: &str) -> Import {
    let (base, version) = split_name(name);
    let import = |note: String, offered: bool| Import {
        name: name.to_string(),
        note,
        offered,
    };
    if let Some(interface) = base
        .strip_prefix(PACKAGE)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        let found = CAPABILITIES.iter().find(|(n, _)| *n == interface);
        return match (found, version) {
            (Some((_, what)), Some(v)) if compatible(v, crate::WIT_VERSION) => {
                import(format!("capability: {what}"), true)
            }
            (Some(_), v) => import(
                format!(
                    "built for {PACKAGE}@{}, this host provides {PACKAGE}@{}",
                    v.unwrap_or("(no version)"),
                    crate::WIT_VERSION
                ),
                false,
            ),
            (None, _) => import(
                format!("{PACKAGE} has no interface `{interface}` in any version this host knows"),
                false,
            ),
        };
    }
    match (WASI.iter().find(|(n, _)| *n == base), version) {
        (Some((_, what)), Some(v)) if compatible(v, "0.2.0") => {
            import(format!("WASI: {what}"), true)
        }
        (Some(_), v) => import(
            format!(
                "WASI {} is not offered (the host links WASI 0.2)",
                v.unwrap_or("without version")
            ),
            false,
        ),
        (None, _) => import("not offered by this host".into(), false),
    }
}

/// The `tributary:connector` version a component targets, from its export (or imports).
fn target_version(imports: &[Import], exports: &[String]) -> Option<String> {
    exports
        .iter()
        .chain(imports.iter().map(|i| &i.name))
        .filter(|n| n.starts_with(PACKAGE))
        .find_map(|n| split_name(n).1.map(str::to_string))
}

/// The imports and exports of a compiled component.
pub fn interfaces(component: &Component) -> (Vec<Import>, Vec<String>) {
    let ty = component.component_type();
    let engine = component.engine();
    let imports = ty.imports(engine).map(|(n, _)| classify(n)).collect();
    let exports = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    (imports, exports)
}

/// Refuses a component built for another `tributary:connector` version or importing something
/// the host does not offer; returns the version it targets.
pub fn check_interfaces(
    source: &str,
    imports: &[Import],
    exports: &[String],
) -> anyhow::Result<String> {
    let plugin_export = format!("{PACKAGE}/plugin@");
    let Some(version) = target_version(imports, exports) else {
        bail!(
            "{source} is not a tributary plugin: it neither exports nor imports any {PACKAGE} interface (exports: {})",
            list(exports)
        );
    };
    if !compatible(&version, crate::WIT_VERSION) {
        bail!(
            "{source} was built for {PACKAGE}@{version}, but this host provides {PACKAGE}@{}; rebuild the plugin against {PACKAGE}@{}",
            crate::WIT_VERSION,
            crate::WIT_VERSION
        );
    }
    if !exports.iter().any(|e| e.starts_with(&plugin_export)) {
        bail!(
            "{source} does not export {PACKAGE}/plugin (exports: {})",
            list(exports)
        );
    }
    let refused: Vec<String> = imports
        .iter()
        .filter(|i| !i.offered)
        .map(|i| format!("`{}` ({})", i.name, i.note))
        .collect();
    if !refused.is_empty() {
        bail!(
            "{source} imports {} that this host does not offer: {}. A plugin may import the {PACKAGE}@{} capabilities ({}) and WASI 0.2 (clocks, random, stdio; files, environment and sockets are linked but empty or denied)",
            if refused.len() == 1 {
                "an interface"
            } else {
                "interfaces"
            },
            refused.join(", "),
            crate::WIT_VERSION,
            CAPABILITIES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(version)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// Inspects `wasm` (see the module docs). `config` is the connector configuration to ask
/// `allowed-hosts` with; without it, the schema's defaults are used when they are complete.
pub async fn inspect(
    engines: &Engines,
    wasm: Vec<u8>,
    source: &str,
    config: Option<&Map<String, Value>>,
) -> anyhow::Result<Inspection> {
    let digest = hex::encode(Sha256::digest(&wasm));
    let size = wasm.len();
    let started = std::time::Instant::now();
    let runtime = &engines.runtime;
    let rt = runtime.clone();
    let label = source.to_string();
    let component = tokio::task::spawn_blocking(move || rt.compile_labelled(&wasm, &label))
        .await
        .context("compile task failed")?
        .with_context(|| format!("{source} is not a valid WebAssembly component"))?;
    let compiled = started.elapsed();
    let (imports, exports) = interfaces(&component);
    let version = check_interfaces(source, &imports, &exports)?;
    let pre = runtime
        .pre(&component)
        .map_err(|e| anyhow!("{source} cannot be linked against this host: {e:#}"))?;

    let started = std::time::Instant::now();
    let mut instance = engines.inert(&pre, source).await?;
    let instantiated = started.elapsed();
    let manifest = instance.manifest().await?;

    let empty = Map::new();
    let (config, hosts) = match crate::connector::schema::resolve(
        &manifest.config,
        config.unwrap_or(&empty),
    ) {
        Err(errors) => (
            None,
            Err(format!(
                "not asked: {} ({}); pass --settings '{{\"key\": \"value\", …}}' to see the hosts a configuration needs",
                if config.is_some() {
                    "the configuration given is incomplete"
                } else {
                    "the schema's defaults alone are not a complete configuration"
                },
                errors.join("; ")
            )),
        ),
        Ok(resolved) => {
            let json = Value::Object(resolved.clone()).to_string();
            let calls = instance.bindings.tributary_connector_plugin();
            let answer = tokio::time::timeout(
                Duration::from_secs(30),
                calls.call_allowed_hosts(&mut instance.store, &json),
            )
            .await;
            let hosts = match answer {
                Err(_) => Err("`allowed-hosts` did not return within 30 s".to_string()),
                Ok(Err(trap)) => Err(format!(
                    "`allowed-hosts` trapped: {}",
                    describe_trap(&instance.store, trap)
                )),
                Ok(Ok(Err(e))) => Err(format!(
                    "`allowed-hosts` refused the configuration: {}",
                    plugin_error(e)
                )),
                Ok(Ok(Ok(hosts))) => match Allowlist::parse(&hosts) {
                    Ok(_) => Ok(hosts),
                    Err(e) => Err(format!("`allowed-hosts` answered an invalid list: {e}")),
                },
            };
            (
                Some(crate::connector::schema::redact(
                    &manifest.config,
                    &resolved,
                )),
                hosts,
            )
        }
    };
    Ok(Inspection {
        source: source.to_string(),
        digest,
        size,
        version,
        imports,
        exports,
        manifest,
        config,
        hosts,
        timings: (compiled, instantiated),
    })
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

impl Inspection {
    /// Whether `allowed-hosts` answered.
    pub fn hosts_known(&self) -> bool {
        self.hosts.is_ok()
    }

    /// The report `tributary plugin check` prints.
    pub fn render(&self) -> String {
        let m = &self.manifest;
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!("{}: ok", self.source));
        line(format!(
            "  component   {} bytes, sha256 {}",
            self.size,
            &self.digest[..16.min(self.digest.len())]
        ));
        line(format!(
            "  world       {PACKAGE}@{} (host provides {PACKAGE}@{})",
            self.version,
            crate::WIT_VERSION
        ));
        line(format!(
            "  plugin      {} {} — {} ({})",
            m.name, m.version, m.display_name, m.description
        ));
        let mut features = Vec::new();
        for (flag, name) in [
            (
                crate::bindings::plugin::Features::INCREMENTAL_SYNC,
                "incremental-sync",
            ),
            (
                crate::bindings::plugin::Features::ACCESS_CONTROL_SYNC,
                "access-control-sync",
            ),
            (
                crate::bindings::plugin::Features::ADVANCED_RULES,
                "advanced-rules",
            ),
            (
                crate::bindings::plugin::Features::DOCUMENT_LEVEL_SECURITY,
                "document-level-security",
            ),
        ] {
            if m.features.contains(flag) {
                features.push(name);
            }
        }
        line(format!(
            "  features    full-sync{}",
            features
                .iter()
                .map(|f| format!(", {f}"))
                .collect::<String>()
        ));
        line("  config schema".into());
        for f in &m.config {
            let mut notes = Vec::new();
            if f.required {
                notes.push("required".to_string());
            }
            if f.sensitive {
                notes.push("sensitive".into());
            }
            if f.hidden {
                notes.push("hidden".into());
            }
            if let Some(d) = &f.default_value {
                notes.push(format!("default {d}"));
            }
            match (f.min, f.max) {
                (Some(a), Some(b)) => notes.push(format!("{a}..={b}")),
                (Some(a), None) => notes.push(format!(">= {a}")),
                (None, Some(b)) => notes.push(format!("<= {b}")),
                (None, None) => {}
            }
            if !f.options.is_empty() {
                let o: Vec<&str> = f.options.iter().map(|o| o.value.as_str()).collect();
                notes.push(format!("one of {}", o.join("|")));
            }
            for d in &f.depends_on {
                notes.push(format!("when {} = {}", d.field, d.value));
            }
            line(format!(
                "    {:<28} {:<9} {}{}",
                f.key,
                kind(f.kind),
                f.label,
                if notes.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", notes.join(", "))
                }
            ));
        }
        line("  imports".into());
        for i in &self.imports {
            line(format!("    {:<44} {}", i.name, i.note));
        }
        line(format!("  exports     {}", list(&self.exports)));
        match &self.hosts {
            Ok(hosts) => line(format!(
                "  hosts       {} (allowed-hosts with {})",
                if hosts.is_empty() {
                    "none".to_string()
                } else {
                    hosts.join(", ")
                },
                self.config
                    .as_ref()
                    .map(|c| Value::Object(c.clone()).to_string())
                    .unwrap_or_default()
            )),
            Err(why) => line(format!("  hosts       {why}")),
        }
        line(format!(
            "  timings     compile {} ms (cached after the first time), instantiate {} ms",
            self.timings.0.as_millis(),
            self.timings.1.as_millis()
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn versions_compare_like_the_linker() {
        assert!(compatible("0.1.0", "0.1.7"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(compatible("1.2.0", "1.0.0"));
        assert!(!compatible("2.0.0", "1.0.0"));
    }

    #[test]
    fn imports_are_classified_by_name_and_version() {
        assert!(classify("tributary:connector/http@0.1.0").offered);
        assert!(classify("wasi:io/poll@0.2.9").offered);
        let old = classify("tributary:connector/http@0.2.0");
        assert!(!old.offered && old.note.contains("@0.2.0") && old.note.contains("@0.1.0"));
        assert!(!classify("wasi:http/types@0.2.3").offered);
        assert!(!classify("tributary:connector/secrets@0.1.0").offered);
        assert!(!classify("wasi:io/poll@0.3.0").offered);
    }

    #[test]
    fn refusals_name_both_versions_or_the_import() {
        let imports = |names: &[&str]| names.iter().map(|n| classify(n)).collect::<Vec<_>>();
        let exports = vec!["tributary:connector/plugin@0.2.0".to_string()];
        let err = check_interfaces(
            "x.wasm",
            &imports(&["tributary:connector/log@0.2.0"]),
            &exports,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("built for tributary:connector@0.2.0"), "{err}");
        assert!(err.contains("provides tributary:connector@0.1.0"), "{err}");

        let exports = vec!["tributary:connector/plugin@0.1.0".to_string()];
        let err = check_interfaces(
            "x.wasm",
            &imports(&["tributary:connector/log@0.1.0", "wasi:http/types@0.2.3"]),
            &exports,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`wasi:http/types@0.2.3`"), "{err}");
        assert!(check_interfaces("x.wasm", &imports(&["wasi:io/poll@0.2.0"]), &exports).is_ok());
        let err = check_interfaces("x.wasm", &[], &["run".to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a tributary plugin"), "{err}");
    }
}
