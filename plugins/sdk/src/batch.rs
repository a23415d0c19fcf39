//! Concurrent requests that need credentials: [`send_all_authed`] is to
//! [`Client::send_all`] what [`Client::send_authed`] is to [`Client::send`].
//!
//! Sources that answer one call per item (file permissions, link metadata) are only fast when the
//! calls run side by side; an access token that expires in the middle of such a batch must not
//! fail the items that happened to run after the expiry.

use crate::Result;
use crate::http::{Auth, Client, Request, Response};

/// Sends `requests` concurrently (at most `concurrency` at once) with credentials from `auth`.
/// When any answer is 401, `auth` refreshes once and only the rejected requests are sent again.
/// Results are in request order; retries of 429/5xx/network errors follow the client's policy.
pub fn send_all_authed(
    client: &Client,
    auth: &mut dyn Auth,
    requests: &[Request],
    concurrency: u32,
) -> Vec<Result<Response>> {
    let mut authed = Vec::with_capacity(requests.len());
    for request in requests {
        let mut request = request.clone();
        if let Err(err) = auth.authorize(&mut request) {
            // No credentials at all: every request fails the same way.
            return requests.iter().map(|_| Err(err.clone())).collect();
        }
        authed.push(request);
    }
    let mut results = client.send_all(&authed, concurrency);
    let rejected: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Ok(response) if response.status == 401))
        .map(|(i, _)| i)
        .collect();
    let Some(&first) = rejected.first() else {
        return results;
    };
    let refreshed = match &results[first] {
        Ok(response) => auth.refresh(response),
        Err(_) => Ok(false),
    };
    match refreshed {
        Ok(true) => {}
        Ok(false) => return results,
        Err(err) => {
            for &i in &rejected {
                results[i] = Err(err.clone());
            }
            return results;
        }
    }
    let mut again = Vec::with_capacity(rejected.len());
    for &i in &rejected {
        let mut request = requests[i].clone();
        if let Err(err) = auth.authorize(&mut request) {
            for &j in &rejected {
                results[j] = Err(err.clone());
            }
            return results;
        }
        again.push(request);
    }
    for (i, result) in rejected
        .into_iter()
        .zip(client.send_all(&again, concurrency))
    {
        results[i] = result;
    }
    results
}
