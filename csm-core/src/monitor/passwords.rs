//! The charge points' password hashes (and security profiles) as the OCPP area checks them:
//! every hash read at once
//! and reused for [`PASSWORDS_FRESH`] (a car park connecting at once asks the database once,
//! not once per charger), this process's own changes applied at once, and the last hashes read
//! kept for while the database is away (chargers keep reconnecting through an outage).
//! Verifying a password is CPU work ([`crate::ocpp::password`]) and runs off the executor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::model::StationId;
use crate::ocpp::password;
use crate::store::{READ_WAIT, Store, StoreError};

/// How long the hashes read are reused before they are read again (this process's own
/// changes apply at once).
pub const PASSWORDS_FRESH: Duration = Duration::from_secs(60);

/// After a failed read, how long the last hashes are used before the database is asked again
/// (so a reconnect storm during an outage does not queue on it).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Where the hashes are kept.
#[async_trait]
pub trait HashStore: Send + Sync {
    /// Every charge point's hash.
    async fn hashes(&self) -> Result<Vec<(StationId, String)>, StoreError>;
    /// Stores (or, with `None`, removes) a charge point's hash.
    async fn set_hash(&self, id: &StationId, hash: Option<&str>) -> Result<(), StoreError>;
    /// Every charge point's security profile above 1.
    async fn profiles(&self) -> Result<Vec<(StationId, u8)>, StoreError>;
    /// Stores a charge point's security profile (1: none above the default).
    async fn set_profile(&self, id: &StationId, profile: u8) -> Result<(), StoreError>;
}

#[async_trait]
impl HashStore for Arc<dyn Store> {
    async fn hashes(&self) -> Result<Vec<(StationId, String)>, StoreError> {
        let doing = "reading charge points' passwords";
        crate::store::within(READ_WAIT, doing, &**self, self.charger_passwords()).await
    }

    async fn set_hash(&self, id: &StationId, hash: Option<&str>) -> Result<(), StoreError> {
        self.set_charger_password(id, hash).await
    }

    async fn profiles(&self) -> Result<Vec<(StationId, u8)>, StoreError> {
        let doing = "reading charge points' security profiles";
        crate::store::within(READ_WAIT, doing, &**self, self.charger_profiles()).await
    }

    async fn set_profile(&self, id: &StationId, profile: u8) -> Result<(), StoreError> {
        self.set_charger_profile(id, profile).await
    }
}

/// What a charge point must show to connect: its password hash, its security profile.
#[derive(Clone, Debug, Default)]
struct Credentials {
    hashes: HashMap<StationId, String>,
    profiles: HashMap<StationId, u8>,
}

/// The hashes held, and when they were read.
struct Held {
    credentials: Arc<Credentials>,
    read_at: Instant,
    /// When the last read failed (the hashes held are then the last ones read).
    failed_at: Option<Instant>,
}

/// The charge points' password hashes, read at once and kept.
pub struct PasswordCache {
    store: Arc<dyn HashStore>,
    held: Mutex<Option<Held>>,
    /// One read at a time; connections arriving meanwhile wait for it and share it.
    reading: tokio::sync::Mutex<()>,
    /// Verifications running at once: one a core, so that in a reconnect storm the rest of the
    /// server (connected chargers, the API) keeps its share of the CPU; the others queue in
    /// arrival order.
    verifying: tokio::sync::Semaphore,
}

impl std::fmt::Debug for PasswordCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.lock().as_ref().map(|h| h.credentials.hashes.len());
        f.debug_struct("PasswordCache")
            .field("hashes", &held)
            .finish()
    }
}

impl PasswordCache {
    /// Hashes kept in `store`, read at their first use.
    pub fn new(store: Arc<dyn HashStore>) -> Self {
        Self {
            store,
            held: Mutex::new(None),
            reading: tokio::sync::Mutex::new(()),
            verifying: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The hashes held, if they may be used without reading again.
    fn usable(&self) -> Option<Arc<Credentials>> {
        let held = self.lock();
        let held = held.as_ref()?;
        let fresh = match held.failed_at {
            Some(failed) => failed.elapsed() < RETRY_AFTER_FAILURE,
            None => held.read_at.elapsed() < PASSWORDS_FRESH,
        };
        fresh.then(|| Arc::clone(&held.credentials))
    }

    /// Every hash: the ones held while fresh, else read now; while the database is away, the
    /// last ones read. An error only when none was ever read.
    async fn hashes(&self) -> Result<Arc<Credentials>, StoreError> {
        if let Some(hashes) = self.usable() {
            return Ok(hashes);
        }
        let _reading = self.reading.lock().await;
        if let Some(hashes) = self.usable() {
            return Ok(hashes);
        }
        let read = match self.store.hashes().await {
            Ok(hashes) => self
                .store
                .profiles()
                .await
                .map(|profiles| (hashes, profiles)),
            Err(error) => Err(error),
        };
        match read {
            Ok((hashes, profiles)) => {
                let hashes = Arc::new(Credentials {
                    hashes: hashes.into_iter().collect(),
                    profiles: profiles.into_iter().collect(),
                });
                *self.lock() = Some(Held {
                    credentials: Arc::clone(&hashes),
                    read_at: Instant::now(),
                    failed_at: None,
                });
                Ok(hashes)
            }
            Err(error) => {
                let mut held = self.lock();
                match held.as_mut() {
                    Some(held) => {
                        tracing::debug!(%error, "cannot read charge points' passwords; using the last ones read");
                        held.failed_at = Some(Instant::now());
                        Ok(Arc::clone(&held.credentials))
                    }
                    None => {
                        tracing::warn!(%error, "cannot read charge points' passwords");
                        Err(error)
                    }
                }
            }
        }
    }

    /// Whether a charge point has a password.
    pub async fn has_password(&self, id: &StationId) -> Result<bool, StoreError> {
        Ok(self.hashes().await?.hashes.contains_key(id))
    }

    /// The security profile a charge point must connect with (1 unless set higher).
    pub async fn profile(&self, id: &StationId) -> Result<u8, StoreError> {
        Ok(self.hashes().await?.profiles.get(id).copied().unwrap_or(1))
    }

    /// Stores a charge point's security profile; this process uses it at once.
    pub async fn set_profile(&self, id: &StationId, profile: u8) -> Result<(), StoreError> {
        self.store.set_profile(id, profile).await?;
        if let Some(held) = self.lock().as_mut() {
            let mut patched = Credentials::clone(&held.credentials);
            match profile {
                2.. => patched.profiles.insert(id.clone(), profile),
                _ => patched.profiles.remove(id),
            };
            held.credentials = Arc::new(patched);
        }
        Ok(())
    }

    /// Whether `given` is the charge point's password (`false` when it has none), checked
    /// off the async executor.
    pub async fn verify(&self, id: &StationId, given: &str) -> Result<bool, StoreError> {
        let Some(stored) = self.hashes().await?.hashes.get(id).cloned() else {
            return Ok(false);
        };
        let given = given.to_owned();
        // The semaphore is never closed, so a permit always comes.
        let _turn = self.verifying.acquire().await;
        Ok(
            tokio::task::spawn_blocking(move || password::verify(&given, &stored))
                .await
                .unwrap_or(false),
        )
    }

    /// Stores a charge point's new hash (`None`: removes its password); this process uses it
    /// at once.
    pub async fn set(&self, id: &StationId, hash: Option<String>) -> Result<(), StoreError> {
        self.store.set_hash(id, hash.as_deref()).await?;
        self.patch(id, hash);
        Ok(())
    }

    /// Forgets a removed charge point's hash and profile.
    pub fn forget(&self, id: &StationId) {
        self.patch(id, None);
        if let Some(held) = self.lock().as_mut() {
            let mut patched = Credentials::clone(&held.credentials);
            patched.profiles.remove(id);
            held.credentials = Arc::new(patched);
        }
    }

    fn patch(&self, id: &StationId, hash: Option<String>) {
        if let Some(held) = self.lock().as_mut() {
            let mut patched = Credentials::clone(&held.credentials);
            match hash {
                Some(hash) => patched.hashes.insert(id.clone(), hash),
                None => patched.hashes.remove(id),
            };
            held.credentials = Arc::new(patched);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// Hashes in memory; `away` makes every read fail as a database outage would.
    #[derive(Default)]
    struct Fake {
        hashes: Mutex<Vec<(StationId, String)>>,
        away: AtomicBool,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl HashStore for Fake {
        async fn hashes(&self) -> Result<Vec<(StationId, String)>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.away.load(Ordering::SeqCst) {
                return Err(StoreError::Config("the database is away".into()));
            }
            Ok(self.hashes.lock().unwrap().clone())
        }

        async fn set_hash(&self, id: &StationId, hash: Option<&str>) -> Result<(), StoreError> {
            let mut hashes = self.hashes.lock().unwrap();
            hashes.retain(|(i, _)| i != id);
            if let Some(hash) = hash {
                hashes.push((id.clone(), hash.to_owned()));
            }
            Ok(())
        }

        async fn profiles(&self) -> Result<Vec<(StationId, u8)>, StoreError> {
            Ok(Vec::new())
        }

        async fn set_profile(&self, _: &StationId, _: u8) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn id(text: &str) -> StationId {
        StationId::parse(text).unwrap()
    }

    #[tokio::test]
    async fn passwords_verify_from_one_read_and_own_changes_apply_at_once() {
        let fake = Arc::new(Fake::default());
        let cache = PasswordCache::new(Arc::clone(&fake) as Arc<dyn HashStore>);
        let cp = id("CP-1");
        assert!(!cache.verify(&cp, "sixteen chars ok").await.unwrap());
        let hash = password::hash("sixteen chars ok").unwrap();
        cache.set(&cp, Some(hash)).await.unwrap();
        assert!(cache.verify(&cp, "sixteen chars ok").await.unwrap());
        assert!(!cache.verify(&cp, "sixteen chars no").await.unwrap());
        assert!(cache.has_password(&cp).await.unwrap());
        assert_eq!(fake.reads.load(Ordering::SeqCst), 1, "read once, reused");
        cache.forget(&cp);
        assert!(!cache.has_password(&cp).await.unwrap());
    }

    #[tokio::test]
    async fn the_last_hashes_read_serve_while_the_database_is_away() {
        let fake = Arc::new(Fake::default());
        let cache = PasswordCache::new(Arc::clone(&fake) as Arc<dyn HashStore>);
        let cp = id("CP-2");
        fake.away.store(true, Ordering::SeqCst);
        assert!(
            cache.verify(&cp, "sixteen chars ok").await.is_err(),
            "nothing was ever read: an error, not a refusal"
        );
        fake.away.store(false, Ordering::SeqCst);
        let hash = password::hash("sixteen chars ok").unwrap();
        fake.set_hash(&cp, Some(&hash)).await.unwrap();
        assert!(cache.verify(&cp, "sixteen chars ok").await.unwrap());
        // The hashes go stale and the database goes away: the last ones read still serve.
        if let Some(held) = cache.lock().as_mut() {
            held.read_at = Instant::now() - PASSWORDS_FRESH;
        }
        fake.away.store(true, Ordering::SeqCst);
        let before = fake.reads.load(Ordering::SeqCst);
        assert!(cache.verify(&cp, "sixteen chars ok").await.unwrap());
        assert!(cache.verify(&cp, "sixteen chars ok").await.unwrap());
        assert_eq!(
            fake.reads.load(Ordering::SeqCst),
            before + 1,
            "after a failed read the database is not asked again at once"
        );
    }
}
