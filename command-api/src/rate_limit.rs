//! Rate limits on authentication (`tower_governor`): a token bucket per client address, so
//! password guessing is slow and one client cannot starve the Argon2 threads.
//!
//! The key is the TCP peer address. Behind a reverse proxy all clients share the proxy's
//! bucket; keying on a forwarded address needs a trusted-proxy setting (not built yet).

use std::{sync::Arc, time::Duration};

use axum::{Router, response::IntoResponse as _};
use tower_governor::{GovernorError, GovernorLayer, governor::GovernorConfigBuilder};

use crate::{AppState, config::AuthConfig, error::ApiError};

/// Limits `router` (the `/v1/auth` routes); idle clients are forgotten every minute.
pub fn limit(router: Router<AppState>, config: &AuthConfig) -> Router<AppState> {
    let limits = Arc::new(
        GovernorConfigBuilder::default()
            .period(Duration::from_millis(config.rate_period_ms.max(1)))
            .burst_size(config.rate_burst.max(1))
            .finish()
            // Only a zero period or burst fails, and both are clamped to at least one.
            .unwrap_or_else(|| unreachable!("period and burst are positive")),
    );
    let limiter = limits.limiter().clone();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limiter.retain_recent();
                if Arc::strong_count(&limiter) == 1 {
                    break;
                }
            }
        });
    }
    router.layer(
        GovernorLayer::new(limits).error_handler(|error| match error {
            GovernorError::TooManyRequests { wait_time, .. } => {
                ApiError::TooManyRequests(wait_time.max(1)).into_response()
            }
            GovernorError::UnableToExtractKey | GovernorError::Other { .. } => {
                ApiError::Internal(anyhow::anyhow!("rate limiter: {error}")).into_response()
            }
        }),
    )
}
