//! Dropbox connector: files and folders of a Dropbox account (optionally its team space), the
//! files shared with it, with text content extracted by the host, document-level security and
//! advanced rules — at least everything Elastic's Dropbox connector does.
//!
//! - [`settings`]: the configuration schema and its typed form.
//! - [`client`]: OAuth, the acting account, headers and Dropbox's error conventions.
//! - [`api`]: request and response shapes.
//! - [`docs`]: entries as documents (Elastic's field names) and their content plans.
//! - [`sync`]: full syncs, incremental syncs from the `list_folder` cursor, search mode.
//! - [`paths`]: the durable path → id map that makes deletions work.
//! - [`dls`]: access lists and access-control documents.
//! - [`rules`]: advanced rules.

mod api;
mod client;
mod dls;
mod docs;
mod paths;
mod rules;
mod settings;
mod sync;

use serde_json::{Value, json};
use tributary_sdk::{Error, Features, Manifest, Plugin, Result, RuleError, SyncRequest};

use crate::client::Session;
use crate::settings::Settings;

struct Dropbox;

/// The active advanced rules of a sync request, parsed (the host validated them already).
/// With document-level security on they are ignored, as in Elastic's connector (a search
/// result carries no access list, so DLS wins), and the job report names them.
fn advanced_rules(
    settings: &Settings,
    request: &SyncRequest,
) -> Result<Option<(Value, Vec<rules::Rule>)>> {
    let Some(raw) = &request.advanced_rules else {
        return Ok(None);
    };
    let value: Value = serde_json::from_str(raw)
        .map_err(|e| Error::Config(format!("advanced rules are not JSON: {e}")))?;
    if value.as_array().is_some_and(Vec::is_empty) {
        return Ok(None);
    }
    if settings.dls {
        tributary_sdk::warn!(
            "advanced rules ignored because document level security is on (DLS takes \
             precedence, as in Elastic's Dropbox connector): {}; the whole of `path` is synced",
            rules::describe(&value)
        );
        return Ok(None);
    }
    let parsed = rules::parse(&value).map_err(|errors| {
        let list: Vec<String> = errors.into_iter().map(|e| e.message).collect();
        Error::Config(format!("advanced rules: {}", list.join("; ")))
    })?;
    Ok(Some((value, parsed)))
}

impl Plugin for Dropbox {
    fn manifest() -> Manifest {
        Manifest {
            name: "dropbox".into(),
            display_name: "Dropbox".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Files and folders of a Dropbox account or team space, files shared \
                          with it, Paper docs; incremental syncs from Dropbox's change cursor, \
                          document level security and advanced (search) rules."
                .into(),
            config: settings::schema(),
            features: Features::INCREMENTAL_SYNC
                | Features::ACCESS_CONTROL_SYNC
                | Features::ADVANCED_RULES
                | Features::DOCUMENT_LEVEL_SECURITY,
        }
    }

    fn allowed_hosts(config: String) -> Result<Vec<String>> {
        Settings::parse(&config)?.hosts()
    }

    fn validate_config(config: String) -> Result<()> {
        let settings = Settings::parse(&config)?;
        if settings.path.is_empty() {
            return Ok(());
        }
        // Like Elastic: a configured path must exist (this also checks the credentials).
        let mut session = Session::connect(&settings)?;
        match session.rpc::<Value, _>("files/get_metadata", &json!({ "path": settings.path }))? {
            Ok(meta) if meta.get(".tag").and_then(Value::as_str) == Some("folder") => Ok(()),
            Ok(_) => Err(Error::Config(format!(
                "`path` (Path to fetch files/folders): {} is a file, not a folder",
                settings.path
            ))),
            Err(c) if c.is("path/not_found") => Err(Error::NotFound(format!(
                "`path` (Path to fetch files/folders): {} does not exist in Dropbox",
                settings.path
            ))),
            Err(c) => Err(c.into_error()),
        }
    }

    fn ping(config: String) -> Result<()> {
        let settings = Settings::parse(&config)?;
        let session = Session::connect(&settings)?;
        if settings.dls {
            dls::require_team(&session)?;
        }
        Ok(())
    }

    fn full_sync(request: SyncRequest) -> Result<()> {
        let settings = Settings::parse(&request.config)?;
        let rules = advanced_rules(&settings, &request)?;
        let job = sync::Job::start(settings, rules.as_ref().map(|(raw, _)| raw))?;
        job.full(rules.as_ref().map(|(_, r)| r.as_slice()))
    }

    fn incremental_sync(request: SyncRequest) -> Result<()> {
        let settings = Settings::parse(&request.config)?;
        let rules = advanced_rules(&settings, &request)?;
        let job = sync::Job::start(settings, rules.as_ref().map(|(raw, _)| raw))?;
        job.incremental(rules.as_ref().map(|(_, r)| r.as_slice()))
    }

    fn access_control_sync(request: SyncRequest) -> Result<()> {
        sync::access_control(Settings::parse(&request.config)?)
    }

    fn validate_advanced_rules(config: String, rules: String) -> Result<(), Vec<RuleError>> {
        let whole = |message: String| {
            vec![RuleError {
                rule: None,
                message,
            }]
        };
        let value: Value = serde_json::from_str(&rules)
            .map_err(|e| whole(format!("advanced rules are not JSON: {e}")))?;
        let parsed = rules::parse(&value)?;
        if parsed.iter().all(|r| r.path.is_none()) {
            return Ok(());
        }
        let settings = Settings::parse(&config).map_err(|e| whole(e.describe()))?;
        let mut session = Session::connect(&settings).map_err(|e| whole(e.describe()))?;
        let mut errors = Vec::new();
        let mut invalid = Vec::new();
        for (i, rule) in parsed.iter().enumerate() {
            let Some(path) = &rule.path else { continue };
            let answer = session
                .rpc::<Value, _>("files/get_metadata", &json!({ "path": path }))
                .map_err(|e| whole(e.describe()))?;
            let problem = match answer {
                Ok(meta) if meta.get(".tag").and_then(Value::as_str) == Some("folder") => None,
                Ok(_) => Some(format!("options.path `{path}` is a file, not a folder")),
                Err(c) if c.is("path/not_found") => {
                    invalid.push(path.clone());
                    Some(format!("options.path `{path}` does not exist in Dropbox"))
                }
                Err(c) => Some(format!("options.path `{path}`: {}", c.summary)),
            };
            if let Some(message) = problem {
                errors.push(RuleError {
                    rule: u32::try_from(i).ok(),
                    message,
                });
            }
        }
        if !invalid.is_empty() {
            // Elastic's wording, which users may already search their logs for.
            errors.push(RuleError {
                rule: None,
                message: format!("Invalid paths '{}'.", invalid.join(", ")),
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

tributary_sdk::export_connector!(Dropbox);
