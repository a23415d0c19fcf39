//! `[service]` of `tributary.toml`: what `tributary serve` reads for itself. The host keeps the
//! section raw ([`HostConfig::service`]); [`ServeConfig::from_host`] parses it, refusing
//! unknown keys by name.

use serde::{Deserialize, Serialize};

use super::TenantQuotas;
use crate::config::HostConfig;

/// `[service]` in `tributary.toml`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// The admin API token. Without one (here or in `TRIBUTARY_ADMIN_TOKEN`), the service makes
    /// one and writes it to `<data_dir>/admin-token` (mode 0600).
    #[serde(skip_serializing)]
    pub admin_token: Option<String>,
    /// Syncs running at once, over all tenants.
    pub max_concurrent_syncs: u32,
    /// How often the dispatcher and the scheduler look for work when nothing wakes them, ms.
    pub tick_ms: u64,
    /// How often the plugins directory is checked for new or changed `.wasm` files, seconds
    /// (0: never).
    pub plugin_watch_seconds: u64,
    /// Jobs a tenant may have waiting in the queue (running ones not counted); a trigger beyond
    /// it is refused with 429. Triggers of a connector and kind that is already queued merge
    /// into that job and do not count again.
    pub max_queued_per_tenant: u32,
    /// Largest plugin upload, MiB.
    pub max_upload_mib: u64,
    /// Quotas of tenants that set none of their own.
    pub tenant_defaults: TenantQuotas,
    /// At start, indexes of a tenant the database does not know (left by a tenant deleted
    /// while the host stopped, or a database restored from an older copy) are removed, each
    /// logged; without this the service refuses to start, naming them — a tenant created
    /// later with that id would otherwise see them.
    pub remove_orphan_indexes: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            admin_token: None,
            max_concurrent_syncs: 8,
            tick_ms: 1000,
            plugin_watch_seconds: 2,
            max_upload_mib: 64,
            max_queued_per_tenant: 100,
            remove_orphan_indexes: false,
            tenant_defaults: TenantQuotas {
                max_connectors: Some(100),
                max_concurrent_syncs: Some(2),
                ..TenantQuotas::default()
            },
        }
    }
}

impl ServeConfig {
    /// Parses the host configuration's `[service]` section (defaults for what it leaves out).
    pub fn from_host(config: &HostConfig) -> anyhow::Result<Self> {
        let serve: Self = toml::Value::Table(config.service.clone())
            .try_into()
            .map_err(|e| anyhow::anyhow!("[service]: {e}"))?;
        serve
            .tenant_defaults
            .check()
            .map_err(|e| anyhow::anyhow!("[service.tenant_defaults]: {e}"))?;
        Ok(serve)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_its_section_and_names_unknown_keys() {
        let config: HostConfig = toml::from_str(
            "[service]\ntick_ms = 50\n[service.tenant_defaults]\nmax_documents = 10\n",
        )
        .unwrap();
        let serve = ServeConfig::from_host(&config).unwrap();
        assert_eq!(serve.tick_ms, 50);
        assert_eq!(
            serve.max_concurrent_syncs,
            ServeConfig::default().max_concurrent_syncs
        );
        assert_eq!(serve.tenant_defaults.max_documents, Some(10));
        let empty = ServeConfig::from_host(&HostConfig::default()).unwrap();
        assert_eq!(empty.tick_ms, ServeConfig::default().tick_ms);

        let bad: HostConfig = toml::from_str("[service]\ntick_msec = 5\n").unwrap();
        let err = ServeConfig::from_host(&bad).unwrap_err().to_string();
        assert!(
            err.contains("[service]") && err.contains("tick_msec"),
            "{err}"
        );
        let zero: HostConfig = toml::from_str(
            "[service.tenant_defaults]
cpu_seconds = 0
",
        )
        .unwrap();
        let err = ServeConfig::from_host(&zero).unwrap_err().to_string();
        assert!(err.contains("`cpu_seconds` must be at least 1"), "{err}");
    }
}
