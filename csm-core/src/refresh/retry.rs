//! Retries of transient vendor failures: exponential backoff with jitter, `Retry-After`
//! honoured, permanent failures returned at once.

use std::time::Duration;

use tokio::sync::Semaphore;

use super::breaker::Breakers;
use crate::backoff::Backoff;
use crate::charger::{ChargerApi, ChargerError};
use crate::model::{Snapshot, Station};

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Backoff before the first retry; doubled each time.
    pub base_delay: Duration,
    /// Longest backoff.
    pub max_delay: Duration,
    /// Longest `Retry-After` csm waits for; a vendor asking for more is not retried.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Backoff before retry number `retry` (0-based): csm's one backoff ([`Backoff`]).
    pub fn backoff(&self, retry: u32) -> Duration {
        Backoff {
            base: self.base_delay,
            max: self.max_delay,
        }
        .delay(retry, None)
    }
}

/// The result of fetching with retries, and how many attempts it took.
#[derive(Debug)]
pub struct Fetched {
    /// The snapshot or the last error.
    pub result: Result<Snapshot, ChargerError>,
    /// Attempts made (1 = no retry).
    pub attempts: u32,
}

/// Fetches `station` from `api`, retrying transient failures as `policy` allows.
pub async fn fetch_with_retry(
    api: &dyn ChargerApi,
    station: &Station,
    policy: &RetryPolicy,
) -> Fetched {
    Attempts {
        policy,
        slots: None,
        breakers: None,
    }
    .fetch(api, station)
    .await
}

/// How the engine's attempts are made: each within one of the engine's slots (released while
/// it waits to retry, so a station backing off holds none) and through its vendor's breaker.
pub(crate) struct Attempts<'a> {
    pub(crate) policy: &'a RetryPolicy,
    pub(crate) slots: Option<&'a Semaphore>,
    pub(crate) breakers: Option<&'a Breakers>,
}

impl Attempts<'_> {
    /// Fetches `station` from `api`, retrying transient failures as the policy allows.
    pub(crate) async fn fetch(&self, api: &dyn ChargerApi, station: &Station) -> Fetched {
        let policy = self.policy;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self.attempt(api, station).await;
            let error = match result {
                Ok(snapshot) => {
                    return Fetched {
                        result: Ok(snapshot),
                        attempts,
                    };
                }
                Err(error) => error,
            };
            let retries_left = attempts <= policy.max_retries;
            let delay = match error.retry_after() {
                Some(wait) if wait > policy.max_retry_after => None,
                Some(wait) => Some(wait),
                None => Some(policy.backoff(attempts - 1)),
            };
            match delay {
                Some(delay) if error.is_transient() && retries_left => {
                    metrics::counter!("csm_vendor_retries_total", "vendor" => api.vendor().to_owned())
                        .increment(1);
                    tracing::debug!(station = %station.id, attempt = attempts, ?delay, %error, "retrying");
                    tokio::time::sleep(delay).await;
                }
                _ => {
                    return Fetched {
                        result: Err(error),
                        attempts,
                    };
                }
            }
        }
    }

    /// One request, within a slot and through the breaker.
    async fn attempt(
        &self,
        api: &dyn ChargerApi,
        station: &Station,
    ) -> Result<Snapshot, ChargerError> {
        let _slot = match self.slots {
            Some(slots) => slots.acquire().await.ok(),
            None => None,
        };
        let admitted = match self.breakers.map(|b| b.admit(api.vendor())).transpose() {
            Ok(admitted) => admitted,
            Err(paused) => return Err(paused),
        };
        let started = std::time::Instant::now();
        let result = api.fetch(station).await;
        metrics::histogram!("csm_vendor_request_duration_seconds", "vendor" => api.vendor().to_owned())
            .record(started.elapsed().as_secs_f64());
        if let (Some(breakers), Some(admitted)) = (self.breakers, admitted) {
            breakers.record(api.vendor(), admitted, &result);
        }
        result
    }
}
