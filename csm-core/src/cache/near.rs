//! A near cache in front of a shared one: recently read or written states are kept in this
//! process for a moment (`CSM_CACHE_LOCAL_TTL_MS`, default one second), so hot reads do not
//! cross the network. Writes go to both; a state written by another instance is seen here at
//! most one local lifetime later.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{CacheError, MemoryCache, StatusCache};
use crate::model::{StationId, StationState};

/// The shared cache with a short-lived local copy in front of it.
#[derive(Debug)]
pub struct NearCache {
    local: MemoryCache,
    shared: Arc<dyn StatusCache>,
}

impl NearCache {
    /// Puts a local copy living `local_ttl` in front of `shared`.
    pub fn new(shared: Arc<dyn StatusCache>, local_ttl: Duration) -> Self {
        Self {
            local: MemoryCache::new(local_ttl),
            shared,
        }
    }
}

#[async_trait]
impl StatusCache for NearCache {
    fn kind(&self) -> &'static str {
        self.shared.kind()
    }

    fn target(&self) -> String {
        self.shared.target()
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.shared.ping().await
    }

    async fn get(&self, id: &StationId) -> Result<Option<Arc<StationState>>, CacheError> {
        if let Some(state) = self.local.get(id).await? {
            return Ok(Some(state));
        }
        let found = self.shared.get(id).await?;
        if let Some(state) = &found {
            self.local.put_many(std::slice::from_ref(state)).await?;
        }
        Ok(found)
    }

    async fn get_many(
        &self,
        ids: &[StationId],
    ) -> Result<Vec<Option<Arc<StationState>>>, CacheError> {
        let mut found = self.local.get_many(ids).await?;
        let missing: Vec<usize> = (0..ids.len()).filter(|&i| found[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(found);
        }
        let wanted: Vec<StationId> = missing.iter().map(|&i| ids[i].clone()).collect();
        let fetched = self.shared.get_many(&wanted).await?;
        let mut fresh = Vec::new();
        for (index, state) in missing.into_iter().zip(fetched) {
            if let Some(state) = &state {
                fresh.push(Arc::clone(state));
            }
            found[index] = state;
        }
        self.local.put_many(&fresh).await?;
        Ok(found)
    }

    async fn put_many(&self, states: &[Arc<StationState>]) -> Result<(), CacheError> {
        self.local.put_many(states).await?;
        self.shared.put_many(states).await
    }

    async fn remove(&self, id: &StationId) -> Result<(), CacheError> {
        self.local.remove(id).await?;
        self.shared.remove(id).await
    }
}
