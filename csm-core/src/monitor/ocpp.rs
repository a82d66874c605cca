//! OCPP charge points through the monitor: who may connect (registration), the frames of a
//! connection, and its end. Each change a charger reports runs through the same refresh as a
//! poll (the `ocpp` source answers with what the charger last said), so cache, events,
//! history, alerts and the live stream treat it like any station.

use std::sync::Arc;

use super::{Monitor, MonitorError};
use crate::model::{Station, StationId};
use crate::ocpp::{OCPP_VENDOR, OcppSource, Policy};
use crate::settings::Registration;

/// What to do with one frame of a charger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcppReply {
    /// The frame to send back (`None`: the charger answered a call of csm's).
    pub reply: Option<String>,
    /// Whether a port changed: refresh the station ([`Monitor::refresh_one`]) after replying.
    pub changed: bool,
    /// A newer connection of the charger took over: close this one.
    pub superseded: bool,
}

impl Monitor {
    fn ocpp_source(&self) -> Result<&Arc<OcppSource>, MonitorError> {
        self.engine.chargers().ocpp().ok_or_else(|| {
            MonitorError::Charger(crate::charger::ChargerError::UnknownVendor {
                vendor: OCPP_VENDOR.into(),
                known: self.vendors().join(", "),
            })
        })
    }

    /// A charger asks to connect as `charge_point_id`: its station (added now when
    /// registration is `auto`) and the connection's number.
    pub async fn ocpp_connect(
        &self,
        charge_point_id: &str,
    ) -> Result<(Arc<Station>, u64), MonitorError> {
        let id = StationId::parse(charge_point_id).map_err(|e| e.at("charge point id"))?;
        let source = self.ocpp_source()?;
        let station = match self.station(&id).await {
            Ok(station) => station,
            Err(MonitorError::NotFound(_))
                if self.settings.ocpp_registration() == Registration::Auto =>
            {
                let station = Station {
                    id: id.clone(),
                    name: id.to_string(),
                    address: None,
                    lat: None,
                    lng: None,
                    vendor: OCPP_VENDOR.into(),
                    enabled: true,
                    port_count: 0,
                };
                match self.add_station(&station).await {
                    // Two connections at once: the other added it.
                    Ok(()) | Err(MonitorError::Store(crate::store::StoreError::Conflict(_))) => {}
                    Err(error) => return Err(error),
                }
                tracing::info!(station = %id, "a new charge point connected and was added (CSM_OCPP_REGISTRATION=auto)");
                self.station(&id).await?
            }
            Err(error) => return Err(error),
        };
        if station.vendor != OCPP_VENDOR {
            return Err(MonitorError::Conflict(format!(
                "station {id} is a {} station, not an OCPP charge point (vendor ocpp)",
                station.vendor
            )));
        }
        Ok((station, source.connect(&id)))
    }

    /// Answers one frame of a charger's connection.
    pub fn ocpp_frame(
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
            match self
                .ocpp_source()?
                .handle(&station.id, connection, text, &policy)
            {
                Ok(handled) => OcppReply {
                    changed: handled.as_ref().is_some_and(|h| h.changed),
                    reply: handled.map(|h| h.reply),
                    superseded: false,
                },
                Err(_) => OcppReply {
                    reply: None,
                    changed: false,
                    superseded: true,
                },
            },
        )
    }

    /// A charger's connection ended; returns whether it was the one serving the charger
    /// (then refresh the station: it is now unreachable).
    pub fn ocpp_disconnect(&self, station: &Station, connection: u64) -> bool {
        self.ocpp_source()
            .map(|source| source.disconnect(&station.id, connection))
            .unwrap_or(false)
    }
}
