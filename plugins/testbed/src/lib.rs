//! A plugin that misbehaves on purpose, for the host's sandbox tests.
//!
//! Its `mode` setting picks what `full-sync` does: spin forever (CPU limit), allocate without
//! bound (memory limit), fetch `target` (allowlist), read host files or environment (WASI
//! sandbox), write a storage value, emit `count` documents, or trap.

use tributary_sdk::config::Config;
use tributary_sdk::docs::Document;
use tributary_sdk::http::{Client, Request, RetryPolicy};
use tributary_sdk::outbox::Outbox;
use tributary_sdk::{
    ConfigField, Error, Features, FieldKind, Manifest, Plugin, Result, RuleError, SelectOption,
    SyncRequest, state,
};

struct Testbed;

const MODES: &[&str] = &[
    "emit",
    "spin",
    "alloc",
    "fetch",
    "read-file",
    "read-env",
    "storage",
    "trap",
    "extract",
    "fetch-text",
];

fn text_field(key: &str) -> ConfigField {
    tributary_sdk::schema::bare(key, key, FieldKind::Text)
}

impl Plugin for Testbed {
    fn manifest() -> Manifest {
        Manifest {
            name: "testbed".into(),
            display_name: "Testbed".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Misbehaves on purpose to test the sandbox".into(),
            config: vec![
                ConfigField {
                    kind: FieldKind::Select,
                    required: true,
                    options: MODES
                        .iter()
                        .map(|m| SelectOption {
                            value: m.to_string(),
                            label: m.to_string(),
                        })
                        .collect(),
                    ..text_field("mode")
                },
                text_field("target"),
                text_field("allowed_host"),
                text_field("file_name"),
                ConfigField {
                    kind: FieldKind::Integer,
                    default_value: Some("3".into()),
                    ..text_field("count")
                },
            ],
            features: Features::empty(),
        }
    }

    fn allowed_hosts(config: String) -> Result<Vec<String>> {
        let config = Config::parse(&config)?;
        Ok(config
            .opt_str("allowed_host")
            .map(str::to_string)
            .into_iter()
            .collect())
    }

    fn validate_config(_config: String) -> Result<()> {
        Ok(())
    }

    fn ping(_config: String) -> Result<()> {
        Ok(())
    }

    fn full_sync(request: SyncRequest) -> Result<()> {
        let config = Config::parse(&request.config)?;
        match config.str("mode")? {
            "emit" => {
                let mut out = Outbox::new(7);
                for i in 0..config.u64_or("count", 3) {
                    out.emit(
                        Document::new(format!("doc-{i}"))
                            .timestamp("2024-01-01T00:00:00Z")
                            .field("title", format!("testbed document {i}"))
                            .text(format!("body of testbed document number {i}")),
                    )?;
                }
                out.checkpoint(Vec::new())?;
                Ok(())
            }
            "spin" => {
                let mut x: u64 = 1;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1024 * 1024]);
                    std::hint::black_box(&hoard);
                }
            }
            "fetch" => {
                let client = Client::new(RetryPolicy::with_retries(0));
                let response = client.send(&Request::get(config.str("target")?))?;
                Err(Error::Other(format!(
                    "fetch unexpectedly got HTTP {}",
                    response.status
                )))
            }
            "read-file" => match std::fs::read_to_string(config.str("target")?) {
                Ok(text) => Err(Error::Other(format!(
                    "read a host file: {} bytes",
                    text.len()
                ))),
                Err(err) => Err(Error::Host(format!("file access denied: {err}"))),
            },
            "read-env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                if vars.is_empty() {
                    Err(Error::Host("no environment visible".into()))
                } else {
                    Err(Error::Other(format!("saw environment: {vars:?}")))
                }
            }
            "storage" => {
                state::set_json("token", &config.str("target")?)?;
                Ok(())
            }
            "trap" => std::process::abort(),
            "extract" | "fetch-text" => {
                let name = config.str("file_name")?;
                let target = config.str("target")?;
                let text = if config.str("mode")? == "extract" {
                    tributary_sdk::extract::extract_text(target.as_bytes(), name, None)
                } else {
                    tributary_sdk::extract::fetch_text(
                        &Request::get(target),
                        tributary_sdk::docs::Fetch::new(name, None, 1024 * 1024),
                    )
                };
                let doc = match text {
                    Ok(text) => Document::new("extracted").text(text),
                    Err(e) => Document::new("extracted").field("error", format!("{e:?}")),
                };
                let mut out = Outbox::new(1);
                out.emit(doc)?;
                out.checkpoint(Vec::new())?;
                Ok(())
            }
            other => Err(Error::Config(format!("unknown mode `{other}`"))),
        }
    }

    fn incremental_sync(request: SyncRequest) -> Result<()> {
        Self::full_sync(request)
    }

    fn access_control_sync(_request: SyncRequest) -> Result<()> {
        Ok(())
    }

    fn validate_advanced_rules(_config: String, _rules: String) -> Result<(), Vec<RuleError>> {
        Ok(())
    }
}

tributary_sdk::export_connector!(Testbed);
