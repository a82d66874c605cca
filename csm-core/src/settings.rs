//! Settings of the core: a plain struct in groups (database, cache, engine, vendors, simulator,
//! manual refresh), with every default written once in [`defaults`].
//!
//! The core reads no flags and no environment: each binary maps its own flags (`CSM_*`
//! variables, `.env`) onto these values, and a program that embeds the core fills them in
//! itself. [`Settings::validate`] names the variable to fix when a value cannot work.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::alerts::AllowedHosts;
use crate::secret::redact_url;

/// The default of every setting, written once: `Settings::default()` and the binaries' flags
/// both read them.
pub mod defaults {
    /// Database used when `CSM_DATABASE_URL` is not set: a SQLite file in the working directory.
    pub const DATABASE_URL: &str = "sqlite://csm.db";
    /// Largest number of pooled database connections.
    pub const DB_MAX_CONNECTIONS: u32 = 10;
    /// Prefix of every cache key.
    pub const CACHE_PREFIX: &str = "csm:";
    /// With Redis: milliseconds a local copy of a cached station is kept.
    pub const CACHE_LOCAL_TTL_MS: u64 = 1000;
    /// Cache entries live this many refresh intervals (unless `CSM_CACHE_TTL_SECS` says).
    pub const CACHE_TTL_INTERVALS: u64 = 3;
    /// Seconds between two refreshes of every station.
    pub const REFRESH_INTERVAL_SECS: u64 = 30;
    /// Refresh jobs at once.
    pub const CONCURRENCY: usize = 64;
    /// Retries of a transient vendor failure.
    pub const MAX_RETRIES: u32 = 3;
    /// Status events held in memory while the database is unreachable.
    pub const WRITE_BUFFER_EVENTS: usize = 200_000;
    /// Folder of vendor profiles.
    pub const VENDORS_DIR: &str = "vendors";
    /// Total timeout of one vendor request, milliseconds.
    pub const HTTP_TIMEOUT_MS: u64 = 5000;
    /// Timeout of opening a connection to a vendor, milliseconds.
    pub const HTTP_CONNECT_TIMEOUT_MS: u64 = 2000;
    /// Largest vendor response accepted, bytes.
    pub const HTTP_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
    /// Speed of the simulator's clock.
    pub const SIMULATOR_SPEED: f64 = 1.0;
    /// Seed of the simulated fleet.
    pub const SIMULATOR_SEED: u64 = 42;
    /// A manual refresh is skipped while the station's data is younger than this, seconds.
    pub const MANUAL_REFRESH_COOLDOWN_SECS: u64 = 10;
    /// Manual refreshes accepted per minute across all stations.
    pub const MANUAL_REFRESH_PER_MINUTE: u32 = 120;
    /// Time zone of hours and weekdays in statistics.
    pub const TIMEZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;
    /// Days raw readings are kept.
    pub const READINGS_DAYS: u32 = 7;
    /// Days status events and sessions are kept.
    pub const EVENTS_DAYS: u32 = 365;
    /// Days the audit log is kept.
    pub const AUDIT_DAYS: u32 = 365;
    /// Days the chargers' message logs are kept in the database.
    pub const OCPP_LOG_DAYS: u32 = 7;
    /// A reading is stored when the voltage moved more than this many volts.
    pub const DEADBAND_VOLTS: f64 = 5.0;
    /// … the current more than this many amperes.
    pub const DEADBAND_AMPS: f64 = 0.5;
    /// … the power more than this many watts.
    pub const DEADBAND_WATTS: f64 = 100.0;
    /// … the session's energy more than this many kWh.
    pub const DEADBAND_KWH: f64 = 0.1;
    /// A reading is stored at least this often (seconds) while a port reports one.
    pub const HEARTBEAT_SECS: u64 = 900;
    /// Readings held in memory while the database is unreachable.
    pub const WRITE_BUFFER_READINGS: usize = 200_000;
    /// The wait before the first retry of an alert's delivery, milliseconds.
    pub const ALERT_RETRY_BASE_MS: u64 = 2_000;
    /// The heartbeat interval given to OCPP chargers, seconds.
    pub const OCPP_HEARTBEAT_SECS: u32 = 300;
    /// Seconds between WebSocket pings to OCPP chargers.
    pub const OCPP_PING_SECS: u32 = 30;
    /// Seconds a new OCPP connection has to send its first frame (an unregistered charger:
    /// its BootNotification) before it is closed.
    pub const OCPP_FIRST_FRAME_SECS: u32 = 20;
    /// Most OCPP charge points auto registration brings the catalogue to.
    pub const OCPP_AUTO_MAX: usize = 1_000;
    /// Charge points auto registration adds per minute (a burst of as many at once).
    pub const OCPP_AUTO_PER_MINUTE: u32 = 120;
}

/// Everything the core can be configured with.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Where stations, port state and history are stored.
    pub database: DatabaseSettings,
    /// Where live state is cached.
    pub cache: CacheSettings,
    /// How the refresh engine works.
    pub engine: EngineSettings,
    /// Vendor profiles and their HTTP client.
    pub vendors: VendorSettings,
    /// The built-in simulated vendor.
    pub simulator: SimulatorSettings,
    /// Limits of manual refreshes (the API's refresh button).
    pub manual_refresh: ManualRefreshSettings,
    /// What history is kept, and how statistics count time.
    pub history: HistorySettings,
    /// Where alerts may be sent.
    pub alerts: AlertSettings,
    /// OCPP charge points connecting to csm.
    pub ocpp: OcppSettings,
    /// Station served by `GET /api/ports`. Unset: the first station.
    pub default_station: Option<crate::model::StationId>,
    /// This instance's id in a cluster (`CSM_INSTANCE_ID`). Unset: made up at start from the
    /// host's name and the process id.
    pub instance_id: Option<String>,
    /// Seed demo stations on the simulator into an empty database. Unset: only in the embedded
    /// default (no database URL).
    pub demo: Option<bool>,
}

/// Which charge points may connect over OCPP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// Only stations added with vendor `ocpp`.
    Known,
    /// A charger that connects is added as a station.
    Auto,
}

/// OCPP charge points connecting to csm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcppSettings {
    /// Who may connect; unset: `auto` in the embedded default, else `known`.
    pub registration: Option<Registration>,
    /// Accept a charger that offers no WebSocket subprotocol at all (some firmware does not);
    /// it is spoken to in OCPP 1.6.
    pub allow_no_subprotocol: bool,
    /// The version csm picks when a charger offers both `ocpp2.0.1` and `ocpp1.6`.
    pub preferred_version: crate::model::ocpp::Version,
    /// The heartbeat interval csm gives chargers at boot, seconds.
    pub heartbeat_secs: u32,
    /// Accept every Authorize (csm keeps no list of id tags).
    pub accept_authorize: bool,
    /// Refuse chargers that have no password.
    pub require_password: bool,
    /// Seconds between the WebSocket pings csm sends each charger (0: none).
    pub ping_secs: u32,
    /// After a boot, set the charger's `MeterValueSampleInterval` to this many seconds
    /// (unset: leave the charger's own).
    pub meter_interval_secs: Option<u32>,
    /// Seconds a new connection has to send its first frame (an unregistered charger: its
    /// BootNotification) before it is closed.
    pub first_frame_secs: u32,
    /// Auto registration adds no charge point once the catalogue holds this many.
    pub auto_max: usize,
    /// Charge points auto registration adds per minute.
    pub auto_per_minute: u32,
    /// Whether each charger's message log is written to the database too (kept
    /// [`HistorySettings::ocpp_log_days`]).
    pub log_database: bool,
}

impl Default for OcppSettings {
    fn default() -> Self {
        Self {
            registration: None,
            allow_no_subprotocol: false,
            preferred_version: crate::model::ocpp::Version::V201,
            heartbeat_secs: defaults::OCPP_HEARTBEAT_SECS,
            accept_authorize: true,
            require_password: false,
            ping_secs: defaults::OCPP_PING_SECS,
            meter_interval_secs: None,
            first_frame_secs: defaults::OCPP_FIRST_FRAME_SECS,
            auto_max: defaults::OCPP_AUTO_MAX,
            auto_per_minute: defaults::OCPP_AUTO_PER_MINUTE,
            log_database: false,
        }
    }
}

/// Where alerts may be sent, and how their delivery is retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertSettings {
    /// Hosts alert channels may post to (`oapi.dingtalk.com`, `127.0.0.1`); none: any.
    pub allowed_hosts: AllowedHosts,
    /// The wait before the first retry of a failed delivery, milliseconds; it doubles with
    /// each attempt up to 10 minutes (with jitter).
    pub retry_base_ms: u64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: AllowedHosts::default(),
            retry_base_ms: defaults::ALERT_RETRY_BASE_MS,
        }
    }
}

/// The database.
#[derive(Clone)]
pub struct DatabaseSettings {
    /// `mysql://user:pass@host:3306/db` or `sqlite://path.db` (its password makes it a secret);
    /// unset: the embedded default ([`defaults::DATABASE_URL`]).
    pub url: Option<crate::secret::Secret>,
    /// Largest number of pooled connections.
    pub max_connections: u32,
}

/// The live cache.
#[derive(Clone)]
pub struct CacheSettings {
    /// Redis for the shared cache; unset: an in-process cache.
    pub redis_url: Option<String>,
    /// Prefix of every cache key, so several deployments can share one Redis.
    pub prefix: String,
    /// Lifetime of an entry in seconds; unset: three refresh intervals.
    pub ttl_secs: Option<u64>,
    /// With Redis: how long this process keeps a local copy of a station, milliseconds (0:
    /// always ask Redis). Bounds how stale a read is when several instances write.
    pub local_ttl_ms: u64,
}

/// The refresh engine.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// Seconds between two refreshes of every station.
    pub refresh_interval_secs: u64,
    /// Refresh jobs that may run at once.
    pub concurrency: usize,
    /// Retries of a transient vendor failure (timeout, connection error, 5xx, 429).
    pub max_retries: u32,
    /// Status events kept in memory while the database is unreachable; older ones are dropped
    /// (and counted) beyond this.
    pub write_buffer_events: usize,
}

/// Vendor profiles and the HTTP client that reads them.
#[derive(Clone, Debug)]
pub struct VendorSettings {
    /// Folder of vendor profiles (`*.toml`); a missing folder holds none.
    pub dir: PathBuf,
    /// Base URL overrides by profile, keyed by `<NAME>` of `CSM_VENDOR_<NAME>_BASE_URL`
    /// (the profile name upper-cased, `-` written as `_`).
    pub base_urls: BTreeMap<String, String>,
    /// Total timeout of one vendor request, milliseconds.
    pub http_timeout_ms: u64,
    /// Timeout of opening a connection to a vendor, milliseconds.
    pub http_connect_timeout_ms: u64,
    /// Largest vendor response accepted, bytes.
    pub http_max_body_bytes: usize,
    /// Certificates of authorities a vendor's certificate may be issued by besides the
    /// system's (a PEM file), for vendor APIs behind a private CA.
    pub http_ca_file: Option<PathBuf>,
}

/// The built-in simulator.
#[derive(Clone, Debug)]
pub struct SimulatorSettings {
    /// Speed of the simulated clock (1 = real time; 60 = an hour a minute).
    pub speed: f64,
    /// Seed of the simulated fleet.
    pub seed: u64,
}

/// History: which readings are stored, how long everything is kept, and the time zone hours
/// and weekdays are counted in.
#[derive(Clone, Debug, PartialEq)]
pub struct HistorySettings {
    /// IANA time zone of statistics (`Asia/Shanghai`); everything stored is UTC.
    pub timezone: chrono_tz::Tz,
    /// Days raw readings are kept.
    pub readings_days: u32,
    /// Days status events and sessions are kept (hourly roll-ups are kept for good).
    pub events_days: u32,
    /// Days the audit log is kept.
    pub audit_days: u32,
    /// Days the chargers' message logs are kept in the database (when kept there).
    pub ocpp_log_days: u32,
    /// A reading is stored when a measurement moved beyond its deadband since the last stored
    /// one (or the status changed, or a new heartbeat period began).
    pub deadband: Deadband,
    /// A port's first reading in every period of this many seconds (aligned to the clock) is
    /// stored.
    pub heartbeat_secs: u64,
    /// Readings held in memory while the database is unreachable; older ones are dropped (and
    /// counted) beyond this. Status events keep priority over readings.
    pub write_buffer_readings: usize,
}

/// How far each measurement may move before a new reading is stored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Deadband {
    /// Volts.
    pub voltage: f64,
    /// Amperes.
    pub current: f64,
    /// Watts.
    pub power: f64,
    /// kWh.
    pub energy_kwh: f64,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            timezone: defaults::TIMEZONE,
            readings_days: defaults::READINGS_DAYS,
            events_days: defaults::EVENTS_DAYS,
            audit_days: defaults::AUDIT_DAYS,
            ocpp_log_days: defaults::OCPP_LOG_DAYS,
            deadband: Deadband {
                voltage: defaults::DEADBAND_VOLTS,
                current: defaults::DEADBAND_AMPS,
                power: defaults::DEADBAND_WATTS,
                energy_kwh: defaults::DEADBAND_KWH,
            },
            heartbeat_secs: defaults::HEARTBEAT_SECS,
            write_buffer_readings: defaults::WRITE_BUFFER_READINGS,
        }
    }
}

/// Limits of manual refreshes, which protect vendor APIs from users of csm.
#[derive(Clone, Debug)]
pub struct ManualRefreshSettings {
    /// A manual refresh is skipped while the station's data is younger than this, seconds.
    pub cooldown_secs: u64,
    /// Manual refreshes accepted per minute across all stations.
    pub per_minute: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: defaults::DB_MAX_CONNECTIONS,
        }
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            prefix: defaults::CACHE_PREFIX.into(),
            ttl_secs: None,
            local_ttl_ms: defaults::CACHE_LOCAL_TTL_MS,
        }
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            refresh_interval_secs: defaults::REFRESH_INTERVAL_SECS,
            concurrency: defaults::CONCURRENCY,
            max_retries: defaults::MAX_RETRIES,
            write_buffer_events: defaults::WRITE_BUFFER_EVENTS,
        }
    }
}

impl Default for VendorSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from(defaults::VENDORS_DIR),
            base_urls: BTreeMap::new(),
            http_timeout_ms: defaults::HTTP_TIMEOUT_MS,
            http_connect_timeout_ms: defaults::HTTP_CONNECT_TIMEOUT_MS,
            http_max_body_bytes: defaults::HTTP_MAX_BODY_BYTES,
            http_ca_file: None,
        }
    }
}

impl Default for SimulatorSettings {
    fn default() -> Self {
        Self {
            speed: defaults::SIMULATOR_SPEED,
            seed: defaults::SIMULATOR_SEED,
        }
    }
}

impl Default for ManualRefreshSettings {
    fn default() -> Self {
        Self {
            cooldown_secs: defaults::MANUAL_REFRESH_COOLDOWN_SECS,
            per_minute: defaults::MANUAL_REFRESH_PER_MINUTE,
        }
    }
}

/// A setting that cannot work, with the variable to fix.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct SettingsError {
    /// The environment variable (or flag) at fault.
    pub variable: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl SettingsError {
    /// An error of `variable`.
    pub fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

impl Settings {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let url = self.database.url();
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("sqlite" | "mysql" | "mariadb")) {
            return Err(SettingsError::new(
                "CSM_DATABASE_URL",
                format!(
                    "{:?} is not a database URL csm can use; write mysql://user:password@host:3306/database or sqlite://path/to/file.db",
                    redact_url(url)
                ),
            ));
        }
        if let Some(redis) = &self.cache.redis_url
            && !(redis.starts_with("redis://")
                || redis.starts_with("rediss://")
                || redis.starts_with("unix://"))
        {
            return Err(SettingsError::new(
                "CSM_REDIS_URL",
                format!(
                    "{:?} is not a Redis URL; write redis://host:6379 (or leave it unset for the in-process cache)",
                    redact_url(redis)
                ),
            ));
        }
        let positive: [(&'static str, u64); 5] = [
            (
                "CSM_REFRESH_INTERVAL_SECS",
                self.engine.refresh_interval_secs,
            ),
            ("CSM_CONCURRENCY", self.engine.concurrency as u64),
            ("CSM_HTTP_TIMEOUT_MS", self.vendors.http_timeout_ms),
            (
                "CSM_HTTP_CONNECT_TIMEOUT_MS",
                self.vendors.http_connect_timeout_ms,
            ),
            (
                "CSM_DB_MAX_CONNECTIONS",
                u64::from(self.database.max_connections),
            ),
        ];
        for (variable, value) in positive {
            if value == 0 {
                return Err(SettingsError::new(variable, "must be greater than 0"));
            }
        }
        if self.cache.ttl_secs == Some(0) {
            return Err(SettingsError::new(
                "CSM_CACHE_TTL_SECS",
                "must be greater than 0 (or unset for three refresh intervals)",
            ));
        }
        if !(self.simulator.speed.is_finite() && self.simulator.speed > 0.0) {
            return Err(SettingsError::new(
                "CSM_SIMULATOR_SPEED",
                "must be a positive number",
            ));
        }
        let deadband = self.history.deadband;
        for (variable, value) in [
            ("CSM_DEADBAND_VOLTS", deadband.voltage),
            ("CSM_DEADBAND_AMPS", deadband.current),
            ("CSM_DEADBAND_WATTS", deadband.power),
            ("CSM_DEADBAND_KWH", deadband.energy_kwh),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(SettingsError::new(variable, "must be 0 or more"));
            }
        }
        if self.history.heartbeat_secs == 0 {
            return Err(SettingsError::new(
                "CSM_HISTORY_HEARTBEAT_SECS",
                "must be greater than 0",
            ));
        }
        if self.history.readings_days == 0 || self.history.events_days == 0 {
            return Err(SettingsError::new(
                "CSM_RETAIN_READINGS_DAYS",
                "retention must be at least a day (CSM_RETAIN_READINGS_DAYS, CSM_RETAIN_EVENTS_DAYS)",
            ));
        }
        if self.history.ocpp_log_days == 0 {
            return Err(SettingsError::new(
                "CSM_RETAIN_OCPP_LOG_DAYS",
                "the chargers' message logs must be kept at least a day",
            ));
        }
        if self.history.audit_days == 0 {
            return Err(SettingsError::new(
                "CSM_RETAIN_AUDIT_DAYS",
                "the audit log must be kept at least a day",
            ));
        }
        if self.cache.prefix.contains(char::is_whitespace) {
            return Err(SettingsError::new(
                "CSM_CACHE_PREFIX",
                "must not contain spaces",
            ));
        }
        if let Some(id) = &self.instance_id
            && (id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
        {
            return Err(SettingsError::new(
                "CSM_INSTANCE_ID",
                format!(
                    "{id:?} is not an instance id: use 1 to 64 letters, digits, '-', '_', '.' or ':'"
                ),
            ));
        }
        Ok(())
    }

    /// True when nothing points csm at a real deployment: the embedded SQLite default.
    pub fn is_embedded_default(&self) -> bool {
        self.database.url.is_none()
    }

    /// Whether this instance coordinates with others: with Redis and a shared database (not
    /// SQLite), instances of one cache prefix form a cluster.
    pub fn is_clustered(&self) -> bool {
        self.cache.redis_url.is_some() && !self.database.url().starts_with("sqlite:")
    }

    /// Whether to seed demo stations into an empty database.
    pub fn seeds_demo(&self) -> bool {
        self.demo.unwrap_or_else(|| self.is_embedded_default())
    }

    /// Who may connect over OCPP: as set, else `auto` in the embedded default and `known`
    /// otherwise.
    pub fn ocpp_registration(&self) -> Registration {
        self.ocpp
            .registration
            .unwrap_or(if self.is_embedded_default() {
                Registration::Auto
            } else {
                Registration::Known
            })
    }

    /// Lifetime of cache entries: `ttl_secs`, else three refresh intervals.
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(
            self.cache.ttl_secs.unwrap_or(
                self.engine
                    .refresh_interval_secs
                    .saturating_mul(defaults::CACHE_TTL_INTERVALS),
            ),
        )
    }

    /// Data older than this is shown as stale: two refresh intervals plus one vendor timeout.
    pub fn stale_after(&self) -> Duration {
        self.engine.refresh_interval() * 2 + self.vendors.http_timeout()
    }
}

impl DatabaseSettings {
    /// The database URL in use (the embedded default when unset).
    pub fn url(&self) -> &str {
        self.url
            .as_ref()
            .map_or(defaults::DATABASE_URL, crate::secret::Secret::expose)
    }
}

impl EngineSettings {
    /// Interval between refreshes of every station.
    pub fn refresh_interval(&self) -> Duration {
        Duration::from_secs(self.refresh_interval_secs)
    }
}

impl VendorSettings {
    /// Total timeout of a vendor request.
    pub fn http_timeout(&self) -> Duration {
        Duration::from_millis(self.http_timeout_ms)
    }

    /// Timeout of opening a connection to a vendor.
    pub fn http_connect_timeout(&self) -> Duration {
        Duration::from_millis(self.http_connect_timeout_ms)
    }

    /// The base URL override of vendor profile `vendor`, if one is set (`<NAME>` of
    /// `CSM_VENDOR_<NAME>_BASE_URL` is the profile name upper-cased with `-` written as `_`).
    pub fn base_url(&self, vendor: &str) -> Option<&str> {
        self.base_urls
            .get(&vendor_env_name(vendor))
            .map(String::as_str)
    }
}

impl ManualRefreshSettings {
    /// Minimum age of data before a manual refresh runs.
    pub fn cooldown(&self) -> Duration {
        Duration::from_secs(self.cooldown_secs)
    }
}

/// `<NAME>` of `CSM_VENDOR_<NAME>_BASE_URL` for a profile name.
pub fn vendor_env_name(vendor: &str) -> String {
    vendor.to_ascii_uppercase().replace('-', "_")
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(self.url()))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl fmt::Debug for CacheSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheSettings")
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("prefix", &self.prefix)
            .field("ttl_secs", &self.ttl_secs)
            .field("local_ttl_ms", &self.local_ttl_ms)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let mut settings = Settings::default();
        settings.database.url = Some("mysql://root:s3cret-pw@db:3306/csm".into());
        settings.cache.redis_url = Some("redis://:redis-pw@cache:6379".into());
        let debug = format!("{settings:?}");
        for secret in ["s3cret-pw", "redis-pw"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
        assert!(debug.contains("db:3306"));
    }

    #[test]
    fn unusable_values_name_their_variable() {
        let mut bad_db = Settings::default();
        bad_db.database.url = Some("postgres://x".into());
        assert_eq!(bad_db.validate().unwrap_err().variable, "CSM_DATABASE_URL");
        let mut zero = Settings::default();
        zero.engine.concurrency = 0;
        assert_eq!(zero.validate().unwrap_err().variable, "CSM_CONCURRENCY");
        assert!(Settings::default().validate().is_ok());
    }

    #[test]
    fn cache_ttl_defaults_to_three_intervals() {
        let mut settings = Settings::default();
        settings.engine.refresh_interval_secs = 20;
        assert_eq!(settings.cache_ttl(), Duration::from_secs(60));
    }
}
