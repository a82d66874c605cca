//! A circuit breaker per vendor: a vendor whose requests keep failing for a passing reason
//! (timeouts, refused connections, 5xx, 429) is not asked for a while, so the stations of one
//! dead or rate-limiting vendor do not hold every refresh slot and keep its answers' waits off
//! the rest of the fleet.
//!
//! - **Closed**: requests go; [`BreakerConfig::failures`] passing failures in a row, with no
//!   success between them, open the breaker.
//! - **Open**: requests fail at once with [`ChargerError::VendorPaused`] for a cool-down
//!   (doubled each time the breaker opens again, up to [`BreakerConfig::max_cool_down`];
//!   never shorter than a `Retry-After` the vendor asked for).
//! - **Probing**: after the cool-down one request goes; its success closes the breaker, its
//!   failure opens it again.
//!
//! Failures that say nothing of the vendor's health (a station it does not know, an answer
//! that does not fit the profile) neither open nor close it.

use foldhash::{HashMap, HashMapExt};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::charger::ChargerError;

/// When a vendor's breaker opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Passing failures in a row (across the vendor's stations) that open the breaker.
    pub failures: u32,
    /// The first cool-down.
    pub cool_down: Duration,
    /// The longest cool-down.
    pub max_cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 8,
            cool_down: Duration::from_secs(5),
            max_cool_down: Duration::from_secs(300),
        }
    }
}

/// How long a probe may take before another request may probe instead (a probe whose job
/// was cancelled reports nothing).
const PROBE_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Paused(Pause),
}

/// An open breaker: how it came to open, and when it may be tried.
#[derive(Debug)]
struct Pause {
    failures: u32,
    cool_down: Duration,
    last_error: String,
    until: Instant,
    /// When the probe under way was let through.
    probing_since: Option<Instant>,
}

impl Pause {
    fn error(&self, vendor: &str) -> ChargerError {
        ChargerError::VendorPaused {
            vendor: vendor.to_owned(),
            failures: self.failures,
            cool_down_secs: self.cool_down.as_secs().max(1),
            last_error: self.last_error.clone(),
        }
    }
}

/// Whether a request was let through as the probe of an open breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// The breaker is closed.
    Closed,
    /// The one request after a cool-down.
    Probe,
}

/// The breakers of every vendor.
#[derive(Debug, Default)]
pub(crate) struct Breakers {
    config: BreakerConfig,
    vendors: Mutex<HashMap<String, State>>,
}

impl Breakers {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            vendors: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a request to `vendor` may go now, or the error that stands for it.
    pub(crate) fn admit(&self, vendor: &str) -> Result<Admitted, ChargerError> {
        let mut vendors = super::lock(&self.vendors);
        let Some(State::Paused(pause)) = vendors.get_mut(vendor) else {
            return Ok(Admitted::Closed);
        };
        let now = Instant::now();
        let probe_due = match pause.probing_since {
            // A probe whose job was cancelled reports nothing: another one goes after a while.
            Some(since) => now.duration_since(since) >= PROBE_LIMIT,
            None => now >= pause.until,
        };
        if probe_due {
            pause.probing_since = Some(now);
            return Ok(Admitted::Probe);
        }
        metrics::counter!("csm_vendor_requests_paused_total", "vendor" => vendor.to_owned())
            .increment(1);
        Err(pause.error(vendor))
    }

    /// Records how an admitted request to `vendor` went.
    pub(crate) fn record<T>(
        &self,
        vendor: &str,
        admitted: Admitted,
        result: &Result<T, ChargerError>,
    ) {
        let mut vendors = super::lock(&self.vendors);
        let error = match result {
            Ok(_) => {
                if let Some(State::Paused(_)) = vendors.remove(vendor) {
                    tracing::info!(vendor, "the vendor answers again; asking it as usual");
                    metrics::gauge!("csm_vendor_paused", "vendor" => vendor.to_owned()).set(0.0);
                }
                return;
            }
            Err(error) if error.is_transient() => error,
            // Says nothing of the vendor's health; a probe's turn passes to the next request.
            Err(_) => {
                if let (Admitted::Probe, Some(State::Paused(pause))) =
                    (admitted, vendors.get_mut(vendor))
                {
                    pause.probing_since = None;
                }
                return;
            }
        };
        let state = vendors
            .entry(vendor.to_owned())
            .or_insert(State::Closed { failures: 0 });
        let (failures, cool_down) = match state {
            State::Closed { failures } => {
                *failures += 1;
                if *failures < self.config.failures {
                    return;
                }
                (*failures, self.config.cool_down)
            }
            State::Paused(pause) if admitted == Admitted::Probe => (
                pause.failures + 1,
                (pause.cool_down * 2).min(self.config.max_cool_down),
            ),
            // A request admitted before the breaker opened, ending late.
            State::Paused(pause) => {
                pause.failures += 1;
                return;
            }
        };
        let cool_down = cool_down.max(
            error
                .retry_after()
                .unwrap_or_default()
                .min(self.config.max_cool_down),
        );
        tracing::warn!(
            vendor,
            failures,
            ?cool_down,
            %error,
            "the vendor keeps failing; its stations are not asked until the cool-down passes"
        );
        metrics::gauge!("csm_vendor_paused", "vendor" => vendor.to_owned()).set(1.0);
        *state = State::Paused(Pause {
            failures,
            cool_down,
            last_error: error.to_string(),
            until: Instant::now() + cool_down,
            probing_since: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout() -> Result<(), ChargerError> {
        Err(ChargerError::Timeout {
            vendor: "v".into(),
            url: "http://v/ports".into(),
            after_ms: 5_000,
        })
    }

    fn breakers() -> Breakers {
        Breakers::new(BreakerConfig {
            failures: 3,
            cool_down: Duration::from_millis(50),
            max_cool_down: Duration::from_millis(150),
        })
    }

    #[test]
    fn failures_in_a_row_open_the_breaker_and_a_success_between_them_does_not() {
        let b = breakers();
        for _ in 0..2 {
            b.record("v", Admitted::Closed, &timeout());
        }
        b.record("v", Admitted::Closed, &Ok(()));
        for _ in 0..2 {
            b.record("v", Admitted::Closed, &timeout());
        }
        assert_eq!(b.admit("v"), Ok(Admitted::Closed));
        b.record("v", Admitted::Closed, &timeout());
        let paused = b.admit("v").unwrap_err();
        assert_eq!(
            paused.to_string(),
            "v: csm is not asking this vendor for 1 s: 3 requests in a row failed, the last with: v: http://v/ports did not answer within 5000 ms"
        );
        assert!(!paused.is_transient(), "a paused vendor is not retried");
        assert_eq!(b.admit("other"), Ok(Admitted::Closed));
    }

    #[test]
    fn after_the_cool_down_one_probe_goes_and_decides() {
        let b = breakers();
        for _ in 0..3 {
            b.record("v", Admitted::Closed, &timeout());
        }
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.admit("v"), Ok(Admitted::Probe));
        assert!(b.admit("v").is_err(), "one probe at a time");
        // The probe fails: open again for twice as long.
        b.record("v", Admitted::Probe, &timeout());
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.admit("v").is_err(), "the cool-down doubled");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(b.admit("v"), Ok(Admitted::Probe));
        b.record("v", Admitted::Probe, &Ok(()));
        assert_eq!(b.admit("v"), Ok(Admitted::Closed));
    }

    #[test]
    fn failures_that_say_nothing_of_the_vendor_leave_the_breaker_alone() {
        let b = breakers();
        let unknown: Result<(), ChargerError> = Err(ChargerError::UnknownStation {
            vendor: "v".into(),
            station: "S1".into(),
        });
        for _ in 0..10 {
            b.record("v", Admitted::Closed, &unknown);
        }
        assert_eq!(b.admit("v"), Ok(Admitted::Closed));
    }
}
