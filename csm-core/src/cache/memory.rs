//! The in-process cache (moka): the embedded default, and the right choice for one instance.
//! States are kept in the compact cache encoding (a few hundred bytes a station instead of a
//! few kilobytes of structs), so a large fleet costs little memory; reading one back is about a
//! microsecond.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{CacheError, StatusCache, decode, encode};
use crate::model::{StationId, StationState};

/// A cache in this process's memory.
#[derive(Clone)]
pub struct MemoryCache {
    entries: moka::future::Cache<StationId, Arc<[u8]>>,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl MemoryCache {
    /// A cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: moka::future::Cache::builder().time_to_live(ttl).build(),
        }
    }

    async fn read(&self, id: &StationId) -> Option<Arc<StationState>> {
        let bytes = self.entries.get(id).await?;
        decode(&bytes).map(Arc::new)
    }
}

#[async_trait]
impl StatusCache for MemoryCache {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn target(&self) -> String {
        "in-process".into()
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    async fn get(&self, id: &StationId) -> Result<Option<Arc<StationState>>, CacheError> {
        Ok(self.read(id).await)
    }

    async fn get_many(
        &self,
        ids: &[StationId],
    ) -> Result<Vec<Option<Arc<StationState>>>, CacheError> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.push(self.read(id).await);
        }
        Ok(found)
    }

    async fn put_many(&self, states: &[Arc<StationState>]) -> Result<(), CacheError> {
        for state in states {
            self.entries
                .insert(state.station_id.clone(), Arc::from(encode(state)))
                .await;
        }
        Ok(())
    }

    async fn remove(&self, id: &StationId) -> Result<(), CacheError> {
        self.entries.invalidate(id).await;
        Ok(())
    }
}
