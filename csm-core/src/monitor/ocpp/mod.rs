//! The OCPP area: who may connect (registration, passwords), the frames of a connection, and
//! its end; the registry of charge points is in `charge_points.rs`. Each change a charger reports runs through the same refresh as a
//! poll (the `ocpp` source answers with what the charger last said), so cache, events,
//! history, alerts and the live stream treat it like any station.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{MonitorError, Parts, PasswordCache};

mod command;
mod registry;
mod remote;

pub use self::command::{CommandOutcome, CommandReport, MAX_COMMAND_TIMEOUT, MessageLogRead};
pub use self::registry::{ChargePointStatus, Connection, REGISTRY_EVERY};
use crate::catalog::CatalogCell;
use crate::cluster::Cluster;
use crate::error::InvalidInput;
use crate::feed::{Announcement, Feed};
use crate::model::{Station, StationId};
use crate::ocpp::{OCPP_VENDOR, OcppSource, Policy, Version, password};
use crate::rate::TokenBucket;
use crate::settings::{Registration, Settings};
use crate::store::Store;

/// What to do with one frame of a charger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcppReply {
    /// The frame to send back (`None`: the charger answered a call of csm's).
    pub reply: Option<String>,
    /// Whether a port changed: refresh the station ([`super::Refresh::one`]) after replying.
    pub changed: bool,
    /// A newer connection of the charger took over: close this one.
    pub superseded: bool,
    /// The charger booted: configure it ([`Ocpp::configure`]) without blocking its
    /// connection.
    pub booted: bool,
}

/// How a charger's connection reached csm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transport {
    /// Over TLS (directly, or through a trusted proxy that terminated it).
    pub tls: bool,
    /// The charge point id (subject CN) of the client certificate it presented and that was
    /// verified against `CSM_TLS_CLIENT_CA`.
    pub certificate: Option<String>,
}

/// Who a connecting charger is.
#[derive(Debug)]
pub enum Admitted {
    /// A station of vendor `ocpp`: attach its connection ([`Ocpp::attach`]).
    Known(Arc<Station>),
    /// Not a station yet, and registration is `auto`: it is registered when it boots
    /// ([`Ocpp::before_boot`]).
    Unregistered(StationId),
}

/// What to do with a frame of a charger that is not registered yet.
#[derive(Debug)]
pub enum BeforeBoot {
    /// It booted and is registered: attach its connection, then answer the same frame as
    /// any charger's ([`Ocpp::frame`]).
    Registered(Arc<Station>),
    /// Send this answer and wait for its BootNotification.
    Reply(String),
    /// Send this answer (its boot, `Rejected`) and close the connection.
    Rejected(String),
    /// Nothing to answer.
    Ignore,
}

/// Why auto registration refused a charger, and when it may try again.
struct Refusal {
    reason: String,
    retry_secs: u64,
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long csm waits for a charger's answer to one of its calls.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a manual refresh of a charge point waits for its answer to TriggerMessage.
pub const TRIGGER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long csm lets a newly connected charger speak first before it asks for its status.
pub const QUIET_AFTER_CONNECT: std::time::Duration = std::time::Duration::from_secs(3);

/// The OCPP area of the [`Monitor`](super::Monitor).
#[derive(Clone)]
pub struct Ocpp {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    catalog: Arc<CatalogCell>,
    /// The charge points heard since the process started, fed by their connections.
    source: Arc<OcppSource>,
    passwords: Arc<PasswordCache>,
    /// Auto registrations of charge points (`CSM_OCPP_AUTO_PER_MINUTE`).
    registrations: Arc<Mutex<TokenBucket>>,
    /// Chargers' sockets open now.
    sockets: Arc<AtomicUsize>,
    /// Tells the other instances of stations added here.
    feed: Feed,
    /// Where each charger's connection is, across instances.
    cluster: Cluster,
    /// Chargers of this instance's slots whose connection was on an instance that is gone,
    /// quiet past their liveness window: this instance records them offline.
    orphans: Arc<Mutex<std::collections::HashSet<StationId>>>,
}

/// A charger's socket, counted ([`Ocpp::sockets`], `csm_ocpp_connections`) while it is open.
#[derive(Debug)]
pub struct OpenSocket(Arc<AtomicUsize>);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("csm_ocpp_connections").decrement(1.0);
    }
}

impl std::fmt::Debug for Ocpp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ocpp")
            .field("passwords", &self.passwords)
            .finish()
    }
}

impl Ocpp {
    pub(in crate::monitor) fn new(parts: &Parts, source: Arc<OcppSource>) -> Self {
        let registrations = f64::from(parts.settings.ocpp.auto_per_minute.max(1));
        source.store_log(parts.settings.ocpp.log_database);
        Self {
            settings: Arc::clone(&parts.settings),
            store: Arc::clone(&parts.store),
            catalog: Arc::clone(&parts.catalog),
            source,
            passwords: Arc::new(PasswordCache::new(Arc::new(Arc::clone(&parts.store)))),
            registrations: Arc::new(Mutex::new(TokenBucket::new(
                registrations,
                registrations / 60.0,
            ))),
            sockets: Arc::default(),
            feed: parts.feed.clone(),
            cluster: parts.cluster.clone(),
            orphans: Arc::default(),
        }
    }

    /// Counts a charger's socket as open until the value is dropped.
    pub fn socket_opened(&self) -> OpenSocket {
        self.sockets.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!("csm_ocpp_connections").increment(1.0);
        OpenSocket(Arc::clone(&self.sockets))
    }

    /// Whether this instance holds the charger's connection now.
    pub fn holds(&self, id: &StationId) -> bool {
        self.source.holds(id)
    }

    /// Chargers' sockets open now (registered or not yet).
    pub fn sockets(&self) -> usize {
        self.sockets.load(Ordering::Acquire)
    }

    /// A station of the catalogue.
    async fn station(&self, id: &StationId) -> Result<Arc<Station>, MonitorError> {
        self.catalog
            .get()
            .await?
            .get(id)
            .cloned()
            .ok_or_else(|| MonitorError::NotFound(id.clone()))
    }

    /// Forgets a removed charge point.
    pub(in crate::monitor) fn forget(&self, id: &StationId) {
        self.source.forget(id);
        self.passwords.forget(id);
    }

    /// How long a charger may stay silent before it counts as offline (two heartbeat
    /// intervals and a grace).
    pub fn liveness(&self) -> std::time::Duration {
        self.source
            .liveness()
            .to_std()
            .unwrap_or(std::time::Duration::MAX)
    }

    /// Stores (or, with `None`, removes) the password of an OCPP charge point, as a salted
    /// hash.
    pub async fn set_password(
        &self,
        id: &StationId,
        password: Option<&str>,
    ) -> Result<(), MonitorError> {
        let station = self.station(id).await?;
        if station.vendor != OCPP_VENDOR {
            return Err(InvalidInput::new(
                "password",
                format!(
                    "applies only to OCPP charge points (vendor ocpp), not to a {} station",
                    station.vendor
                ),
            )
            .into());
        }
        let hash = match password {
            Some(password) => {
                password::check(password)?;
                let password = password.to_owned();
                let hashed = tokio::task::spawn_blocking(move || password::hash(&password))
                    .await
                    .map_err(|e| InvalidInput::new("password", format!("cannot be hashed: {e}")))?;
                Some(hashed?)
            }
            None => None,
        };
        Ok(self.passwords.set(id, hash).await?)
    }

    /// Sets the security profile charge point `id` must connect with: 1 (its password, if it
    /// has one, over any connection), 2 (TLS) or 3 (TLS with its client certificate).
    pub async fn set_security_profile(
        &self,
        id: &StationId,
        profile: u8,
    ) -> Result<(), MonitorError> {
        if !(1..=3).contains(&profile) {
            return Err(InvalidInput::new(
                "security_profile",
                format!("{profile}: OCPP's security profiles are 1, 2 and 3"),
            )
            .into());
        }
        let station = self.station(id).await?;
        if station.vendor != OCPP_VENDOR {
            return Err(InvalidInput::new(
                "security_profile",
                format!(
                    "applies only to OCPP charge points (vendor ocpp), not to a {} station",
                    station.vendor
                ),
            )
            .into());
        }
        Ok(self.passwords.set_profile(id, profile).await?)
    }

    /// The security profile charge point `id` must connect with (1 unless set higher).
    pub async fn security_profile(&self, id: &StationId) -> Result<u8, MonitorError> {
        Ok(self.passwords.profile(id).await?)
    }

    /// Adds an OCPP charge point's station with its password (if any) and the security
    /// profile it must connect with (1–3); when either cannot be stored, the station is
    /// removed again.
    pub async fn add_charge_point(
        &self,
        station: &Station,
        password: Option<&str>,
        profile: u8,
    ) -> Result<(), MonitorError> {
        let field = if password.is_some() {
            "password"
        } else {
            "security_profile"
        };
        if station.vendor != OCPP_VENDOR {
            return Err(InvalidInput::new(
                field,
                format!(
                    "applies only to OCPP charge points (vendor ocpp), not to vendor {}",
                    station.vendor
                ),
            )
            .into());
        }
        if let Some(password) = password {
            password::check(password)?;
        }
        if !(1..=3).contains(&profile) {
            return Err(InvalidInput::new(
                "security_profile",
                format!("{profile}: OCPP's security profiles are 1, 2 and 3"),
            )
            .into());
        }
        self.catalog.add(station).await?;
        let mut stored = Ok(());
        if profile > 1 {
            stored = self
                .passwords
                .set_profile(&station.id, profile)
                .await
                .map_err(MonitorError::from);
        }
        if let Some(password) = password
            && stored.is_ok()
        {
            stored = self.set_password(&station.id, Some(password)).await;
        }
        if let Err(error) = stored {
            if let Err(undo) = self.catalog.remove(&station.id).await {
                tracing::error!(station = %station.id, error = %undo, "could not remove a station whose password or security profile was not stored");
            }
            return Err(error);
        }
        self.feed.announce(Announcement::Catalog).await;
        Ok(())
    }

    /// Checks a charger's HTTP Basic credentials (`user`, `password`): the user is the charge
    /// point id; a charge point with a stored password must give it, one without is let in
    /// unless `CSM_OCPP_REQUIRE_PASSWORD`.
    async fn check_charger(
        &self,
        id: &StationId,
        credentials: Option<(&str, &str)>,
        transport: &Transport,
    ) -> Result<(), MonitorError> {
        let unauthorized = |message: String| Err(MonitorError::Unauthorized(message));
        if let Some(named) = &transport.certificate
            && named != id.as_str()
        {
            return unauthorized(format!(
                "the client certificate is charge point {named:?}'s (its CN), not {id}'s"
            ));
        }
        let certified = transport.tls && transport.certificate.is_some();
        match self.passwords.profile(id).await? {
            3 if !certified => {
                return unauthorized(format!(
                    "charge point {id} requires security profile 3: connect with wss:// and its client certificate (CN {id}, issued by CSM_TLS_CLIENT_CA)"
                ));
            }
            2 if !transport.tls => {
                return unauthorized(format!(
                    "charge point {id} requires security profile 2: connect with wss:// (TLS), not ws://"
                ));
            }
            _ => {}
        }
        // A verified certificate that names the charge point authenticates it.
        if certified {
            return Ok(());
        }
        let has_password = self.passwords.has_password(id).await?;
        match (has_password, credentials) {
            (true, Some((user, _))) if user != id.as_str() => unauthorized(format!(
                "the Basic auth user is {user:?}; it must be the charge point id {id}"
            )),
            (true, Some((_, given))) => {
                if self.passwords.verify(id, given).await? {
                    Ok(())
                } else {
                    unauthorized(format!("wrong password for charge point {id}"))
                }
            }
            (true, None) => unauthorized(format!(
                "charge point {id} has a password: send it with HTTP Basic auth (user {id})"
            )),
            (false, _) if self.settings.ocpp.require_password => unauthorized(format!(
                "charge point {id} has no password and this server requires one (CSM_OCPP_REQUIRE_PASSWORD); add it with `csm-cli stations add {id} NAME --vendor ocpp --password …`"
            )),
            (false, _) => Ok(()),
        }
    }

    /// A charger asks to connect as `charge_point_id` with its Basic auth credentials, over
    /// `transport`. The credentials are checked before anything else: a client certificate
    /// must name this charge point, and the station's security profile must be met (2: TLS;
    /// 3: TLS with its client certificate, which then stands for its password). A charge point csm knows is attached
    /// ([`Ocpp::attach`]); an unknown one, when registration is `auto`, may connect
    /// but becomes a station only when it boots ([`Ocpp::before_boot`]).
    pub async fn connect(
        &self,
        charge_point_id: &str,
        credentials: Option<(&str, &str)>,
        transport: &Transport,
    ) -> Result<Admitted, MonitorError> {
        let id = StationId::parse(charge_point_id).map_err(|e| e.at("charge point id"))?;
        self.check_charger(&id, credentials, transport).await?;
        let station = match self.station(&id).await {
            Ok(station) => station,
            Err(MonitorError::NotFound(_))
                if self.settings.ocpp_registration() == Registration::Auto =>
            {
                return Ok(Admitted::Unregistered(id));
            }
            Err(error) => return Err(error),
        };
        if station.vendor != OCPP_VENDOR {
            return Err(MonitorError::Conflict(format!(
                "station {id} is a {} station, not an OCPP charge point (vendor ocpp)",
                station.vendor
            )));
        }
        Ok(Admitted::Known(station))
    }

    /// A charge point's connection, speaking `version`, takes over from any older one: its
    /// number and the frames
    /// it is to send (csm's calls; the channel closes when a newer connection takes over).
    /// In a cluster the registry records that this instance holds it, and an instance that
    /// held an older connection is told to close it.
    pub async fn attach(
        &self,
        station: &Station,
        version: Version,
    ) -> Result<(u64, tokio::sync::mpsc::Receiver<String>), MonitorError> {
        let attached = self.source.connect(&station.id, version);
        if let Some(before) = self.cluster.claim_charger(&station.id).await {
            self.tell_moved(&before, &station.id);
        }
        Ok(attached)
    }

    /// A frame of a charger that is not registered yet (auto registration): a BootNotification
    /// registers it, within the limits of auto registration (`CSM_OCPP_AUTO_MAX`,
    /// `CSM_OCPP_AUTO_PER_MINUTE`; past them the boot is answered `Rejected`); any other
    /// call is answered with a CallError asking for the boot first.
    pub async fn before_boot(&self, id: &StationId, version: Version, text: &str) -> BeforeBoot {
        use crate::ocpp::frame::{self, ErrorCode, Incoming};
        let (call, action) = match frame::parse(text) {
            Ok(Incoming::Call { id, action, .. }) => (id, action),
            // An answer to nothing csm asked.
            Ok(Incoming::Result { .. } | Incoming::Error { .. }) => return BeforeBoot::Ignore,
            Err(bad) => {
                return BeforeBoot::Reply(frame::error(
                    version,
                    &bad.id,
                    bad.code,
                    &bad.description,
                ));
            }
        };
        if action != "BootNotification" {
            return BeforeBoot::Reply(frame::error(
                version,
                &call,
                ErrorCode::SecurityError,
                &format!("charge point {id} is not registered: send BootNotification first"),
            ));
        }
        match self.register(id).await {
            Ok(station) => BeforeBoot::Registered(station),
            Err(Refusal { reason, retry_secs }) => {
                tracing::warn!(charge_point = %id, %reason, "a charge point's registration was refused");
                metrics::counter!("csm_ocpp_registrations_refused_total").increment(1);
                let time = crate::model::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                BeforeBoot::Rejected(frame::result(
                    &call,
                    &serde_json::json!({"status": "Rejected", "currentTime": time, "interval": retry_secs}),
                ))
            }
        }
    }

    /// Adds a booting charger as a station, within the limits of auto registration.
    async fn register(&self, id: &StationId) -> Result<Arc<Station>, Refusal> {
        let refused = |reason: String, retry_secs: u64| Refusal { reason, retry_secs };
        let internal = |error: MonitorError| refused(error.to_string(), 60);
        let catalog = self.catalog.get().await.map_err(|e| internal(e.into()))?;
        if let Some(station) = catalog.stations.iter().find(|s| s.id == *id) {
            return Ok(Arc::clone(station));
        }
        let held = catalog
            .stations
            .iter()
            .filter(|s| s.vendor == OCPP_VENDOR)
            .count();
        let max = self.settings.ocpp.auto_max;
        if held >= max {
            return Err(refused(
                format!(
                    "csm holds {held} OCPP charge points, the most auto registration adds (CSM_OCPP_AUTO_MAX={max}); add it with `csm-cli stations add {id} NAME --vendor ocpp`"
                ),
                3_600,
            ));
        }
        if let Err(wait) = lock(&self.registrations).take() {
            let per_minute = self.settings.ocpp.auto_per_minute;
            return Err(refused(
                format!(
                    "auto registration adds at most {per_minute} charge points a minute (CSM_OCPP_AUTO_PER_MINUTE); try again in {} s",
                    wait.as_secs() + 1
                ),
                wait.as_secs() + 1,
            ));
        }
        let station = Station::charge_point(id.clone(), id.to_string());
        match self.catalog.add(&station).await {
            // Two connections at once: the other added it.
            Ok(()) => self.feed.announce(Announcement::Catalog).await,
            Err(crate::store::StoreError::Conflict(_)) => {}
            Err(error) => return Err(internal(error.into())),
        }
        tracing::info!(station = %id, "a new charge point booted and was added (CSM_OCPP_REGISTRATION=auto)");
        self.station(id).await.map_err(internal)
    }

    /// Answers one frame of a charger's connection.
    pub fn frame(
        &self,
        station: &Station,
        connection: u64,
        text: &str,
    ) -> Result<OcppReply, MonitorError> {
        let policy = Policy {
            heartbeat_secs: self.settings.ocpp.heartbeat_secs,
            accept_authorize: self.settings.ocpp.accept_authorize,
        };
        Ok(
            match self.source.handle(&station.id, connection, text, &policy) {
                Ok(handled) => OcppReply {
                    changed: handled.as_ref().is_some_and(|h| h.changed),
                    booted: handled.as_ref().is_some_and(|h| h.booted),
                    reply: handled.map(|h| h.reply),
                    superseded: false,
                },
                Err(_) => OcppReply {
                    reply: None,
                    changed: false,
                    superseded: true,
                    booted: false,
                },
            },
        )
    }

    /// After a boot: sets how often the charger samples meter values when
    /// `CSM_OCPP_METER_INTERVAL_SECS` says (1.6: ChangeConfiguration of
    /// `MeterValueSampleInterval`; 2.0.1: SetVariables of `SampledDataCtrlr.TxUpdatedInterval`),
    /// logging what it answered.
    pub async fn configure(&self, station: &Station) {
        let Some(secs) = self.settings.ocpp.meter_interval_secs else {
            return;
        };
        let (action, payload) = match self.source.version(&station.id) {
            Some(Version::V16) | None => (
                "ChangeConfiguration",
                serde_json::json!({"key": "MeterValueSampleInterval", "value": secs.to_string()}),
            ),
            Some(Version::V201) => (
                "SetVariables",
                serde_json::json!({"setVariableData": [{
                    "component": {"name": "SampledDataCtrlr"},
                    "variable": {"name": "TxUpdatedInterval"},
                    "attributeValue": secs.to_string(),
                }]}),
            ),
        };
        match self.call(&station.id, action, payload, CALL_TIMEOUT).await {
            Ok(answer) => {
                let status = answer
                    .get("status")
                    .or_else(|| answer.pointer("/setVariableResult/0/attributeStatus"))
                    .and_then(|s| s.as_str())
                    .unwrap_or("?");
                tracing::info!(station = %station.id, secs, status, action, "set the meter value interval");
            }
            Err(error) => {
                tracing::warn!(station = %station.id, %error, action, "could not set the meter value interval")
            }
        }
    }

    /// After a charger connected: when it has neither booted nor reported a status within
    /// [`QUIET_AFTER_CONNECT`] (a charger that only reconnected, or csm restarted), asks it for
    /// its status, so its ports do not wait for its next change.
    pub async fn ask_if_quiet(&self, station: &Station, connection: u64) {
        tokio::time::sleep(QUIET_AFTER_CONNECT).await;
        if self.source.quiet_since_connected(&station.id, connection) {
            tracing::debug!(station = %station.id, "a charger connected and said nothing: asking for its status");
            self.trigger(station).await;
        }
    }

    /// Asks a connected charger to send its status now (TriggerMessage StatusNotification)
    /// and waits for its answer, at most [`TRIGGER_TIMEOUT`].
    pub(in crate::monitor) async fn trigger(&self, station: &Station) {
        let payload = serde_json::json!({"requestedMessage": "StatusNotification"});
        if let Err(error) = self
            .call(&station.id, "TriggerMessage", payload, TRIGGER_TIMEOUT)
            .await
        {
            tracing::info!(station = %station.id, %error, "manual refresh: TriggerMessage got no answer");
        }
    }

    /// A charger's connection ended; returns whether it was the one serving the charger
    /// (then refresh the station: it is now unreachable). A connection replaced by a newer
    /// one, here or on another instance, changes nothing.
    pub async fn disconnect(&self, station: &Station, connection: u64) -> bool {
        let serving = self.source.disconnect(&station.id, connection);
        if serving {
            self.cluster.release_charger(&station.id).await;
        }
        serving
    }
}
