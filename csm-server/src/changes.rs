//! A count that grows with every change of the fleet: a kept answer made before the count
//! moved may show a port as it no longer is.
//!
//! It adds the changes the feed brought (the whole fleet's, a moment after another instance
//! made them) to this instance's own, counted as soon as the new state is in the cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use csm_core::Monitor;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// The fleet's change count.
#[derive(Debug)]
pub struct Changes {
    monitor: Arc<Monitor>,
    /// Changes the feed brought.
    seen: AtomicU64,
}

impl Changes {
    /// A count for the fleet of `monitor`; [`Changes::follow`] keeps it.
    pub fn new(monitor: Arc<Monitor>) -> Self {
        Self {
            monitor,
            seen: AtomicU64::new(0),
        }
    }

    /// The count now.
    pub fn now(&self) -> u64 {
        self.seen.load(Ordering::Acquire) + self.monitor.refresh().changes_made()
    }

    /// Counts the feed's changes until `cancel` fires.
    pub async fn follow(self: Arc<Self>, cancel: CancellationToken) {
        let mut changes = self.monitor.feed().subscribe();
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                change = changes.recv() => match change {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.seen.fetch_add(1, Ordering::AcqRel);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}
