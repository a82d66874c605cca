//! csm-core: the charging station monitor as a library.
//!
//! - [`model`]: stations, ports, readings, snapshots, status events.
//! - [`measure`]: the physical range of each measurement; values outside it are dropped.
//! - [`time`]: times in JSON documents, written as RFC 3339 by hand (a station's answer holds
//!   some thirty of them).
//! - [`backoff`]: the one backoff between attempts (vendor requests, alert deliveries).
//! - [`secret`]: the one type that carries a secret, and how URLs holding one are shown.
//! - [`settings`]: what the core can be configured with (the binaries map their flags onto it).
//! - [`store`]: durable storage (`Store`: MySQL/MariaDB, SQLite).
//! - [`cache`]: the live cache (`StatusCache`: Redis, in-process).
//! - [`charger`]: where snapshots come from (`ChargerApi`: HTTP vendor profiles, simulator).
//! - [`refresh`]: the refresh engine — bounded, deduplicated, retrying jobs and a batch writer.
//! - [`monitor`]: the one door the server and the CLI go through.
//! - [`views`]: the JSON documents of the API and the CLI's `--json`.
//! - [`import`]: station lists from CSV and JSON files.
//! - [`alerts`]: rules that fire alerts and the channels that deliver them.
//! - [`ocpp`]: OCPP 1.6J frames, meter values and charge points (the central-system side).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alerts;
pub mod backoff;
pub mod cache;
pub mod catalog;
pub mod charger;
pub mod cluster;
pub mod demo;
pub mod error;
pub mod feed;
pub mod history;
pub mod import;
pub mod measure;
pub mod model;
pub mod monitor;
pub mod ocpp;
mod rate;
pub mod redis_link;
pub mod refresh;
pub mod secret;
pub mod settings;
pub mod store;
pub mod time;
pub mod views;

pub use crate::monitor::{Monitor, MonitorError};
