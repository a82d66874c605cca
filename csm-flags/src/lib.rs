//! csm-flags: the command-line flags of csm-core's settings, each also read from its `CSM_*`
//! environment variable (and so from `.env`, which the binaries load first).
//!
//! The flags come in groups, one per part of the core ([`DatabaseFlags`], [`CacheFlags`],
//! [`EngineFlags`], [`VendorFlags`], [`SimulatorFlags`], and for history [`TimeZoneFlags`],
//! [`RecordingFlags`], [`RetentionFlags`]); a command flattens only the groups
//! it uses, so its `--help` lists only what it reads. Each group maps itself onto
//! [`Settings`] with [`apply`](DatabaseFlags::apply); defaults come from
//! [`csm_core::settings::defaults`], where they are written once.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::Args;
use csm_core::settings::{Settings, defaults};

/// The database.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseFlags {
    /// Database: `mysql://user:pass@host:3306/db` or `sqlite://path.db`. Unset: the embedded
    /// default (`sqlite://csm.db`).
    #[arg(long, env = "CSM_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Largest number of pooled database connections.
    #[arg(long, env = "CSM_DB_MAX_CONNECTIONS", default_value_t = defaults::DB_MAX_CONNECTIONS)]
    pub db_max_connections: u32,
}

impl DatabaseFlags {
    /// Sets the database settings.
    pub fn apply(&self, settings: &mut Settings) {
        settings.database.url = self
            .database_url
            .as_deref()
            .map(csm_core::secret::Secret::from);
        settings.database.max_connections = self.db_max_connections;
    }
}

/// The live cache.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Cache")]
pub struct CacheFlags {
    /// Redis for the shared cache (`redis://127.0.0.1:6379`). Unset: an in-process cache.
    #[arg(long, env = "CSM_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix of every cache key, so several deployments can share one Redis.
    #[arg(long, env = "CSM_CACHE_PREFIX", default_value = defaults::CACHE_PREFIX)]
    pub cache_prefix: String,

    /// Lifetime of a cache entry in seconds. Unset: three refresh intervals.
    #[arg(long, env = "CSM_CACHE_TTL_SECS")]
    pub cache_ttl_secs: Option<u64>,

    /// With Redis: how long this process keeps a local copy of a cached station, in
    /// milliseconds (0: always ask Redis).
    #[arg(long, env = "CSM_CACHE_LOCAL_TTL_MS", default_value_t = defaults::CACHE_LOCAL_TTL_MS)]
    pub cache_local_ttl_ms: u64,
}

impl CacheFlags {
    /// Sets the cache settings.
    pub fn apply(&self, settings: &mut Settings) {
        settings.cache.redis_url.clone_from(&self.redis_url);
        settings.cache.prefix.clone_from(&self.cache_prefix);
        settings.cache.ttl_secs = self.cache_ttl_secs;
        settings.cache.local_ttl_ms = self.cache_local_ttl_ms;
    }
}

/// The refresh engine.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Refresh engine")]
pub struct EngineFlags {
    /// Seconds between two refreshes of every station.
    #[arg(long, env = "CSM_REFRESH_INTERVAL_SECS", default_value_t = defaults::REFRESH_INTERVAL_SECS)]
    pub refresh_interval_secs: u64,

    /// Refresh jobs that may run at once.
    #[arg(long, env = "CSM_CONCURRENCY", default_value_t = defaults::CONCURRENCY)]
    pub concurrency: usize,

    /// Retries of a transient vendor failure (timeout, connection error, 5xx, 429).
    #[arg(long, env = "CSM_MAX_RETRIES", default_value_t = defaults::MAX_RETRIES)]
    pub max_retries: u32,

    /// Status events kept in memory while the database is unreachable; older ones are dropped
    /// (and counted) beyond this.
    #[arg(long, env = "CSM_WRITE_BUFFER_EVENTS", default_value_t = defaults::WRITE_BUFFER_EVENTS)]
    pub write_buffer_events: usize,
}

impl EngineFlags {
    /// Sets the engine settings.
    pub fn apply(&self, settings: &mut Settings) {
        settings.engine.refresh_interval_secs = self.refresh_interval_secs;
        settings.engine.concurrency = self.concurrency;
        settings.engine.max_retries = self.max_retries;
        settings.engine.write_buffer_events = self.write_buffer_events;
    }
}

/// Vendor profiles and their HTTP client.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Vendors")]
pub struct VendorFlags {
    /// Folder of vendor profiles (`*.toml`). The base URL of profile NAME is overridden by
    /// `CSM_VENDOR_<NAME>_BASE_URL` (upper-case, `-` written as `_`).
    #[arg(long, env = "CSM_VENDORS_DIR", default_value = defaults::VENDORS_DIR)]
    pub vendors_dir: PathBuf,

    /// Total timeout of one vendor request, in milliseconds.
    #[arg(long, env = "CSM_HTTP_TIMEOUT_MS", default_value_t = defaults::HTTP_TIMEOUT_MS)]
    pub http_timeout_ms: u64,

    /// Timeout of opening a connection to a vendor, in milliseconds.
    #[arg(long, env = "CSM_HTTP_CONNECT_TIMEOUT_MS", default_value_t = defaults::HTTP_CONNECT_TIMEOUT_MS)]
    pub http_connect_timeout_ms: u64,

    /// Largest vendor response accepted, in bytes.
    #[arg(long, env = "CSM_HTTP_MAX_BODY_BYTES", default_value_t = defaults::HTTP_MAX_BODY_BYTES)]
    pub http_max_body_bytes: usize,

    /// A PEM file of certificate authorities that vendors' HTTPS certificates may be issued by,
    /// besides the system's (for vendor APIs behind a private CA).
    #[arg(long, env = "CSM_VENDOR_CA_FILE")]
    pub vendor_ca_file: Option<PathBuf>,
}

impl VendorFlags {
    /// Sets the vendor settings, with the base URL overrides of `CSM_VENDOR_<NAME>_BASE_URL`.
    pub fn apply(&self, settings: &mut Settings) {
        let vendors = &mut settings.vendors;
        vendors.dir.clone_from(&self.vendors_dir);
        vendors.http_timeout_ms = self.http_timeout_ms;
        vendors.http_connect_timeout_ms = self.http_connect_timeout_ms;
        vendors.http_max_body_bytes = self.http_max_body_bytes;
        vendors.http_ca_file.clone_from(&self.vendor_ca_file);
        for (key, value) in std::env::vars() {
            if let Some(name) = key
                .strip_prefix("CSM_VENDOR_")
                .and_then(|rest| rest.strip_suffix("_BASE_URL"))
            {
                vendors.base_urls.insert(name.to_owned(), value);
            }
        }
    }
}

/// The built-in simulated vendor.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Simulator")]
pub struct SimulatorFlags {
    /// Speed of the simulator's clock (1 = real time; 60 = an hour a minute).
    #[arg(long, env = "CSM_SIMULATOR_SPEED", default_value_t = defaults::SIMULATOR_SPEED)]
    pub simulator_speed: f64,

    /// Seed of the simulated fleet.
    #[arg(long, env = "CSM_SIMULATOR_SEED", default_value_t = defaults::SIMULATOR_SEED)]
    pub simulator_seed: u64,
}

impl SimulatorFlags {
    /// Sets the simulator settings.
    pub fn apply(&self, settings: &mut Settings) {
        settings.simulator.speed = self.simulator_speed;
        settings.simulator.seed = self.simulator_seed;
    }
}

/// The time zone statistics count hours, weekdays and days in.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Statistics")]
pub struct TimeZoneFlags {
    /// IANA time zone of hours, weekdays and days in statistics (everything is stored in UTC).
    #[arg(long, env = "CSM_TIMEZONE", default_value_t = defaults::TIMEZONE, value_parser = parse_timezone)]
    pub timezone: chrono_tz::Tz,
}

/// An IANA time zone, or what to write instead.
fn parse_timezone(text: &str) -> Result<chrono_tz::Tz, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "{text:?} is not a time zone; write an IANA name such as Asia/Shanghai or Europe/Berlin"
        )
    })
}

impl TimeZoneFlags {
    /// Sets the time zone of statistics (and of the simulator's daily rhythm).
    pub fn apply(&self, settings: &mut Settings) {
        settings.history.timezone = self.timezone;
    }
}

/// Which readings are kept as history.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "History")]
pub struct RecordingFlags {
    /// A reading is stored when the voltage moved more than this many volts since the last
    /// stored one (or the status changed, or the heartbeat passed).
    #[arg(long, env = "CSM_DEADBAND_VOLTS", default_value_t = defaults::DEADBAND_VOLTS)]
    pub deadband_volts: f64,

    /// … when the current moved more than this many amperes.
    #[arg(long, env = "CSM_DEADBAND_AMPS", default_value_t = defaults::DEADBAND_AMPS)]
    pub deadband_amps: f64,

    /// … when the power moved more than this many watts.
    #[arg(long, env = "CSM_DEADBAND_WATTS", default_value_t = defaults::DEADBAND_WATTS)]
    pub deadband_watts: f64,

    /// … when the session's energy moved more than this many kWh.
    #[arg(long, env = "CSM_DEADBAND_KWH", default_value_t = defaults::DEADBAND_KWH)]
    pub deadband_kwh: f64,

    /// A port's first reading in every period of this many seconds (aligned to the clock) is
    /// stored.
    #[arg(long, env = "CSM_HISTORY_HEARTBEAT_SECS", default_value_t = defaults::HEARTBEAT_SECS)]
    pub history_heartbeat_secs: u64,

    /// Readings kept in memory while the database is unreachable; older ones are dropped (and
    /// counted) beyond this, before any status event is.
    #[arg(long, env = "CSM_WRITE_BUFFER_READINGS", default_value_t = defaults::WRITE_BUFFER_READINGS)]
    pub write_buffer_readings: usize,
}

impl RecordingFlags {
    /// Sets which readings are kept.
    pub fn apply(&self, settings: &mut Settings) {
        let history = &mut settings.history;
        history.deadband.voltage = self.deadband_volts;
        history.deadband.current = self.deadband_amps;
        history.deadband.power = self.deadband_watts;
        history.deadband.energy_kwh = self.deadband_kwh;
        history.heartbeat_secs = self.history_heartbeat_secs;
        history.write_buffer_readings = self.write_buffer_readings;
    }
}

/// How long history is kept (hourly statistics are kept for good).
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Retention")]
pub struct RetentionFlags {
    /// Days raw readings are kept.
    #[arg(long, env = "CSM_RETAIN_READINGS_DAYS", default_value_t = defaults::READINGS_DAYS)]
    pub retain_readings_days: u32,

    /// Days status events and sessions are kept.
    #[arg(long, env = "CSM_RETAIN_EVENTS_DAYS", default_value_t = defaults::EVENTS_DAYS)]
    pub retain_events_days: u32,

    /// Days the audit log (who wrote what, and every command) is kept.
    #[arg(long, env = "CSM_RETAIN_AUDIT_DAYS", default_value_t = defaults::AUDIT_DAYS)]
    pub retain_audit_days: u32,

    /// Days the chargers' message logs are kept in the database (with CSM_OCPP_LOG_DATABASE).
    #[arg(long, env = "CSM_RETAIN_OCPP_LOG_DAYS", default_value_t = defaults::OCPP_LOG_DAYS)]
    pub retain_ocpp_log_days: u32,
}

impl RetentionFlags {
    /// Sets how long history is kept.
    pub fn apply(&self, settings: &mut Settings) {
        settings.history.readings_days = self.retain_readings_days;
        settings.history.events_days = self.retain_events_days;
        settings.history.audit_days = self.retain_audit_days;
        settings.history.ocpp_log_days = self.retain_ocpp_log_days;
    }
}

/// Where alerts may be sent.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Alerts")]
pub struct AlertFlags {
    /// Hosts alert channels may post to, separated by commas (for example
    /// oapi.dingtalk.com,open.feishu.cn); unset: any host.
    #[arg(long, env = "CSM_ALERT_HOSTS", value_delimiter = ',')]
    pub alert_hosts: Vec<String>,
}

impl AlertFlags {
    /// Sets where alerts may be sent.
    pub fn apply(&self, settings: &mut Settings) {
        settings.alerts.allowed_hosts = csm_core::model::alerts::AllowedHosts(
            self.alert_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        );
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}
