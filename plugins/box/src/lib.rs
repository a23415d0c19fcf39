//! Box connector: syncs a Box account — one user's files (free account, OAuth 2.0 with a
//! rotating refresh token) or every managed user's (enterprise, client credentials with
//! `As-User`) — into the index, with content extracted by the host, incremental syncs from the
//! event stream and document-level security from collaborations.
//!
//! - [`settings`]: the configuration schema and its parsing;
//! - [`api`]: Box's REST API and its JSON shapes;
//! - [`docs`]: one Box entry → one document;
//! - [`sync`]: the folder walker and full syncs;
//! - [`events`]: incremental syncs;
//! - [`tree`]: the durable map of indexed items (parents, versions) incremental syncs rely on;
//! - [`dls`]: permissions and access-control documents.

mod api;
mod dls;
mod docs;
mod events;
mod settings;
mod sync;
mod tree;

use settings::Settings;
use tributary_sdk::{Features, Manifest, Plugin, Result, RuleError, SyncRequest};

struct BoxConnector;

impl Plugin for BoxConnector {
    fn manifest() -> Manifest {
        Manifest {
            name: "box".into(),
            display_name: "Box".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Files and folders of a Box account (free or enterprise), with \
                          incremental syncs from Box's event stream and document-level security \
                          from collaborations"
                .into(),
            config: settings::schema(),
            features: Features::INCREMENTAL_SYNC
                | Features::ACCESS_CONTROL_SYNC
                | Features::DOCUMENT_LEVEL_SECURITY,
        }
    }

    fn allowed_hosts(config: String) -> Result<Vec<String>> {
        Ok(Settings::parse(&config)?.allowed_hosts)
    }

    fn validate_config(config: String) -> Result<()> {
        Settings::parse(&config).map(|_| ())
    }

    fn ping(config: String) -> Result<()> {
        let settings = Settings::parse(&config)?;
        api::Api::new(&settings).me().map(|_| ())
    }

    fn full_sync(request: SyncRequest) -> Result<()> {
        sync::full(Settings::parse(&request.config)?, true)
    }

    fn incremental_sync(request: SyncRequest) -> Result<()> {
        events::incremental(Settings::parse(&request.config)?)
    }

    fn access_control_sync(request: SyncRequest) -> Result<()> {
        dls::access_control_sync(&Settings::parse(&request.config)?)
    }

    fn validate_advanced_rules(_config: String, _rules: String) -> Result<(), Vec<RuleError>> {
        Err(vec![RuleError {
            rule: None,
            message: "the Box connector has no advanced rules (use basic sync rules)".into(),
        }])
    }
}

tributary_sdk::export_connector!(BoxConnector);
