//! Requests per second per principal (`auth.rate_limit_per_second`): one caller, or one stolen
//! token, cannot take the whole server. Anonymous callers (where allowed) are limited per address.

use crate::app::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::tls::PeerAddr;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use keelson_core::auth::Principal;
use std::num::NonZeroU32;

/// A GCRA limiter keyed by principal (`governor`: lock-free, no timer task).
pub struct PrincipalLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl PrincipalLimiter {
    /// `per_second` requests a second with bursts of twice that; `None` for no limit.
    pub fn new(per_second: u32) -> Option<PrincipalLimiter> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
        Some(PrincipalLimiter { limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)) })
    }

    /// `Err(seconds to wait)` when `key` is over its rate.
    pub fn check(&self, key: &String) -> Result<(), u64> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })?;
        // Keys of callers long gone are dropped now and then, so the map stays small.
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        Ok(())
    }
}

/// Middleware after the principal is known; health probes are never limited.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(limiter) = state.rate_limiter.as_ref() else { return next.run(request).await };
    if request.uri().path().starts_with("/health/") {
        return next.run(request).await;
    }
    let key = match request.extensions().get::<Principal>() {
        Some(Principal::User { name, .. }) => format!("user:{name}"),
        _ => {
            let address = request.extensions().get::<ConnectInfo<PeerAddr>>().map(|info| info.0 .0.ip().to_string());
            format!("anonymous:{}", address.unwrap_or_default())
        }
    };
    match limiter.check(&key) {
        Ok(()) => next.run(request).await,
        Err(seconds) => {
            let mut response = ApiError::new(
                ErrorCode::RequestLimitExceeded,
                format!("too many requests: this principal may make {} a second (auth.rate_limit_per_second); retry in {seconds} s", state.rate_limit_per_second),
            )
            .into_response();
            if let Ok(value) = axum::http::HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_principal_has_its_own_budget() {
        let limiter = PrincipalLimiter::new(5).unwrap();
        let (a, b) = ("user:a".to_string(), "user:b".to_string());
        let allowed = (0..50).filter(|_| limiter.check(&a).is_ok()).count();
        assert!((10..=11).contains(&allowed), "a burst of twice the rate: {allowed}");
        assert!(limiter.check(&a).unwrap_err() >= 1);
        assert!(limiter.check(&b).is_ok(), "another principal is not slowed");
        assert!(PrincipalLimiter::new(0).is_none());
    }
}
