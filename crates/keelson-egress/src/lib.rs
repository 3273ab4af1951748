//! The egress policy: where Keelson's own server-side requests may go.
//!
//! A URL or host that reaches Keelson through its API (a dataset source, a notification channel,
//! an external runtime, a rollout webhook, a catalog URL) is a request an attacker can aim. Every
//! such request goes through an [`EgressPolicy`]: loopback, private, link-local (cloud metadata)
//! and the other special ranges are refused unless the operator lists them, and the check runs on
//! the addresses a name resolves to, on the address actually connected to, and again on every
//! redirect. Requests get connect and total timeouts and answers a size limit, and errors name the
//! refusal or the failure's kind, never the remote body.
//!
//! Destinations the operator writes in the server's configuration are trusted: they use
//! [`EgressPolicy::trusted_client`], which keeps the limits but not the address check.

mod address;
mod http;
mod policy;

pub use address::special_range;
pub use http::{read_limited, EgressClient};
pub use policy::{EgressError, EgressPolicy};
