//! End-to-end tests of the workspace, built as one test binary. Tests that need MariaDB or
//! Redis use the real services (`CSM_TEST_MYSQL_URL`, `CSM_TEST_REDIS_URL`; `scripts/test.sh`
//! starts them) and fail loudly when they cannot be reached.

mod helpers;

mod access;
mod alerts;
mod api;
mod cache;
mod charger;
mod cli;
mod cluster;
mod engine;
mod faults;
mod history;
mod hostile;
mod ocpp;
mod ocpp201;
mod repository;
mod security;
mod store;
mod tls;
