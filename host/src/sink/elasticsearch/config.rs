//! `[elasticsearch]` settings: the cluster, credentials, bulk sizes, retries, index naming.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use serde::Deserialize;

use super::*;

/// `[elasticsearch]` in `tributary.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Cluster URL, e.g. `https://es.example.com:9200`.
    pub host: String,
    /// An encoded API key (base64 of `id:secret`, as Kibana shows it).
    pub api_key: Option<String>,
    /// Basic authentication user (with `password`).
    pub username: Option<String>,
    /// Basic authentication password.
    pub password: Option<String>,
    /// PEM file with the CA certificate(s) the cluster's certificate is signed by.
    pub ca_file: Option<PathBuf>,
    /// Verify the server certificate (leave on outside experiments).
    pub verify_certs: bool,
    /// Most operations per bulk request.
    pub bulk_max_docs: usize,
    /// Most bytes per bulk request.
    pub bulk_max_bytes: usize,
    /// Most bulk requests in flight at once.
    pub bulk_concurrency: usize,
    /// Retries of a rejected bulk request or item.
    pub retries: u32,
    /// First retry delay in milliseconds (doubles per retry, at most 60 s).
    pub retry_backoff_ms: u64,
    /// Time limit of one request, in seconds.
    pub request_timeout_secs: u64,
    /// The Elasticsearch index a tenant's index is written to: `{tenant}` and `{index}` are
    /// replaced by their names (default [`DEFAULT_INDEX_PATTERN`]). See [`IndexPattern`].
    pub index_pattern: String,
    /// Allows an `index_pattern` without `{tenant}`: one tenant per cluster (or per pattern),
    /// e.g. `index_pattern = "{index}"` to keep writing the indexes Elastic's service wrote.
    pub single_tenant: bool,
}

impl Default for ElasticsearchConfig {
    fn default() -> Self {
        Self {
            host: "http://localhost:9200".into(),
            api_key: None,
            username: None,
            password: None,
            ca_file: None,
            verify_certs: true,
            bulk_max_docs: 500,
            bulk_max_bytes: 3 * 1024 * 1024,
            bulk_concurrency: 5,
            retries: 5,
            retry_backoff_ms: 1000,
            request_timeout_secs: 240,
            index_pattern: DEFAULT_INDEX_PATTERN.into(),
            single_tenant: false,
        }
    }
}

impl ElasticsearchConfig {
    /// A client for this cluster, with its authentication and TLS settings.
    pub fn client(&self) -> anyhow::Result<Elasticsearch> {
        let url = url::Url::parse(&self.host)
            .with_context(|| format!("elasticsearch host `{}` is not a URL", self.host))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!(
                "elasticsearch host `{}` must be http:// or https://",
                self.host
            );
        }
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(Duration::from_secs(self.request_timeout_secs.max(1)));
        match (&self.api_key, &self.username, &self.password) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                bail!("elasticsearch: give either `api_key` or `username`/`password`, not both")
            }
            (Some(key), None, None) => {
                builder = builder.auth(Credentials::EncodedApiKey(key.clone()));
            }
            (None, Some(user), Some(password)) => {
                builder = builder.auth(Credentials::Basic(user.clone(), password.clone()));
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                bail!("elasticsearch: `username` and `password` go together")
            }
            (None, None, None) => {}
        }
        if !self.verify_certs {
            builder = builder.cert_validation(CertificateValidation::None);
        } else if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the CA file {}", path.display()))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| anyhow!("the CA file {} is not PEM: {e}", path.display()))?;
            builder = builder.cert_validation(CertificateValidation::Full(cert));
        }
        let transport = builder
            .build()
            .map_err(|e| anyhow!("building the Elasticsearch client: {e}"))?;
        Ok(Elasticsearch::new(transport))
    }
}
