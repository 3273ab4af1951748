//! An HTTP client that obeys the policy: names resolve through the policy's checked resolver,
//! address URLs and every redirect are checked, and no proxy from the environment is used (a
//! proxy would connect on our behalf to whatever we ask).

use crate::policy::{EgressError, EgressPolicy};
use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::error::Error as StdError;
use std::sync::Arc;
use url::Url;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// A reqwest client bound to a policy. Build requests through [`EgressClient::request`] so the
/// URL is checked before anything is sent.
#[derive(Debug, Clone)]
pub struct EgressClient {
    client: reqwest::Client,
    policy: EgressPolicy,
    checked: bool,
}

struct CheckingResolver {
    policy: EgressPolicy,
}

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses =
                policy.resolve(&host, 0).await.map_err(|e| Box::new(e) as Box<dyn StdError + Send + Sync>)?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// How long a client may spend on one request.
enum Bound {
    /// The whole request, answer included.
    Total,
    /// Each wait for the next bytes (downloads may take long, but may not stall).
    BetweenReads,
}

impl EgressPolicy {
    /// A client for destinations that came through the API: every address is checked.
    pub fn client(&self) -> Result<EgressClient, EgressError> {
        self.build(true, Bound::Total)
    }

    /// [`EgressPolicy::client`] for long downloads: no bound on the whole transfer, but the
    /// request timeout bounds each wait for the next bytes, so a stalled source frees its worker.
    pub fn download_client(&self) -> Result<EgressClient, EgressError> {
        self.build(true, Bound::BetweenReads)
    }

    /// A client for destinations the operator configured (trusted): the same timeouts and
    /// limits, no address check.
    pub fn trusted_client(&self) -> Result<EgressClient, EgressError> {
        self.build(false, Bound::Total)
    }

    fn build(&self, checked: bool, bound: Bound) -> Result<EgressClient, EgressError> {
        let builder = if checked {
            reqwest::Client::builder()
                .no_proxy()
                .dns_resolver(Arc::new(CheckingResolver { policy: self.clone() }))
                .redirect(checked_redirects(self.clone()))
        } else {
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        };
        let builder = builder.connect_timeout(self.connect_timeout());
        let builder = match bound {
            Bound::Total => builder.timeout(self.request_timeout()),
            Bound::BetweenReads => builder.read_timeout(self.request_timeout()),
        };
        let client =
            builder.build().map_err(|e| EgressError::Failed(format!("could not build the HTTP client: {e}")))?;
        Ok(EgressClient { client, policy: self.clone(), checked })
    }
}

/// Follows at most [`MAX_REDIRECTS`] redirects, each to a URL the policy allows (names are
/// checked again when the resolver runs for the new host).
fn checked_redirects(policy: EgressPolicy) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(EgressError::Failed(format!("more than {MAX_REDIRECTS} redirects")));
        }
        match policy.check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    })
}

impl EgressClient {
    /// A request to `url`, refused here when the URL's scheme or address is not allowed.
    pub fn request(&self, method: reqwest::Method, url: &Url) -> Result<reqwest::RequestBuilder, EgressError> {
        if self.checked {
            self.policy.check_url(url)?;
        }
        Ok(self.client.request(method, url.clone()))
    }

    pub fn get(&self, url: &Url) -> Result<reqwest::RequestBuilder, EgressError> {
        self.request(reqwest::Method::GET, url)
    }

    pub fn post(&self, url: &Url) -> Result<reqwest::RequestBuilder, EgressError> {
        self.request(reqwest::Method::POST, url)
    }

    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// What went wrong with a request, safe to show and log: the policy's refusal when that was
    /// the cause, else the kind of failure. Never the URL (its path or query can be a credential)
    /// nor anything the remote side sent.
    pub fn explain(error: &reqwest::Error) -> EgressError {
        let mut source: Option<&(dyn StdError + 'static)> = error.source();
        while let Some(cause) = source {
            if let Some(egress) = cause.downcast_ref::<EgressError>() {
                return egress.clone();
            }
            source = cause.source();
        }
        let kind = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "could not connect"
        } else if error.is_redirect() {
            "too many redirects"
        } else if error.is_body() || error.is_decode() {
            "the answer could not be read"
        } else {
            "the request failed"
        };
        EgressError::Failed(kind.to_string())
    }
}

/// Reads an answer's body, refusing it once it passes `limit` bytes (declared or streamed).
pub async fn read_limited(mut response: reqwest::Response, limit: u64) -> Result<Bytes, EgressError> {
    if response.content_length().is_some_and(|length| length > limit) {
        return Err(EgressError::TooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| EgressClient::explain(&e))? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(EgressError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
