//! OCPP, the protocol EV chargers speak to a central system, in its versions 1.6J and 2.0.1
//! ([`Version`]): the frames ([`frame`]), meter values as real chargers send them ([`meter`])
//! and one charge point's state ([`charge_point`]) with the answers of each version ([`v16`],
//! [`v201`]), which turn what a charger pushes into the same [`crate::model::Snapshot`] a poll
//! produces; the operators' commands, named once and sent as each version says ([`command`]),
//! and each charger's message log ([`log`]).
//!
//! Lenient on input (numbers sent as text, units left out, kW and kWh, per-phase samples,
//! `Celcius`, clocks at 1970), exact on output. Liveness and ordering use csm's receive time.

pub mod charge_point;
pub mod command;
pub mod frame;
pub mod log;
pub mod meter;
pub mod password;
pub mod simulated;
pub mod source;
pub mod v16;
pub mod v201;

pub use self::charge_point::{Boot, ChargePoint, Handled, Policy, TransactionIds};
pub use self::command::{ChargerFacts, Command};
pub use self::log::{Direction, Logged, MessageLog};
pub use self::source::{CallError, ChargePointRecord, OCPP_VENDOR, OcppSource};
pub use crate::model::ocpp::Version;
