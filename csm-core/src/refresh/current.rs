//! What csm knows of stations now, for readers (the API, the CLI, alert rules): the cache's
//! state; else, when its entry lapsed or the cache is away, the store's (within
//! [`READ_WAIT`]); else what this engine last produced (statuses only).
//!
//! A state read from the store carries the latest check this engine knows of (the store's trails
//! by up to [`EngineConfig::health_every`](super::EngineConfig::health_every)), and says when
//! its live state has lapsed: this engine checked the station, the cache answered, yet it no
//! longer holds it.

use std::collections::HashMap;
use std::sync::Arc;

use super::Engine;
use crate::model::{StationId, StationState};
use crate::store::{self, READ_WAIT};

/// A station's state as known now.
#[derive(Clone, Debug, Default)]
pub struct Current {
    /// Its state, if any refresh ever succeeded or failed.
    pub state: Option<Arc<StationState>>,
    /// Whether the state came from the store after its live state lapsed: out of date
    /// whatever its times say.
    pub lapsed: bool,
}

impl Engine {
    /// The current state of each station, in the order given.
    pub async fn current(&self, ids: &[StationId]) -> Vec<Current> {
        let inner = &self.inner;
        let (cached, cache_answered) = match inner.cache.get_many(ids).await {
            Ok(found) => (found, true),
            Err(error) => {
                metrics::counter!("csm_cache_requests_total", "result" => "error")
                    .increment(ids.len() as u64);
                tracing::debug!(%error, "cache read failed; reading the store");
                (vec![None; ids.len()], false)
            }
        };
        let hits = cached.iter().filter(|s| s.is_some()).count() as u64;
        metrics::counter!("csm_cache_requests_total", "result" => "hit").increment(hits);
        let mut current: Vec<Current> = cached
            .into_iter()
            .map(|state| Current {
                state,
                lapsed: false,
            })
            .collect();
        let missing: Vec<usize> = (0..ids.len())
            .filter(|&i| current[i].state.is_none())
            .collect();
        if missing.is_empty() {
            return current;
        }
        metrics::counter!("csm_cache_requests_total", "result" => "miss")
            .increment(missing.len() as u64);
        let wanted: Vec<StationId> = missing.iter().map(|&i| ids[i].clone()).collect();
        let read = inner.store.station_states(&wanted);
        match store::within(READ_WAIT, "reading port states", &*inner.store, read).await {
            Ok(stored) => {
                let mut stored: HashMap<StationId, StationState> = stored
                    .into_iter()
                    .map(|s| (s.station_id.clone(), s))
                    .collect();
                for &index in &missing {
                    let Some(mut state) = stored.remove(&ids[index]) else {
                        continue;
                    };
                    if let Some(checked) = inner.base.checked_at(&ids[index]) {
                        state.checked_at = state.checked_at.max(checked);
                        current[index].lapsed = cache_answered;
                    }
                    current[index].state = Some(Arc::new(state));
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read stored port states"),
        }
        // Neither the cache nor the store: what this engine last produced (statuses only).
        for index in missing {
            if current[index].state.is_none() {
                current[index].state = self.last_known(&ids[index]);
            }
        }
        current
    }
}
