//! csm, the charging station monitor.
//!
//! This crate holds the workspace's end-to-end tests (`integration/`, against real MariaDB and
//! Redis). The code lives in three crates, re-exported here:
//! [`core`] (the library), [`server`] (REST API, live events, dashboard) and [`cli`].
#![forbid(unsafe_code)]

pub use csm_cli as cli;
pub use csm_core as core;
pub use csm_server as server;
