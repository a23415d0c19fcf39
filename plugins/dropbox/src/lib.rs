//! Dropbox connector (work in progress).

use tributary_sdk::{Error, Features, Manifest, Plugin, Result, RuleError, SyncRequest};

struct Connector;

impl Plugin for Connector {
    fn manifest() -> Manifest {
        Manifest {
            name: "dropbox".into(),
            display_name: "Dropbox".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Dropbox connector (not implemented yet)".into(),
            config: Vec::new(),
            features: Features::empty(),
        }
    }
    fn allowed_hosts(_config: String) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    fn validate_config(_config: String) -> Result<()> {
        Err(Error::Other("not implemented yet".into()))
    }
    fn ping(_config: String) -> Result<()> {
        Err(Error::Other("not implemented yet".into()))
    }
    fn full_sync(_request: SyncRequest) -> Result<()> {
        Err(Error::Other("not implemented yet".into()))
    }
    fn incremental_sync(_request: SyncRequest) -> Result<()> {
        Err(Error::Other("not implemented yet".into()))
    }
    fn access_control_sync(_request: SyncRequest) -> Result<()> {
        Err(Error::Other("not implemented yet".into()))
    }
    fn validate_advanced_rules(_config: String, _rules: String) -> Result<(), Vec<RuleError>> {
        Err(vec![])
    }
}

tributary_sdk::export_connector!(Connector);
