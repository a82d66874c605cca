//! The diff base: the state a new snapshot of a station is compared with.
//!
//! It is the newer of two: the cache's state (shared by every instance) and the engine's own
//! copy of the last state it produced ([`DiffBase`]); when neither has the station, the store's.
//! The engine's copy matters while the cache is away or behind, and the store cannot stand in
//! for it then because the batch writer may still hold the latest rows.

use foldhash::{HashMap, HashMapExt};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::{Engine, lock};
use crate::model::{StationId, StationState};

/// What a job compares its snapshot with.
#[derive(Clone, Debug)]
pub enum Base {
    /// Nobody could say: the cache and the store both failed. Ports read now are kept, but no
    /// status change is recorded, since csm does not know from what they changed.
    Unknown,
    /// The station has no state yet: every port is seen for the first time.
    New,
    /// The station's previous state.
    Known(Arc<StationState>),
}

impl Base {
    /// The previous state, if there is one.
    pub fn state(&self) -> Option<&StationState> {
        match self {
            Base::Known(state) => Some(state),
            Base::Unknown | Base::New => None,
        }
    }
}

/// The engine's own copy of each station's last state, without its measurements and in the
/// cache's compact encoding (a couple of hundred bytes a station). Written by every job, read
/// when the cache has nothing newer; an entry lives until the station is removed.
#[derive(Default)]
pub(crate) struct DiffBase {
    states: Mutex<HashMap<StationId, Kept>>,
}

/// One station's copy.
struct Kept {
    checked_at: DateTime<Utc>,
    /// When the station's health row was last written (by this engine).
    health_at: Option<DateTime<Utc>>,
    encoded: Box<[u8]>,
}

impl DiffBase {
    /// The kept state of a station.
    pub(crate) fn get(&self, id: &StationId) -> Option<StationState> {
        lock(&self.states)
            .get(id)
            .and_then(|kept| crate::cache::decode(&kept.encoded))
    }

    /// The kept state of a station if it is newer than `than` (or `than` is `None`).
    fn newer(&self, id: &StationId, than: Option<DateTime<Utc>>) -> Option<StationState> {
        let states = lock(&self.states);
        let kept = states.get(id)?;
        // Decoded only when it is newer than what the caller has.
        if than.is_some_and(|than| than >= kept.checked_at) {
            return None;
        }
        crate::cache::decode(&kept.encoded)
    }

    /// When csm last checked a station, as this engine knows it.
    pub(crate) fn checked_at(&self, id: &StationId) -> Option<DateTime<Utc>> {
        lock(&self.states).get(id).map(|kept| kept.checked_at)
    }

    /// Whether the station's health row is due to be written again: this engine has not
    /// written it within `every` before `now`.
    pub(crate) fn health_due(
        &self,
        id: &StationId,
        now: DateTime<Utc>,
        every: chrono::TimeDelta,
    ) -> bool {
        lock(&self.states)
            .get(id)
            .and_then(|kept| kept.health_at)
            .is_none_or(|at| now - at >= every)
    }

    /// Keeps the state a job produced; `health_written`: its health row is being written.
    pub(crate) fn keep(&self, state: &StationState, health_written: bool) {
        let encoded = crate::cache::encode_without_measurements(state).into_boxed_slice();
        let mut states = lock(&self.states);
        let health_at = if health_written {
            Some(state.checked_at)
        } else {
            states
                .get(&state.station_id)
                .and_then(|kept| kept.health_at)
        };
        let kept = Kept {
            checked_at: state.checked_at,
            health_at,
            encoded,
        };
        states.insert(state.station_id.clone(), kept);
    }

    /// Forgets a removed station.
    pub(crate) fn forget(&self, id: &StationId) {
        lock(&self.states).remove(id);
    }
}

impl Engine {
    /// The diff base of one station.
    pub(super) async fn base(&self, id: &StationId) -> Base {
        let mut found = self.bases(std::slice::from_ref(id)).await;
        found.remove(id).unwrap_or(Base::Unknown)
    }

    /// The diff bases of many stations: one cache round trip, then one store query for those
    /// neither the cache nor the engine's copy has. A station the store could not be asked
    /// about is left out (each job asks again on its own).
    pub(super) async fn bases(&self, ids: &[StationId]) -> HashMap<StationId, Base> {
        let inner = &self.inner;
        let mut found: HashMap<StationId, Base> = HashMap::with_capacity(ids.len());
        let cached = match inner.cache.get_many(ids).await {
            Ok(states) => states,
            Err(error) => {
                tracing::debug!(%error, "cache read failed; using local and stored state");
                vec![None; ids.len()]
            }
        };
        for (id, cached) in ids.iter().zip(cached) {
            let kept = inner.base.newer(id, cached.as_ref().map(|c| c.checked_at));
            match (kept, cached) {
                (Some(kept), _) => found.insert(id.clone(), Base::Known(Arc::new(kept))),
                (None, Some(cached)) => found.insert(id.clone(), Base::Known(cached)),
                (None, None) => None,
            };
        }
        let missing: Vec<StationId> = ids
            .iter()
            .filter(|id| !found.contains_key(*id))
            .cloned()
            .collect();
        if missing.is_empty() {
            return found;
        }
        match inner.store.station_states(&missing).await {
            Ok(states) => {
                for state in states {
                    found.insert(state.station_id.clone(), Base::Known(Arc::new(state)));
                }
                for id in missing {
                    found.entry(id).or_insert(Base::New);
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read previous port states"),
        }
        found
    }
}
