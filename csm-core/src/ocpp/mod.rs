//! OCPP 1.6J, the protocol EV chargers speak to a central system: the frames
//! ([`frame`]), meter values as real chargers send them ([`meter`]) and one charge point's
//! state and answers ([`charge_point`]), which turn what a charger pushes into the same
//! [`crate::model::Snapshot`] a poll produces; the operators' commands ([`command`]) and each
//! charger's message log ([`log`]).
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

pub use self::charge_point::{Boot, ChargePoint, Handled, Policy, TransactionIds, port_status};
pub use self::command::{ChargerFacts, Command};
pub use self::log::{Direction, Logged, MessageLog};
pub use self::source::{CallError, ChargePointRecord, OCPP_VENDOR, OcppSource};
