//! csm-core: the charging station monitor as a library.
//!
//! - [`model`]: stations, ports, readings, snapshots, status events.
//! - [`settings`]: configuration from flags, environment and `.env`.
//! - [`store`]: durable storage (`Store`: MySQL/MariaDB, SQLite).
//! - [`cache`]: the live cache (`StatusCache`: Redis, in-process).
//! - [`charger`]: where snapshots come from (`ChargerApi`: HTTP vendor profiles, simulator).
//! - [`refresh`]: the refresh engine — bounded, deduplicated, retrying jobs and a batch writer.
//! - [`monitor`]: the service the server and CLI are built on.
//! - [`import`]: station lists from CSV and JSON files.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
pub mod charger;
pub mod error;
pub mod import;
pub mod model;
pub mod monitor;
pub mod refresh;
pub mod settings;
pub mod store;

pub use crate::monitor::{Monitor, MonitorError};
