//! The JSON document of the cluster, shared by `GET /api/cluster` and
//! `csm-cli cluster status --json`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cluster::Member;
use crate::time;

/// One live instance.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceJson {
    /// Its id (`CSM_INSTANCE_ID`, or made up at its start).
    pub id: String,
    /// csm's version it runs.
    pub version: String,
    /// When it started.
    #[serde(serialize_with = "time::rfc3339")]
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat (every half second while it runs).
    #[serde(serialize_with = "time::rfc3339")]
    pub heartbeat_at: DateTime<Utc>,
    /// Slots of stations it holds, of 1,024.
    pub slots: u16,
    /// Polled stations it refreshes.
    pub stations: usize,
    /// OCPP chargers connected to it.
    pub chargers: usize,
    /// Whether it is the instance that answered.
    pub this: bool,
}

/// The live instances (`GET /api/cluster`).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterJson {
    /// Whether instances share the work through Redis (`false`: this instance alone, as
    /// without Redis or on SQLite).
    pub shared: bool,
    /// The instance that answered (`null` from the CLI, which is no instance).
    pub answered_by: Option<String>,
    /// The live instances, by id.
    pub instances: Vec<InstanceJson>,
}

impl ClusterJson {
    /// The document of `members`, answered by instance `this` (if any).
    pub fn of(shared: bool, this: Option<&str>, members: Vec<Member>) -> Self {
        Self {
            shared,
            answered_by: this.map(str::to_owned),
            instances: members
                .into_iter()
                .map(|m| InstanceJson {
                    this: this == Some(m.id.as_str()),
                    id: m.id,
                    version: m.version,
                    started_at: m.started_at,
                    heartbeat_at: m.heartbeat_at,
                    slots: m.slots,
                    stations: m.stations,
                    chargers: m.chargers,
                })
                .collect(),
        }
    }
}
