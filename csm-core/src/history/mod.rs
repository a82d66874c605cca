//! History: what happened at each port over time, and the statistics built on it.
//!
//! Three kinds of record, derived by the refresh engine from what it sees and written through
//! the same batch writer as status events:
//! - **readings** ([`ReadingRow`]): a port's status and measurements at an instant, stored only
//!   when the status changed, a measurement moved beyond its deadband, or a heartbeat passed
//!   ([`record`]);
//! - **sessions** ([`SessionRow`]): a port's stay in `occupied`, from the events;
//! - **hourly roll-ups** ([`HourDelta`]): seconds per status, sessions started and energy, per
//!   port and UTC hour, added to as each stay closes, and summed per station and for the
//!   fleet.
//!
//! Statistics ([`stats`]) read roll-ups and sessions, never raw readings; the stay running now
//! is added when reading. The "free in about N minutes" estimate ([`estimate`]) reads recent
//! session lengths. The demo's simulated past is derived the same way ([`crate::demo`]).

pub mod availability;
pub mod estimate;
pub mod record;
pub mod stats;

pub use crate::model::history::{
    HistoryQuery, HourDelta, HourRow, HourTotals, ReadingRow, RollUp, SessionRow, hour_of,
    split_by_hour, status_index,
};
