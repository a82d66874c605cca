//! The one backoff csm waits by between attempts, whether of a vendor request (the refresh
//! engine) or of an alert's delivery: exponential from a base, doubling up to a cap, each wait
//! stretched by a random part of itself (backon's jitter, so the retries of many stations or
//! alerts spread out), and never shorter than what the other side asked for (`Retry-After`).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Waits that double from `base` up to `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait (before jitter).
    pub base: Duration,
    /// The longest wait (before jitter).
    pub max: Duration,
}

impl Backoff {
    /// The wait before retry number `retry` (0: the first retry): `base · 2^retry` capped at
    /// `max`, plus a random part of itself (so between it and twice it), and at least `asked`.
    pub fn delay(&self, retry: u32, asked: Option<Duration>) -> Duration {
        let waits = ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        let wait = waits
            .take(retry.saturating_add(1).min(64) as usize)
            .last()
            .unwrap_or(self.base);
        wait.max(asked.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_with_jitter_and_respect_what_was_asked() {
        let backoff = Backoff {
            base: Duration::from_millis(200),
            max: Duration::from_secs(5),
        };
        for retry in 0..12 {
            let step = (Duration::from_millis(200) * 2_u32.pow(retry)).min(Duration::from_secs(5));
            let wait = backoff.delay(retry, None);
            assert!(wait >= step && wait < step * 2, "retry {retry}: {wait:?}");
        }
        let asked = Duration::from_secs(30);
        assert!(backoff.delay(0, Some(asked)) >= asked);
        assert!(backoff.delay(u32::MAX, None) < Duration::from_secs(10));
    }
}
