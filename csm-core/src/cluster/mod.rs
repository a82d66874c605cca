//! Several csm servers on one database and one Redis (same `CSM_CACHE_PREFIX`) form a cluster
//! with no setting of their own; without Redis a server is a cluster of one and owns everything.
//!
//! - **Membership**: each instance beats every [`BEAT`] (a sorted set scored by Redis's clock,
//!   and an entry with what it holds); one whose beat lapsed for [`MEMBER_TTL`] is gone.
//! - **Ownership**: stations fall into [`SLOTS`] slots ([`slots`]); each slot is leased to one
//!   instance for [`LEASE`] (set only when free, renewed and released only by its holder's
//!   token). Rendezvous hashing over the live members says who should hold each slot, so a
//!   member coming or going moves only its share; a slot moves only to a member that has been
//!   in the cluster for [`JOIN_GRACE`]. An instance refreshes the stations of the slots it
//!   holds.
//! - **Handing over**: a slot whose rightful holder is another member is released at once;
//!   the other takes it at its next beat. A slot whose lease an instance finds taken stops
//!   being its own at once. A leaving instance releases all of its slots.
//! - **Redis away**: an instance keeps the slots it holds (availability first) and takes no
//!   new ones; when Redis returns (empty: it keeps nothing), each takes back the slots it
//!   held, and the members re-form before any slot moves.
//! - **Chargers**: an OCPP charger's connection is on one instance; a registry says which
//!   (the newest connection takes it over, and the instance of the older one is told to close
//!   it). Instances ask each other over [`rpc`] (a call to a charger goes to its holder).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::model::StationId;

mod coordinator;
pub mod rpc;
pub mod slots;

pub use self::coordinator::{Coordinator, Renewal};
pub use self::rpc::{Handler, RpcError};
pub use self::slots::{SLOTS, owner_of, slot_of};

/// How often an instance beats, renews its leases and looks at the members.
pub const BEAT: Duration = Duration::from_millis(500);
/// How long a lease lasts unless renewed.
pub const LEASE: Duration = Duration::from_secs(2);
/// How long a member stays without beating.
pub const MEMBER_TTL: Duration = Duration::from_secs(2);
/// How long a member must have been in the cluster before slots move to it (so the members
/// re-form after Redis lost everything, and a starting cluster settles, before any slot moves).
pub const JOIN_GRACE: Duration = Duration::from_secs(2);

/// What an instance says of itself, beside its heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// Its id (`CSM_INSTANCE_ID`, or made up at start).
    pub id: String,
    /// csm's version it runs.
    pub version: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
    /// Slots it holds (of [`SLOTS`]).
    pub slots: u16,
    /// Polled stations it refreshes.
    pub stations: usize,
    /// OCPP chargers whose connection it holds.
    pub chargers: usize,
}

/// The slots an instance holds.
#[derive(Clone, Debug)]
struct Held {
    slots: Vec<bool>,
    count: u16,
}

impl Held {
    fn none() -> Self {
        Self {
            slots: vec![false; usize::from(SLOTS)],
            count: 0,
        }
    }

    fn all() -> Self {
        Self {
            slots: vec![true; usize::from(SLOTS)],
            count: SLOTS,
        }
    }

    fn list(&self) -> Vec<u16> {
        (0..SLOTS)
            .filter(|slot| self.slots[usize::from(*slot)])
            .collect()
    }

    fn set(&mut self, slot: u16, held: bool) {
        let place = &mut self.slots[usize::from(slot)];
        if *place != held {
            *place = held;
            if held {
                self.count += 1;
            } else {
                self.count -= 1;
            }
        }
    }
}

struct Inner {
    id: String,
    /// The lease token: the id and this process's incarnation, so a restarted instance with
    /// the same id never mistakes its predecessor's leases for its own.
    token: String,
    started_at: DateTime<Utc>,
    coordinator: Option<Coordinator>,
    held: RwLock<Held>,
    /// When the last beat was tried; slots count as held only while beats keep being tried
    /// (a stalled process stops refreshing before its leases can pass on).
    last_attempt: Mutex<Option<Instant>>,
    /// Polled stations refreshed here at the scheduler's last turn.
    stations: AtomicU64,
    /// Chargers connected here at the last beat.
    chargers: AtomicU64,
    /// Bumped each time slots are gained, so the scheduler refreshes their stations at once.
    gained: watch::Sender<u64>,
    /// Whether the last beat reached Redis.
    reachable: std::sync::atomic::AtomicBool,
    beats: AtomicU64,
    /// Requests between instances (with Redis).
    rpc: Option<rpc::Rpc>,
    /// The registry's value of each charger this instance claimed (to remove it only while it
    /// is still this instance's).
    claimed: Mutex<std::collections::HashMap<String, String>>,
    /// Asked when Redis cannot be reached: is it away for all, or only for this instance?
    witness: std::sync::OnceLock<Arc<dyn Witness>>,
    /// Since when beats have reached Redis without a break.
    reaching_since: Mutex<Option<DateTime<Utc>>>,
    /// When a beat last reached Redis.
    last_reached: Mutex<Option<DateTime<Utc>>>,
    /// Who should hold each slot among the members last seen.
    owners: Mutex<Option<Arc<slots::Owners>>>,
}

/// A second opinion on Redis, outside it (the shared database): an instance that cannot reach
/// Redis asks it whether the others still do.
#[async_trait::async_trait]
pub trait Witness: Send + Sync {
    /// Records that instance `id` reached Redis at `at`, without a break since `since`.
    async fn reached(
        &self,
        id: &str,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<(), String>;
    /// Whether an instance other than `id` has reached Redis without a break from `since` (or
    /// earlier) to after `after`.
    async fn reached_elsewhere(
        &self,
        id: &str,
        since: DateTime<Utc>,
        after: DateTime<Utc>,
    ) -> Result<bool, String>;
}

/// How long another instance must have reached Redis without a break, while this one cannot,
/// for this one to count itself cut off (longer than instances take to reconnect one after the
/// other when Redis comes back, and than their clocks differ).
const CUT_OFF_RUN: Duration = Duration::from_millis(1500);

/// How much later than this instance's last beat through Redis another instance's must be
/// (clocks of instances differ by less).
const CUT_OFF_MARGIN: Duration = Duration::from_secs(1);

/// The longest wait for the witness in a beat.
const WITNESS_WAIT: Duration = Duration::from_millis(400);

/// This instance's view of the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.inner.id)
            .field("coordinator", &self.inner.coordinator)
            .field("slots", &self.held_count())
            .finish()
    }
}

/// An instance id made up at start: the host's name, the process id and a random suffix.
pub fn generated_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "csm".to_owned());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect();
    format!("{host}-{}-{:04x}", std::process::id(), fastrand::u16(..))
}

impl Cluster {
    fn with(id: String, coordinator: Option<Coordinator>, held: Held) -> Self {
        let (gained, _) = watch::channel(0);
        let token = format!("{id}/{:016x}", fastrand::u64(..));
        let rpc = coordinator.as_ref().map(|c| c.rpc(&id));
        Self {
            inner: Arc::new(Inner {
                id,
                token,
                started_at: Utc::now(),
                coordinator,
                held: RwLock::new(held),
                last_attempt: Mutex::new(None),
                stations: AtomicU64::new(0),
                chargers: AtomicU64::new(0),
                gained,
                reachable: std::sync::atomic::AtomicBool::new(true),
                beats: AtomicU64::new(0),
                rpc,
                claimed: Mutex::default(),
                witness: std::sync::OnceLock::new(),
                reaching_since: Mutex::new(None),
                last_reached: Mutex::new(None),
                owners: Mutex::new(None),
            }),
        }
    }

    /// Sets the witness asked when Redis cannot be reached (without one, an instance that
    /// cannot reach Redis always keeps its slots).
    pub fn set_witness(&self, witness: Arc<dyn Witness>) {
        let _ = self.inner.witness.set(witness);
    }

    /// A cluster of one (no Redis): this instance owns every station.
    pub fn single(id: String) -> Self {
        Self::with(id, None, Held::all())
    }

    /// A member of the cluster coordinated by `coordinator`. It holds nothing until it beats.
    pub fn member(id: String, coordinator: Coordinator) -> Self {
        Self::with(id, Some(coordinator), Held::none())
    }

    /// This instance's id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Whether other instances may share the work (Redis coordinates).
    pub fn is_shared(&self) -> bool {
        self.inner.coordinator.is_some()
    }

    /// Whether this instance refreshes the stations of `slot` now.
    pub fn owns_slot(&self, slot: u16) -> bool {
        if self.inner.coordinator.is_none() {
            return true;
        }
        let beating = self
            .inner
            .last_attempt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < LEASE);
        beating
            && self
                .inner
                .held
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .slots[usize::from(slot)]
    }

    /// Whether this instance refreshes the station now.
    pub fn owns(&self, id: &StationId) -> bool {
        self.owns_slot(slot_of(id))
    }

    /// Slots held now.
    pub fn held_count(&self) -> u16 {
        self.inner
            .held
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .count
    }

    /// Changes each time this instance gains slots.
    pub fn gained(&self) -> watch::Receiver<u64> {
        self.inner.gained.subscribe()
    }

    /// Whether the last beat reached Redis (always, for a cluster of one).
    pub fn reachable(&self) -> bool {
        self.inner.reachable.load(Ordering::Relaxed)
    }

    /// Beats since start.
    pub fn beats(&self) -> u64 {
        self.inner.beats.load(Ordering::Relaxed)
    }

    /// Records how many polled stations this instance refreshes, for the others to see at its
    /// next beat.
    pub fn set_stations(&self, stations: usize) {
        self.inner
            .stations
            .store(stations as u64, Ordering::Relaxed);
    }

    /// What this instance says of itself now.
    fn me(&self, heartbeat_at: DateTime<Utc>) -> Member {
        Member {
            id: self.inner.id.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: self.inner.started_at,
            heartbeat_at,
            slots: self.held_count(),
            stations: self.inner.stations.load(Ordering::Relaxed) as usize,
            chargers: self.inner.chargers.load(Ordering::Relaxed) as usize,
        }
    }

    /// The live members, each as it describes itself (a cluster of one: this instance), by id.
    pub async fn members(&self) -> Result<Vec<Member>, String> {
        let Some(coordinator) = &self.inner.coordinator else {
            return Ok(vec![self.me(Utc::now())]);
        };
        let ids = coordinator.live(MEMBER_TTL).await?;
        let mut members: Vec<Member> = coordinator
            .infos(&ids)
            .await?
            .into_iter()
            .flatten()
            .collect();
        members.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(members)
    }

    /// Beats every [`BEAT`] until `cancel` fires, then leaves (its slots released at once).
    /// `chargers` says how many chargers are connected here now.
    pub async fn run(&self, chargers: impl Fn() -> usize + Send, cancel: CancellationToken) {
        let Some(coordinator) = &self.inner.coordinator else {
            return;
        };
        let mut ticker = tokio::time::interval(BEAT);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            self.inner
                .chargers
                .store(chargers() as u64, Ordering::Relaxed);
            self.beat(coordinator).await;
        }
        self.leave(coordinator).await;
    }

    /// Gives every slot back and leaves the members.
    async fn leave(&self, coordinator: &Coordinator) {
        let held = {
            let mut held = self.inner.held.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *held, Held::none()).list()
        };
        let released = coordinator.release(&held, &self.inner.token).await;
        let left = coordinator.leave(&self.inner.id).await;
        match released.and(left) {
            Ok(()) => tracing::info!(
                instance = %self.inner.id,
                slots = held.len(),
                "left the cluster; the others take its stations at their next beat"
            ),
            Err(error) => tracing::warn!(
                %error,
                "cannot leave the cluster cleanly; the others take its stations when its leases lapse"
            ),
        }
    }

    /// One beat: heartbeat, then renew, release and take leases.
    pub async fn beat(&self, coordinator: &Coordinator) {
        *self
            .inner
            .last_attempt
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        self.inner.beats.fetch_add(1, Ordering::Relaxed);
        match self.try_beat(coordinator).await {
            Ok(forgotten) => {
                let now = Utc::now();
                *self
                    .inner
                    .last_reached
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(now);
                let since = *self
                    .inner
                    .reaching_since
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(now);
                if let Some(witness) = self.inner.witness.get() {
                    let witness = Arc::clone(witness);
                    let id = self.inner.id.clone();
                    tokio::spawn(async move {
                        if let Err(error) = witness.reached(&id, now, since).await {
                            tracing::debug!(%error, "cannot record that this instance reaches Redis");
                        }
                    });
                }
                let was_away = !self.inner.reachable.swap(true, Ordering::Relaxed);
                if was_away {
                    tracing::info!(
                        slots = self.held_count(),
                        "Redis answers again: the cluster re-forms"
                    );
                }
                if was_away || forgotten {
                    self.reassert_chargers(coordinator);
                }
            }
            Err(error) => {
                *self
                    .inner
                    .reaching_since
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = None;
                if self.inner.reachable.swap(false, Ordering::Relaxed) {
                    tracing::warn!(
                        %error,
                        slots = self.held_count(),
                        "cannot reach the cluster's Redis: keeping the stations held, taking no others"
                    );
                }
                if self.held_count() > 0 && self.cut_off().await {
                    let held = self
                        .inner
                        .held
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .list();
                    self.drop_slots(&held);
                    tracing::warn!(
                        slots = held.len(),
                        "cut off from the cluster's Redis while other instances still reach it: no longer refreshing this instance's stations, which the others take when their leases lapse"
                    );
                }
            }
        }
        metrics::gauge!("csm_cluster_slots").set(f64::from(self.held_count()));
    }

    /// Whether, by the witness, another instance has reached Redis since this one last did
    /// (by more than clocks differ), without a break for the last [`CUT_OFF_RUN`]: then Redis
    /// is away for this instance only. Not when Redis is away for all (nobody reached it since
    /// this one did), nor when it comes back for one instance a moment before another (that
    /// one's run is short). Without a witness, or when it cannot tell, `false`: availability
    /// first.
    async fn cut_off(&self) -> bool {
        let Some(witness) = self.inner.witness.get() else {
            return false;
        };
        let last = *self
            .inner
            .last_reached
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let Some(last) = last else {
            return false;
        };
        let run = chrono::TimeDelta::from_std(CUT_OFF_RUN).unwrap_or_default();
        let margin = chrono::TimeDelta::from_std(CUT_OFF_MARGIN).unwrap_or_default();
        let (since, after) = (Utc::now() - run, last + margin);
        match tokio::time::timeout(
            WITNESS_WAIT,
            witness.reached_elsewhere(&self.inner.id, since, after),
        )
        .await
        {
            Ok(Ok(elsewhere)) => elsewhere,
            Ok(Err(error)) => {
                tracing::debug!(%error, "cannot ask whether other instances reach Redis");
                false
            }
            Err(_) => false,
        }
    }

    /// Records again which chargers this instance holds, after Redis was away or lost its
    /// data (it keeps nothing across a restart), so calls from other instances reach them.
    /// In the background: thousands of chargers must not hold up the next beat.
    fn reassert_chargers(&self, coordinator: &Coordinator) {
        let claimed: Vec<(String, String)> = self
            .lock_claimed()
            .iter()
            .map(|(id, held)| (id.clone(), held.clone()))
            .collect();
        if claimed.is_empty() {
            return;
        }
        let coordinator = coordinator.clone();
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut recorded = 0;
            for (id, held) in &claimed {
                // Connected while Redis was away: claimed now, as a new connection.
                let done = if held.is_empty() {
                    coordinator
                        .claim_charger(id, &cluster.inner.id)
                        .await
                        .map(|(held, _)| {
                            let mut claimed = cluster.lock_claimed();
                            if let Some(entry) = claimed.get_mut(id) {
                                *entry = held;
                            }
                            true
                        })
                } else {
                    coordinator.reassert_charger(id, held).await
                };
                match done {
                    Ok(true) => recorded += 1,
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, "cannot record the chargers held here again; trying at the next return of Redis");
                        return;
                    }
                }
            }
            tracing::info!(
                recorded,
                held = claimed.len(),
                "recorded again the chargers connected here"
            );
        });
    }

    /// Who should hold each slot among `members`: worked out again only when they changed.
    fn owners_among(&self, members: &[String]) -> Arc<slots::Owners> {
        let mut owners = self.inner.owners.lock().unwrap_or_else(|p| p.into_inner());
        match &*owners {
            Some(known) if known.are_among(members) => Arc::clone(known),
            _ => Arc::clone(owners.insert(Arc::new(slots::Owners::among(members)))),
        }
    }

    /// One beat's work; answers whether Redis had forgotten leases this instance held (it
    /// restarted, or was flushed).
    async fn try_beat(&self, coordinator: &Coordinator) -> Result<bool, String> {
        let info = serde_json::to_string(&self.me(Utc::now())).unwrap_or_default();
        let (now_ms, live) = coordinator.beat(&self.inner.id, &info, MEMBER_TTL).await?;
        let grace = JOIN_GRACE.as_millis() as u64;
        let settled_ids: Vec<&str> = live
            .iter()
            .filter(|(_, joined)| joined.saturating_add(grace) <= now_ms)
            .map(|(id, _)| id.as_str())
            .collect();
        let ids: Vec<String> = live.iter().map(|(id, _)| id.clone()).collect();
        let me = self.inner.id.as_str();
        // Who should hold a slot is decided over every live member, but a slot moves only to
        // a member that has been in the cluster for the grace, and a member that (re)joined
        // lately keeps what it holds and takes nothing new: after Redis lost everything the
        // members re-form before any slot moves, and a starting cluster does not hand every
        // slot to whoever beat first.
        // Back from a spell without Redis, an instance is new again for the grace: the others
        // (whose leases lapsed meanwhile too) come back within it and take their own back.
        let reaching_since = *self
            .inner
            .reaching_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let back_long_enough = reaching_since.is_some_and(|since| {
            Utc::now() - since >= chrono::TimeDelta::from_std(JOIN_GRACE).unwrap_or_default()
        });
        let settled = settled_ids.contains(&me) && back_long_enough;
        let owners = self.owners_among(&ids);
        let (held, holds) = {
            let held = self.inner.held.read().unwrap_or_else(|p| p.into_inner());
            (held.list(), held.slots.clone())
        };
        // Held slots another settled member should have go back; the others are renewed.
        let takes: Vec<bool> = owners
            .members()
            .iter()
            .map(|member| member != me && settled_ids.contains(&member.as_str()))
            .collect();
        let (give, keep): (Vec<u16>, Vec<u16>) = held
            .iter()
            .partition(|slot| settled && owners.index_of(**slot).is_some_and(|owner| takes[owner]));
        if !give.is_empty() {
            self.drop_slots(&give);
            coordinator.release(&give, &self.inner.token).await?;
        }
        let renewals = coordinator.renew(&keep, &self.inner.token, LEASE).await?;
        let mut lost = Vec::new();
        let mut missing = Vec::new();
        for (slot, renewal) in keep.iter().zip(renewals) {
            match renewal {
                Renewal::Renewed => {}
                Renewal::Missing => missing.push(*slot),
                Renewal::Lost => lost.push(*slot),
            }
        }
        if !lost.is_empty() {
            tracing::warn!(
                slots = lost.len(),
                "another instance holds slots this one thought its own: no longer refreshing them"
            );
            self.drop_slots(&lost);
        }
        // Slots to take: this instance's rightful ones nobody holds, and the ones it held whose
        // lease Redis no longer has.
        let mut wanted: Vec<u16> = if settled {
            owners
                .slots_of(me)
                .filter(|slot| !holds[usize::from(*slot)])
                .collect()
        } else {
            Vec::new()
        };
        wanted.extend(missing.iter().copied());
        let taken = coordinator
            .acquire(&wanted, &self.inner.token, LEASE)
            .await?;
        let mut gained = 0;
        {
            let mut slots = self.inner.held.write().unwrap_or_else(|p| p.into_inner());
            for (slot, took) in wanted.iter().zip(taken) {
                let was_missing = missing.contains(slot);
                if took {
                    if !was_missing {
                        gained += 1;
                    }
                    slots.set(*slot, true);
                } else if was_missing {
                    // Someone took it between the renewal and now.
                    slots.set(*slot, false);
                }
            }
        }
        if gained > 0 {
            tracing::info!(
                gained,
                slots = self.held_count(),
                "took slots: refreshing their stations"
            );
            self.inner.gained.send_modify(|n| *n += 1);
        }
        Ok(!missing.is_empty())
    }

    /// A connection of charger `id` on this instance takes it over: answers the other instance
    /// that held it before (to be told to close its connection), if any. Alone, or while Redis
    /// is away, `None`.
    pub async fn claim_charger(&self, id: &StationId) -> Option<String> {
        let coordinator = self.inner.coordinator.as_ref()?;
        match coordinator.claim_charger(id.as_str(), &self.inner.id).await {
            Ok((held, before)) => {
                self.lock_claimed().insert(id.to_string(), held);
                before
                    .and_then(|b| b.split(' ').next().map(str::to_owned))
                    .filter(|instance| instance != &self.inner.id)
            }
            Err(error) => {
                tracing::warn!(%error, charger = %id, "cannot record where a charger is connected; calls from other instances do not reach it until Redis answers again");
                // Claimed when Redis answers again.
                self.lock_claimed().insert(id.to_string(), String::new());
                None
            }
        }
    }

    /// Charger `id`'s connection here ended: the registry forgets it, unless a newer
    /// connection (here or elsewhere) took it over since.
    pub async fn release_charger(&self, id: &StationId) {
        let Some(coordinator) = &self.inner.coordinator else {
            return;
        };
        let Some(held) = self.lock_claimed().remove(id.as_str()) else {
            return;
        };
        if let Err(error) = coordinator.unclaim_charger(id.as_str(), &held).await {
            tracing::debug!(%error, charger = %id, "cannot record that a charger left; its entry stays until it connects again");
        }
    }

    /// Forgets charger `id` without touching the registry (another instance took it over).
    pub fn forget_charger(&self, id: &StationId) {
        self.lock_claimed().remove(id.as_str());
    }

    fn lock_claimed(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, String>> {
        self.inner.claimed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live instances holding chargers `ids` (`None` where none does, or its holder is
    /// gone). Alone: `None` for each.
    pub async fn charger_holders(&self, ids: &[StationId]) -> Result<Vec<Option<String>>, String> {
        let Some(coordinator) = &self.inner.coordinator else {
            return Ok(vec![None; ids.len()]);
        };
        let names: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        let holders = coordinator.charger_holders(&names).await?;
        let live = coordinator.live(MEMBER_TTL).await?;
        Ok(holders
            .into_iter()
            .map(|holder| holder.filter(|h| live.contains(h)))
            .collect())
    }

    /// Whether this instance is the first to do `what` within `ttl` across the cluster (alone,
    /// or while Redis is away: always).
    pub async fn first_within(&self, what: &str, ttl: Duration) -> bool {
        let Some(coordinator) = &self.inner.coordinator else {
            return true;
        };
        coordinator.mark(what, ttl).await.unwrap_or_else(|error| {
            tracing::debug!(%error, what, "cannot check across the cluster; going ahead");
            true
        })
    }

    /// The cluster-wide token bucket `key` of `capacity` tokens refilled at `per_sec`: the
    /// tokens left, and when `take` found none, how long until one comes. `None` alone or
    /// while Redis is away (use a bucket of this process's own then).
    pub async fn bucket(
        &self,
        key: &str,
        capacity: f64,
        per_sec: f64,
        take: bool,
    ) -> Option<(f64, Option<Duration>)> {
        let coordinator = self.inner.coordinator.as_ref()?;
        match coordinator.bucket(key, capacity, per_sec, take).await {
            Ok(answer) => Some(answer),
            Err(error) => {
                tracing::debug!(%error, key, "cannot count a shared allowance; counting here meanwhile");
                None
            }
        }
    }

    /// Asks instance `to`, waiting at most `timeout` for its answer.
    pub async fn ask(
        &self,
        to: &str,
        body: serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, RpcError> {
        match &self.inner.rpc {
            Some(rpc) => rpc.ask(to, body, timeout).await,
            None => Err(RpcError::Unreachable {
                instance: to.to_owned(),
                reason: "this instance runs alone".into(),
            }),
        }
    }

    /// Answers the other instances' requests with `handler` until `cancel` fires (alone:
    /// returns at once).
    pub async fn serve_requests(&self, handler: Handler, cancel: CancellationToken) {
        if let Some(rpc) = &self.inner.rpc {
            rpc.serve(handler, cancel).await;
        }
    }

    fn drop_slots(&self, slots: &[u16]) {
        let mut held = self.inner.held.write().unwrap_or_else(|p| p.into_inner());
        for slot in slots {
            held.set(*slot, false);
        }
    }
}
