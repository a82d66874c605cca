//! The `ocpp` vendor: the charge points connected to csm. A connection feeds its charger's
//! frames in ([`OcppSource::handle`]); a refresh of the station reads what the charger last
//! said, observed now while the charger keeps to its heartbeat. A charger that disconnects, or
//! sends nothing for two heartbeat intervals and a grace (half an interval, 1–60 s), fails its
//! refreshes like an unreachable vendor: stale, with the reason, counted offline in history
//! and seen by offline alerts.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::charge_point::{ChargePoint, Handled, Policy, TransactionIds};
use crate::charger::{ChargerApi, ChargerError};
use crate::model::{Snapshot, Station, StationId};

/// The vendor name of stations that are OCPP charge points.
pub const OCPP_VENDOR: &str = "ocpp";

#[derive(Debug)]
struct Live {
    point: ChargePoint,
    /// The connection now serving it (0: none).
    connection: u64,
    heard: DateTime<Utc>,
}

/// A newer connection of the same charger took over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superseded;

/// The charge points csm knows, and which are connected.
#[derive(Debug)]
pub struct OcppSource {
    points: Mutex<HashMap<StationId, Live>>,
    connections: std::sync::atomic::AtomicU64,
    ids: TransactionIds,
    /// The heartbeat interval chargers are given.
    heartbeat: chrono::TimeDelta,
}

impl Default for OcppSource {
    fn default() -> Self {
        Self::new(crate::settings::defaults::OCPP_HEARTBEAT_SECS)
    }
}

impl OcppSource {
    /// A source whose chargers are given a heartbeat of `heartbeat_secs`.
    pub fn new(heartbeat_secs: u32) -> Self {
        Self {
            points: Mutex::default(),
            connections: Default::default(),
            ids: TransactionIds::default(),
            heartbeat: chrono::TimeDelta::seconds(i64::from(heartbeat_secs.max(1))),
        }
    }

    /// A charger connected: returns the connection's number. A newer connection of the same
    /// charger replaces an older one (which, closing later, changes nothing).
    pub fn connect(&self, id: &StationId) -> u64 {
        let connection = self
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let mut points = self.points.lock().unwrap_or_else(|p| p.into_inner());
        let live = points.entry(id.clone()).or_insert_with(|| Live {
            point: ChargePoint::new(id.clone()),
            connection: 0,
            heard: crate::model::now(),
        });
        live.connection = connection;
        live.heard = crate::model::now();
        connection
    }

    /// A connection closed; `false` when a newer one serves the charger (nothing changed).
    pub fn disconnect(&self, id: &StationId, connection: u64) -> bool {
        let mut points = self.points.lock().unwrap_or_else(|p| p.into_inner());
        match points.get_mut(id) {
            Some(live) if live.connection == connection => {
                live.connection = 0;
                true
            }
            _ => false,
        }
    }

    /// Answers a frame of connection `connection`, received now (`Ok(None)`: nothing to
    /// answer). `Err(Superseded)`: a newer connection serves the charger; close this one.
    pub fn handle(
        &self,
        id: &StationId,
        connection: u64,
        text: &str,
        policy: &Policy,
    ) -> Result<Option<Handled>, Superseded> {
        let now = crate::model::now();
        let mut points = self.points.lock().unwrap_or_else(|p| p.into_inner());
        match points.get_mut(id) {
            Some(live) if live.connection == connection => {
                live.heard = now;
                Ok(live.point.handle(text, now, policy, &self.ids))
            }
            _ => Err(Superseded),
        }
    }

    /// Forgets a removed station.
    pub fn forget(&self, id: &StationId) {
        self.points
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

#[async_trait]
impl ChargerApi for OcppSource {
    fn vendor(&self) -> &str {
        OCPP_VENDOR
    }

    fn endpoint(&self) -> Option<String> {
        None
    }

    async fn fetch(&self, station: &Station) -> Result<Snapshot, ChargerError> {
        let points = self.points.lock().unwrap_or_else(|p| p.into_inner());
        match points.get(&station.id) {
            Some(live) if live.connection != 0 => {
                let now = crate::model::now();
                let grace = (self.heartbeat / 2).clamp(
                    chrono::TimeDelta::seconds(1),
                    chrono::TimeDelta::seconds(60),
                );
                if now - live.heard > self.heartbeat * 2 + grace {
                    return Err(ChargerError::Silent {
                        vendor: OCPP_VENDOR.into(),
                        station: station.id.to_string(),
                        since: live.heard,
                    });
                }
                Ok(live.point.snapshot(now))
            }
            _ => Err(ChargerError::Disconnected {
                vendor: OCPP_VENDOR.into(),
                station: station.id.to_string(),
            }),
        }
    }

    async fn list_stations(&self) -> Result<Vec<Station>, ChargerError> {
        Err(ChargerError::Unsupported {
            vendor: OCPP_VENDOR.into(),
            message:
                "charge points register themselves when they connect; there is no list to import"
                    .into(),
        })
    }

    async fn probe(&self) -> Result<(), ChargerError> {
        Ok(())
    }
}
