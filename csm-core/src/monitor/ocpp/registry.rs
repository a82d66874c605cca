//! The registry of OCPP charge points: which chargers are connected, since when, what they
//! last sent, and their firmware. The server that serves a charger keeps its record in memory
//! ([`crate::ocpp::OcppSource`]) and writes the records that changed to the database every
//! [`REGISTRY_EVERY`] ([`Ocpp::run_registry`]), so `csm-cli ocpp status` and the API
//! read the same thing; a server answers with its own fresher records over the stored ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use super::Ocpp;
use crate::model::{Station, StationId};
use crate::monitor::{MonitorError, READ_WAIT};
use crate::ocpp::{ChargePointRecord, OCPP_VENDOR};

/// How often the server writes the records that changed.
pub const REGISTRY_EVERY: Duration = Duration::from_secs(1);

/// How a charge point is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    /// A connection serves it and it keeps to its heartbeat.
    Connected,
    /// Its connection is open but it has sent nothing for two heartbeat intervals and a grace
    /// (or the server that served it stopped without saying so): it counts as offline.
    Silent,
    /// Its last connection closed.
    Disconnected,
    /// It has never connected.
    Never,
}

impl Connection {
    /// The name used in documents and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::Connected => "connected",
            Connection::Silent => "silent",
            Connection::Disconnected => "disconnected",
            Connection::Never => "never",
        }
    }

    /// Of a record, at `now`.
    pub fn of(record: &ChargePointRecord, now: DateTime<Utc>) -> Self {
        if !record.connected {
            return if record.connected_at.is_some() {
                Connection::Disconnected
            } else {
                Connection::Never
            };
        }
        let heartbeat = TimeDelta::seconds(i64::from(record.heartbeat_secs.max(1)));
        let live = crate::ocpp::source::liveness(heartbeat);
        match record.last_message_at {
            Some(heard) if now - heard <= live => Connection::Connected,
            _ => Connection::Silent,
        }
    }
}

/// One charge point of the registry.
#[derive(Clone, Debug)]
pub struct ChargePointStatus {
    /// Its station.
    pub station: Arc<Station>,
    /// How it is connected.
    pub connection: Connection,
    /// What the registry holds (all empty for one that never connected).
    pub record: ChargePointRecord,
}

impl Ocpp {
    /// The charge points of the registry, by id: the connected ones (and silent ones, whose
    /// connection is still open), or with `all` every OCPP station, including those that
    /// never connected.
    pub async fn charge_points(&self, all: bool) -> Result<Vec<ChargePointStatus>, MonitorError> {
        let mut records: BTreeMap<_, _> = self
            .stored_charge_points()
            .await?
            .into_iter()
            .map(|r| (r.station_id.clone(), r))
            .collect();
        // This process serves these: its own records are the freshest.
        for (record, _) in self.source.records(false) {
            records.insert(record.station_id.clone(), record);
        }
        let now = crate::model::now();
        let stations = Arc::clone(&self.catalog.get().await?.stations);
        let mut found = Vec::new();
        for station in stations.iter().filter(|s| s.vendor == OCPP_VENDOR) {
            let status = self.status_of(station, records.remove(&station.id), now);
            let open = matches!(
                status.connection,
                Connection::Connected | Connection::Silent
            );
            if all || open {
                found.push(status);
            }
        }
        found.sort_by(|a, b| a.station.id.cmp(&b.station.id));
        Ok(found)
    }

    /// One charge point of the registry (a station of vendor `ocpp`).
    pub async fn charge_point(&self, id: &StationId) -> Result<ChargePointStatus, MonitorError> {
        let station = self.station(id).await?;
        if station.vendor != OCPP_VENDOR {
            return Err(MonitorError::NotFound(id.clone()));
        }
        let own = self.source.record(id);
        let record = match own {
            Some(record) => Some(record),
            None => self
                .stored_charge_points()
                .await?
                .into_iter()
                .find(|r| &r.station_id == id),
        };
        Ok(self.status_of(&station, record, crate::model::now()))
    }

    /// The registry as stored, read within [`READ_WAIT`].
    pub(super) async fn stored_charge_points(
        &self,
    ) -> Result<Vec<ChargePointRecord>, MonitorError> {
        let store = &self.store;
        let doing = "reading the registry of charge points";
        Ok(crate::store::within(READ_WAIT, doing, &**store, store.charge_points()).await?)
    }

    /// A charge point with its record (`None`: it never connected) at `now`.
    fn status_of(
        &self,
        station: &Arc<Station>,
        record: Option<ChargePointRecord>,
        now: DateTime<Utc>,
    ) -> ChargePointStatus {
        let record =
            record.unwrap_or_else(|| never_connected(station, self.settings.ocpp.heartbeat_secs));
        ChargePointStatus {
            station: Arc::clone(station),
            connection: Connection::of(&record, now),
            record,
        }
    }

    /// Writes the records of charge points that changed, every [`REGISTRY_EVERY`], until
    /// `cancel`; then records every charger as disconnected (the server is stopping, its
    /// connections with it) and writes once more. A record the database did not take is
    /// written at the next turn (only its latest version is kept).
    pub async fn run_registry(&self, cancel: CancellationToken) {
        let source = Arc::clone(&self.source);
        let mut failing = false;
        let mut every = tokio::time::interval(REGISTRY_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = every.tick() => {}
            }
            let written = self.write_registry(&source).await;
            self.write_messages(&source).await;
            match (written, failing) {
                (Err(error), false) => {
                    failing = true;
                    tracing::warn!(%error, "cannot write the registry of charge points; trying again every second");
                }
                (Ok(()), true) => {
                    failing = false;
                    tracing::info!("the registry of charge points is written again");
                }
                _ => {}
            }
        }
        source.disconnect_all();
        let _ = tokio::time::timeout(READ_WAIT, self.write_messages(&source)).await;
        match tokio::time::timeout(READ_WAIT, self.write_registry(&source)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot record the charge points as disconnected at shutdown");
            }
            Err(_) => tracing::warn!(
                "the database did not take the charge points' disconnection at shutdown in time"
            ),
        }
    }

    /// Writes the frames of the message logs not written yet (with `CSM_OCPP_LOG_DATABASE`),
    /// every charger's in one transaction; what the database does not take is put back and
    /// tried at the next turn.
    async fn write_messages(&self, source: &crate::ocpp::OcppSource) {
        if !self.settings.ocpp.log_database {
            return;
        }
        let taken = source.take_unsaved();
        if taken.is_empty() {
            return;
        }
        let instance = self.cluster.id();
        let stored: Vec<crate::model::ocpp::StoredFrame> = taken
            .iter()
            .flat_map(|(id, frames)| {
                frames.iter().map(|f| crate::model::ocpp::StoredFrame {
                    id: 0,
                    station_id: id.clone(),
                    instance: instance.to_owned(),
                    at: f.at,
                    direction: f.direction,
                    connection: f.connection,
                    action: f.action.clone(),
                    frame: f.frame.clone(),
                })
            })
            .collect();
        if let Err(error) = self.store.write_ocpp_messages(&stored).await {
            tracing::debug!(%error, frames = stored.len(), "cannot write the message logs to the database; trying again");
            for (id, frames) in taken {
                source.put_back(&id, frames);
            }
        }
    }

    /// Writes the records that changed since they were last written.
    async fn write_registry(
        &self,
        source: &crate::ocpp::OcppSource,
    ) -> Result<(), crate::store::StoreError> {
        let changed = source.records(true);
        if changed.is_empty() {
            return Ok(());
        }
        let (records, versions): (Vec<_>, Vec<_>) = changed
            .into_iter()
            .map(|(record, version)| {
                let id = record.station_id.clone();
                (record, (id, version))
            })
            .unzip();
        self.store.write_charge_points(&records).await?;
        source.stored(&versions);
        Ok(())
    }
}

/// The record of a charge point that never connected.
fn never_connected(station: &Station, heartbeat_secs: u32) -> ChargePointRecord {
    ChargePointRecord {
        station_id: station.id.clone(),
        connected: false,
        connected_at: None,
        disconnected_at: None,
        last_message_at: None,
        last_action: None,
        vendor: None,
        model: None,
        firmware: None,
        firmware_status: None,
        serial: None,
        problem: None,
        ocpp_version: None,
        heartbeat_secs,
    }
}
