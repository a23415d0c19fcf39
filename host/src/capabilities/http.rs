//! `http`: the guest adapter over the instance's [`Egress`].
//!
//! Every request goes through [`crate::net`]'s checks (allowlist per hop, address guard, size
//! and time limits); a refusal is a WIT error the plugin sees (`denied`) and a warning naming
//! the plugin and URL. `send-all`'s fan-out and batch size are guest-controlled, so clamped.

use futures::StreamExt;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::http::{self, HttpError, Request, Response};
use crate::limits::HostCalls;
use crate::net::Egress;

/// The `http` state of one plugin instance.
#[derive(Clone, Debug)]
pub struct HttpCtx {
    egress: Egress,
    label: String,
    /// Rate of capability calls (installed by the runtime).
    pub calls: HostCalls,
}

impl HttpCtx {
    /// A context sending through `egress`; `label` names the plugin in logs.
    pub fn new(egress: Egress, label: impl Into<String>) -> Self {
        Self {
            egress,
            label: label.into(),
            calls: HostCalls::default(),
        }
    }

    async fn send_logged(&self, request: &Request) -> Result<Response, HttpError> {
        let max = self.egress.engine().config().max_response_bytes;
        let result = self.egress.send(request, max).await;
        if let Err(HttpError::Denied(reason)) = &result {
            tracing::warn!(plugin = %self.label, url = %crate::text::truncate(&request.url, 300), "outbound request refused: {reason}");
        }
        result.map(|f| Response {
            status: f.status,
            headers: f.headers,
            body: f.body.to_vec(),
        })
    }
}

/// Links `http` into a linker whose store data exposes an [`HttpCtx`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut HttpCtx,
) -> wasmtime::Result<()> {
    http::add_to_linker::<T, HasSelf<HttpCtx>>(linker, get)
}

impl http::Host for HttpCtx {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, HttpError>> {
        self.calls.charge_or_trap()?;
        Ok(self.send_logged(&request).await)
    }

    async fn send_all(
        &mut self,
        requests: Vec<Request>,
        concurrency: u32,
    ) -> wasmtime::Result<Vec<Result<Response, HttpError>>> {
        self.calls.charge_or_trap()?;
        let config = self.egress.engine().config();
        let limit = concurrency.clamp(1, config.max_concurrency) as usize;
        let max_batch = config.max_batch;
        let this = &*self;
        let results = futures::stream::iter(requests.into_iter().enumerate())
            .map(|(i, request)| async move {
                if i >= max_batch {
                    Err(HttpError::Refused(format!(
                        "at most {max_batch} requests per send-all call"
                    )))
                } else {
                    this.send_logged(&request).await
                }
            })
            .buffered(limit)
            .collect()
            .await;
        Ok(results)
    }
}
