//! The station catalogue held in memory: every station, an index by id, and the lower-cased
//! text that list searches look in; and the changes to it (add, import, remove), which go to
//! the store first.
//!
//! Requests never wait on the database for it. Once loaded, the catalogue is served as held;
//! when it is older than [`CHECK_EVERY`], one background task asks the store whether the list
//! changed (a cheap version number) and reloads it if so, while requests go on with the copy
//! they have. Only the very first load (nothing held yet) waits, and for at most
//! [`crate::store::READ_WAIT`]. This instance's own changes (add, remove, import) reload it at once;
//! changes made while a reload runs share the next one (a thousand chargers registering
//! themselves at once cost a few reloads, not a thousand).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::model::{Station, StationId};
use crate::store::{READ_WAIT, Store, StoreError, UpsertCounts};

/// How often the held catalogue is checked against the store.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// One version of the station list.
#[derive(Debug)]
pub struct Catalog {
    /// The store's catalogue version it was read at.
    version: u64,
    /// Every station, ordered by id.
    pub stations: Arc<[Arc<Station>]>,
    by_id: HashMap<StationId, usize>,
    /// Id, name and address of each station, lower-cased, made by the first search.
    search: OnceLock<Vec<[Box<str>; 3]>>,
}

impl Catalog {
    fn new(version: u64, stations: Vec<Station>) -> Self {
        let stations: Arc<[Arc<Station>]> = stations.into_iter().map(Arc::new).collect();
        let by_id = stations
            .iter()
            .enumerate()
            .map(|(index, station)| (station.id.clone(), index))
            .collect();
        Self {
            version,
            stations,
            by_id,
            search: OnceLock::new(),
        }
    }

    /// The station with this id.
    pub fn get(&self, id: &StationId) -> Option<&Arc<Station>> {
        self.by_id.get(id).map(|&index| &self.stations[index])
    }

    /// Whether the station at `index` has `needle` (lower case, not empty) in its id, name or
    /// address.
    pub fn matches(&self, index: usize, needle: &str) -> bool {
        let fields = self.search.get_or_init(|| {
            self.stations
                .iter()
                .map(|station| {
                    [
                        station.id.as_str().to_lowercase().into(),
                        station.name.to_lowercase().into(),
                        station
                            .address
                            .as_deref()
                            .unwrap_or_default()
                            .to_lowercase()
                            .into(),
                    ]
                })
                .collect()
        });
        fields[index].iter().any(|field| field.contains(needle))
    }
}

/// The held catalogue and what keeps it current.
pub struct CatalogCell {
    store: Arc<dyn Store>,
    held: RwLock<Option<Held>>,
    /// Whether a background check is running.
    checking: AtomicBool,
    /// Changes made here so far.
    changes: AtomicU64,
    /// Held while a reload after changes runs: how many changes the last one included.
    reloaded: tokio::sync::Mutex<u64>,
}

struct Held {
    catalog: Arc<Catalog>,
    checked: Instant,
}

impl std::fmt::Debug for CatalogCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.read().as_ref().map(|h| h.catalog.stations.len());
        f.debug_struct("CatalogCell")
            .field("stations", &held)
            .finish()
    }
}

impl CatalogCell {
    /// A catalogue of `store`'s stations, read at its first use.
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            store,
            held: RwLock::new(None),
            checking: AtomicBool::new(false),
            changes: AtomicU64::new(0),
            reloaded: tokio::sync::Mutex::new(0),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<Held>> {
        self.held.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The catalogue: the held one (checked in the background when due), else loaded now
    /// within [`READ_WAIT`].
    pub async fn get(self: &Arc<Self>) -> Result<Arc<Catalog>, StoreError> {
        let wait = READ_WAIT;
        let held = self.read().as_ref().map(|held| {
            (
                Arc::clone(&held.catalog),
                held.checked.elapsed() >= CHECK_EVERY,
            )
        });
        match held {
            Some((catalog, due)) => {
                if due && !self.checking.swap(true, Ordering::AcqRel) {
                    let cell = Arc::clone(self);
                    tokio::spawn(async move {
                        if let Err(error) = cell.check().await {
                            tracing::debug!(%error, "cannot check the station list; serving the one held");
                        }
                        cell.checking.store(false, Ordering::Release);
                    });
                }
                Ok(catalog)
            }
            None => {
                crate::store::within(wait, "reading the station list", &*self.store, self.check())
                    .await
            }
        }
    }

    /// Asks the store whether the list changed and reloads it if so.
    pub async fn check(&self) -> Result<Arc<Catalog>, StoreError> {
        let version = self.store.catalog_version().await?;
        let current = self
            .read()
            .as_ref()
            .map(|held| Arc::clone(&held.catalog))
            .filter(|catalog| catalog.version == version);
        let catalog = match current {
            Some(catalog) => catalog,
            None => Arc::new(Catalog::new(version, self.store.list_stations().await?)),
        };
        *self.held.write().unwrap_or_else(|p| p.into_inner()) = Some(Held {
            catalog: Arc::clone(&catalog),
            checked: Instant::now(),
        });
        Ok(catalog)
    }

    /// Adds a station; fails with [`StoreError::Conflict`] if its id exists.
    pub async fn add(&self, station: &Station) -> Result<(), StoreError> {
        self.store.add_station(station).await?;
        self.changed().await;
        Ok(())
    }

    /// Adds or overwrites many stations at once, all or nothing.
    pub async fn upsert(&self, stations: &[Station]) -> Result<UpsertCounts, StoreError> {
        let counts = self.store.upsert_stations(stations).await?;
        self.changed().await;
        Ok(counts)
    }

    /// Removes a station; `false` when there was none of this id.
    pub async fn remove(&self, id: &StationId) -> Result<bool, StoreError> {
        let removed = self.store.remove_station(id).await?;
        if removed {
            self.changed().await;
        }
        Ok(removed)
    }

    /// After a change made here (already in the store): reload now, or at least make the next
    /// read check. A reload that started after the change covers it.
    async fn changed(&self) {
        let change = self.changes.fetch_add(1, Ordering::AcqRel) + 1;
        let mut reloaded = self.reloaded.lock().await;
        if *reloaded >= change {
            return;
        }
        let covered = self.changes.load(Ordering::Acquire);
        let result = self.check().await;
        if result.is_ok() {
            *reloaded = covered;
        }
        drop(reloaded);
        if let Err(error) = result {
            tracing::warn!(%error, "cannot reload the station list after a change; it is checked again on the next read");
            if let Some(held) = self
                .held
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
            {
                held.checked = Instant::now() - CHECK_EVERY;
            }
        }
    }
}
