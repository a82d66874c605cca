//! A connection kept between calls that come often (the batch writer's transactions, the
//! cluster's record of who reaches Redis, the alert worker's look at its outbox), instead of
//! one borrowed from the pool each time: the pool checks a connection with a round trip
//! before it lends it, and a statement is prepared once for each connection it runs on.
//!
//! A connection whose call failed is not kept: it goes back to the pool, which checks it before
//! lending it again, and the next call borrows a fresh one. With a small pool (fewer than
//! [`KEEP_AT_LEAST`] connections) nothing is kept, so the other callers are never starved.

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};
use tokio::sync::{Mutex, MutexGuard};

/// The smallest pool a connection is kept from: the writer's and the housekeeping's leave at
/// least two for everyone else.
const KEEP_AT_LEAST: u32 = 4;

/// One connection kept for one kind of call.
#[derive(Debug)]
pub(super) struct Kept<DB: Database> {
    held: Mutex<Option<PoolConnection<DB>>>,
}

impl<DB: Database> Default for Kept<DB> {
    fn default() -> Self {
        Self {
            held: Mutex::new(None),
        }
    }
}

/// The kept connection while one call has it.
pub(super) struct Held<'a, DB: Database> {
    slot: MutexGuard<'a, Option<PoolConnection<DB>>>,
    /// Whether the pool is large enough to keep the connection after the call.
    keep: bool,
    /// Whether the call succeeded (a call dropped halfway did not).
    succeeded: bool,
}

impl<DB: Database> Kept<DB> {
    /// The kept connection, once the call that has it is done with it.
    pub(super) async fn lock(&self, pool: &Pool<DB>) -> Held<'_, DB> {
        Held {
            slot: self.held.lock().await,
            keep: pool.options().get_max_connections() >= KEEP_AT_LEAST,
            succeeded: false,
        }
    }

    /// The kept connection, unless another call has it now.
    pub(super) fn try_lock(&self, pool: &Pool<DB>) -> Option<Held<'_, DB>> {
        Some(Held {
            slot: self.held.try_lock().ok()?,
            keep: pool.options().get_max_connections() >= KEEP_AT_LEAST,
            succeeded: false,
        })
    }
}

impl<DB: Database> Held<'_, DB> {
    /// The connection: the kept one, or one borrowed from `pool` now.
    pub(super) async fn connection(
        &mut self,
        pool: &Pool<DB>,
    ) -> Result<&mut PoolConnection<DB>, sqlx::Error> {
        let connection = match self.slot.take() {
            Some(connection) => connection,
            // Boxed: borrowing (and perhaps connecting) is a future of kilobytes, which every
            // caller's future would otherwise hold, and move, though it is rarely needed.
            None => Box::pin(pool.acquire()).await?,
        };
        Ok(self.slot.insert(connection))
    }

    /// Ends the call: the connection stays for the next one if the call `succeeded` (and the
    /// pool is large enough), else it goes back to the pool.
    pub(super) fn done(mut self, succeeded: bool) {
        self.succeeded = succeeded;
    }
}

impl<DB: Database> Drop for Held<'_, DB> {
    fn drop(&mut self) {
        if !(self.succeeded && self.keep) {
            self.slot.take();
        }
    }
}
