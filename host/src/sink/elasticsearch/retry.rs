//! Waits between bulk attempts: the host's one retry policy ([`crate::net::RetryPolicy`]:
//! exponential backoff with jitter), starting at `retry_backoff_ms`.

use std::time::Duration;

use backon::BackoffBuilder;

use super::ElasticsearchConfig;
use crate::net::RetryPolicy;

/// The waits before each retry of one bulk request: at most `retries` of them.
pub(super) fn delays(config: &ElasticsearchConfig) -> impl Iterator<Item = Duration> {
    RetryPolicy::starting_at(Duration::from_millis(config.retry_backoff_ms))
        .backoff(config.retries as usize)
        .build()
}
