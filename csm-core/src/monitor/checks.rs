//! Whether the monitor's dependencies answer: readiness (database and cache, for `/readyz`)
//! and the connection checks of `csm-cli test-connection` (plus every vendor with a base URL).

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Monitor;
use super::MonitorError;
use crate::charger::{Chargers, Checked, SIMULATOR_VENDOR};
use crate::error::InvalidInput;
use crate::settings::Settings;

/// Longest a connection check waits for an answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the store and the cache answer.
#[derive(Clone, Debug)]
pub struct Readiness {
    /// The store's answer.
    pub database: Result<(), String>,
    /// The cache's answer.
    pub cache: Result<(), String>,
}

/// One checked connection.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionCheck {
    /// `database`, `cache` or `vendor`.
    pub kind: &'static str,
    /// What was checked (backend and address, vendor and base URL), without credentials.
    pub target: String,
    /// Whether it answered.
    pub ok: bool,
    /// How long it took.
    pub millis: u128,
    /// Why it failed.
    pub error: Option<String>,
}

async fn check<F>(kind: &'static str, target: String, probe: F) -> ConnectionCheck
where
    F: Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    let result = match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    };
    ConnectionCheck {
        kind,
        target,
        ok: result.is_ok(),
        millis: started.elapsed().as_millis(),
        error: result.err(),
    }
}

impl Monitor {
    /// Whether the store and the cache answer.
    pub async fn readiness(&self) -> Readiness {
        let (database, cache) = tokio::join!(self.store.ping(), self.cache.ping());
        Readiness {
            database: database.map_err(|e| e.to_string()),
            cache: cache.map_err(|e| e.to_string()),
        }
    }

    /// Checks the database, the cache and every vendor that has a base URL, all at once.
    pub async fn check_connections(&self) -> Vec<ConnectionCheck> {
        let store = &self.store;
        let cache = &self.cache;
        let database = check("database", self.database(), async {
            store.ping().await.map_err(|e| e.to_string())
        });
        let cached = check(
            "cache",
            format!("{} {}", cache.kind(), cache.target()),
            async { cache.ping().await.map_err(|e| e.to_string()) },
        );
        let vendors = self.engine.chargers().iter().filter_map(|api| {
            let endpoint = api.endpoint()?;
            Some(check(
                "vendor",
                format!("{} {endpoint}", api.vendor()),
                async move { api.probe().await.map_err(|e| e.to_string()) },
            ))
        });
        let (database, cached, vendors) =
            tokio::join!(database, cached, futures_util::future::join_all(vendors));
        let mut checks = vec![database, cached];
        checks.extend(vendors);
        checks
    }

    /// Vendor profiles that have no base URL, so [`Monitor::check_connections`] cannot check
    /// them.
    pub fn unchecked_vendors(&self) -> Vec<String> {
        self.engine
            .chargers()
            .iter()
            .filter(|api| api.endpoint().is_none() && api.vendor() != SIMULATOR_VENDOR)
            .map(|api| api.vendor().to_owned())
            .collect()
    }

    /// Asks a vendor once for a station's ports and says what each pointer of its profile
    /// found (`csm-cli vendors check`). Needs only the vendor settings: no database, no cache.
    pub async fn check_vendor(
        settings: &Settings,
        vendor: &str,
        station_id: &str,
    ) -> Result<Checked, MonitorError> {
        let chargers = Chargers::from_settings(settings)
            .map_err(|e| MonitorError::Invalid(InvalidInput::new("vendors", e.to_string())))?;
        Ok(chargers.get(vendor)?.inspect(station_id).await?)
    }
}
