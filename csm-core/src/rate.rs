//! A token bucket: the limit on manual refreshes and on each alert channel's messages. It runs
//! on tokio's clock, so tests with paused time drive it.

use std::time::Duration;

use tokio::time::Instant;

/// `capacity` tokens, refilled at `rate` per second.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    capacity: f64,
    rate: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(capacity: f64, rate: f64) -> Self {
        Self {
            capacity,
            rate,
            tokens: capacity,
            updated: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = now;
    }

    /// Whole tokens there are now.
    pub(crate) fn available(&mut self) -> u32 {
        self.refill();
        self.tokens.floor() as u32
    }

    /// Takes a token, or says how long until one is available.
    pub(crate) fn take(&mut self) -> Result<(), Duration> {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_bucket_refuses_when_empty_and_says_how_long_to_wait() {
        let mut bucket = TokenBucket::new(2.0, 1.0);
        assert!(bucket.take().is_ok());
        assert!(bucket.take().is_ok());
        let wait = bucket.take().unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(bucket.available(), 1);
    }
}
