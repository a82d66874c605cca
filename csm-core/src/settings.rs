//! Settings: flags, then environment (`CSM_*`), then `.env` (loaded by the binaries before
//! parsing), then defaults. Every setting is documented in `.env.example` and the README.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::redact_url;

/// Database used when `CSM_DATABASE_URL` is not set: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://csm.db";

/// Everything csm can be configured with.
#[derive(Clone, clap::Args)]
pub struct Settings {
    /// Database: `mysql://user:pass@host:3306/db` or `sqlite://path.db`. Unset: the embedded
    /// default (`sqlite://csm.db`) with demo stations.
    #[arg(long, env = "CSM_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Largest number of pooled database connections.
    #[arg(
        long,
        env = "CSM_DB_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub db_max_connections: u32,

    /// Redis for the shared cache (`redis://127.0.0.1:6379`). Unset: an in-process cache.
    #[arg(long, env = "CSM_REDIS_URL", global = true)]
    pub redis_url: Option<String>,

    /// Prefix of every cache key, so several deployments can share one Redis.
    #[arg(long, env = "CSM_CACHE_PREFIX", default_value = "csm:", global = true)]
    pub cache_prefix: String,

    /// Address the server listens on.
    #[arg(long, env = "CSM_BIND", default_value = "0.0.0.0:5000", global = true)]
    pub bind: SocketAddr,

    /// Seconds between two refreshes of every station.
    #[arg(
        long,
        env = "CSM_REFRESH_INTERVAL_SECS",
        default_value_t = 30,
        global = true
    )]
    pub refresh_interval_secs: u64,

    /// Lifetime of a cache entry in seconds. Unset: three refresh intervals.
    #[arg(long, env = "CSM_CACHE_TTL_SECS", global = true)]
    pub cache_ttl_secs: Option<u64>,

    /// With Redis: how long this process keeps a local copy of a cached station, in
    /// milliseconds (0: always ask Redis). Bounds how stale a read can be when several
    /// instances write the same stations.
    #[arg(
        long,
        env = "CSM_CACHE_LOCAL_TTL_MS",
        default_value_t = 1000,
        global = true
    )]
    pub cache_local_ttl_ms: u64,

    /// Refresh jobs that may run at once.
    #[arg(long, env = "CSM_CONCURRENCY", default_value_t = 64, global = true)]
    pub concurrency: usize,

    /// Retries of a transient vendor failure (timeout, connection error, 5xx, 429).
    #[arg(long, env = "CSM_MAX_RETRIES", default_value_t = 3, global = true)]
    pub max_retries: u32,

    /// Total timeout of one vendor request, in milliseconds.
    #[arg(
        long,
        env = "CSM_HTTP_TIMEOUT_MS",
        default_value_t = 5000,
        global = true
    )]
    pub http_timeout_ms: u64,

    /// Timeout of opening a connection to a vendor, in milliseconds.
    #[arg(
        long,
        env = "CSM_HTTP_CONNECT_TIMEOUT_MS",
        default_value_t = 2000,
        global = true
    )]
    pub http_connect_timeout_ms: u64,

    /// Largest vendor response accepted, in bytes.
    #[arg(long, env = "CSM_HTTP_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024, global = true)]
    pub http_max_body_bytes: usize,

    /// Station served by `GET /api/ports`. Unset: the first station.
    #[arg(long, env = "CSM_DEFAULT_STATION", global = true)]
    pub default_station: Option<String>,

    /// Folder of vendor profiles (`*.toml`).
    #[arg(
        long,
        env = "CSM_VENDORS_DIR",
        default_value = "vendors",
        global = true
    )]
    pub vendors_dir: PathBuf,

    /// Bearer token for the write endpoints of the API. Unset: writes are refused.
    #[arg(long, env = "CSM_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub admin_token: Option<String>,

    /// A manual refresh of a station is skipped (and the API answers 429) when its data is
    /// younger than this many seconds.
    #[arg(
        long,
        env = "CSM_MANUAL_REFRESH_COOLDOWN_SECS",
        default_value_t = 10,
        global = true
    )]
    pub manual_refresh_cooldown_secs: u64,

    /// Manual refreshes accepted per minute across all stations (protects vendor APIs).
    #[arg(
        long,
        env = "CSM_MANUAL_REFRESH_PER_MINUTE",
        default_value_t = 120,
        global = true
    )]
    pub manual_refresh_per_minute: u32,

    /// Status events kept in memory while the database is unreachable; older ones are dropped
    /// (and counted) beyond this.
    #[arg(
        long,
        env = "CSM_WRITE_BUFFER_EVENTS",
        default_value_t = 200_000,
        global = true
    )]
    pub write_buffer_events: usize,

    /// Speed of the simulator's clock (1 = real time; 60 = an hour a minute).
    #[arg(
        long,
        env = "CSM_SIMULATOR_SPEED",
        default_value_t = 1.0,
        global = true
    )]
    pub simulator_speed: f64,

    /// Seed of the simulated fleet.
    #[arg(long, env = "CSM_SIMULATOR_SEED", default_value_t = 42, global = true)]
    pub simulator_seed: u64,

    /// Seed demo stations on the simulator when the database has none. Unset: only in the
    /// embedded default (no `CSM_DATABASE_URL`).
    #[arg(long, env = "CSM_DEMO", value_parser = clap::builder::BoolishValueParser::new(), global = true)]
    pub demo: Option<bool>,

    /// Benchmarks only: serve `GET /bench/ceiling`, a fixed JSON body of this many bytes, as
    /// the ceiling the API endpoints are compared with.
    #[arg(long, env = "CSM_BENCH_CEILING_BYTES", hide = true, global = true)]
    pub bench_ceiling_bytes: Option<usize>,

    /// Log format: `text` or `json`.
    #[arg(long, env = "CSM_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: LogFormat,

    /// Origins allowed by CORS, comma separated (`https://ops.example.com`). Unset: none.
    #[arg(long, env = "CSM_CORS_ORIGINS", value_delimiter = ',', global = true)]
    pub cors_origins: Vec<String>,

    /// Base URL overrides of vendor profiles, from `CSM_VENDOR_<NAME>_BASE_URL`, keyed by
    /// `<NAME>` as written in the variable.
    #[arg(skip)]
    pub vendor_base_urls: BTreeMap<String, String>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
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

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: None,
            db_max_connections: 10,
            redis_url: None,
            cache_prefix: "csm:".into(),
            bind: SocketAddr::from(([0, 0, 0, 0], 5000)),
            refresh_interval_secs: 30,
            cache_ttl_secs: None,
            cache_local_ttl_ms: 1000,
            concurrency: 64,
            max_retries: 3,
            http_timeout_ms: 5000,
            http_connect_timeout_ms: 2000,
            http_max_body_bytes: 2 * 1024 * 1024,
            default_station: None,
            vendors_dir: PathBuf::from("vendors"),
            admin_token: None,
            manual_refresh_cooldown_secs: 10,
            manual_refresh_per_minute: 120,
            write_buffer_events: 200_000,
            simulator_speed: 1.0,
            simulator_seed: 42,
            demo: None,
            bench_ceiling_bytes: None,
            log_format: LogFormat::Text,
            cors_origins: Vec::new(),
            vendor_base_urls: BTreeMap::new(),
        }
    }
}

impl Settings {
    /// Reads the `CSM_VENDOR_<NAME>_BASE_URL` variables and checks every setting.
    pub fn finish(mut self) -> Result<Self, SettingsError> {
        for (key, value) in std::env::vars() {
            if let Some(name) = key
                .strip_prefix("CSM_VENDOR_")
                .and_then(|rest| rest.strip_suffix("_BASE_URL"))
            {
                self.vendor_base_urls.insert(name.to_owned(), value);
            }
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let url = self.database_url();
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("sqlite" | "mysql" | "mariadb")) {
            return Err(SettingsError {
                variable: "CSM_DATABASE_URL",
                message: format!(
                    "{:?} is not a database URL csm can use; write mysql://user:password@host:3306/database or sqlite://path/to/file.db",
                    redact_url(url)
                ),
            });
        }
        if let Some(redis) = &self.redis_url
            && !(redis.starts_with("redis://")
                || redis.starts_with("rediss://")
                || redis.starts_with("unix://"))
        {
            return Err(SettingsError {
                variable: "CSM_REDIS_URL",
                message: format!(
                    "{:?} is not a Redis URL; write redis://host:6379 (or leave it unset for the in-process cache)",
                    redact_url(redis)
                ),
            });
        }
        let positive: [(&'static str, u64); 5] = [
            ("CSM_REFRESH_INTERVAL_SECS", self.refresh_interval_secs),
            ("CSM_CONCURRENCY", self.concurrency as u64),
            ("CSM_HTTP_TIMEOUT_MS", self.http_timeout_ms),
            ("CSM_HTTP_CONNECT_TIMEOUT_MS", self.http_connect_timeout_ms),
            ("CSM_DB_MAX_CONNECTIONS", u64::from(self.db_max_connections)),
        ];
        for (variable, value) in positive {
            if value == 0 {
                return Err(SettingsError {
                    variable,
                    message: "must be greater than 0".into(),
                });
            }
        }
        if self.cache_ttl_secs == Some(0) {
            return Err(SettingsError {
                variable: "CSM_CACHE_TTL_SECS",
                message: "must be greater than 0 (or unset for three refresh intervals)".into(),
            });
        }
        if !(self.simulator_speed.is_finite() && self.simulator_speed > 0.0) {
            return Err(SettingsError {
                variable: "CSM_SIMULATOR_SPEED",
                message: "must be a positive number".into(),
            });
        }
        if self.cache_prefix.contains(char::is_whitespace) {
            return Err(SettingsError {
                variable: "CSM_CACHE_PREFIX",
                message: "must not contain spaces".into(),
            });
        }
        Ok(())
    }

    /// The database URL in use (the embedded default when unset).
    pub fn database_url(&self) -> &str {
        self.database_url.as_deref().unwrap_or(DEFAULT_DATABASE_URL)
    }

    /// True when nothing points csm at a real deployment: the embedded SQLite default.
    pub fn is_embedded_default(&self) -> bool {
        self.database_url.is_none()
    }

    /// Whether to seed demo stations into an empty database.
    pub fn seeds_demo(&self) -> bool {
        self.demo.unwrap_or_else(|| self.is_embedded_default())
    }

    /// Interval between refreshes of every station.
    pub fn refresh_interval(&self) -> Duration {
        Duration::from_secs(self.refresh_interval_secs)
    }

    /// Lifetime of cache entries.
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(
            self.cache_ttl_secs
                .unwrap_or(self.refresh_interval_secs.saturating_mul(3)),
        )
    }

    /// Total timeout of a vendor request.
    pub fn http_timeout(&self) -> Duration {
        Duration::from_millis(self.http_timeout_ms)
    }

    /// Timeout of opening a connection to a vendor.
    pub fn http_connect_timeout(&self) -> Duration {
        Duration::from_millis(self.http_connect_timeout_ms)
    }

    /// The base URL override of vendor profile `vendor`, if `CSM_VENDOR_<NAME>_BASE_URL` is set
    /// (`<NAME>` is the profile name upper-cased with `-` written as `_`).
    pub fn vendor_base_url(&self, vendor: &str) -> Option<&str> {
        self.vendor_base_urls
            .get(&vendor_env_name(vendor))
            .map(String::as_str)
    }

    /// Minimum age of data before a manual refresh runs.
    pub fn manual_refresh_cooldown(&self) -> Duration {
        Duration::from_secs(self.manual_refresh_cooldown_secs)
    }
}

/// `<NAME>` of `CSM_VENDOR_<NAME>_BASE_URL` for a profile name.
pub fn vendor_env_name(vendor: &str) -> String {
    vendor.to_ascii_uppercase().replace('-', "_")
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(self.database_url()))
            .field("db_max_connections", &self.db_max_connections)
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("cache_prefix", &self.cache_prefix)
            .field("bind", &self.bind)
            .field("refresh_interval_secs", &self.refresh_interval_secs)
            .field("cache_ttl_secs", &self.cache_ttl().as_secs())
            .field("cache_local_ttl_ms", &self.cache_local_ttl_ms)
            .field("concurrency", &self.concurrency)
            .field("max_retries", &self.max_retries)
            .field("http_timeout_ms", &self.http_timeout_ms)
            .field("http_connect_timeout_ms", &self.http_connect_timeout_ms)
            .field("http_max_body_bytes", &self.http_max_body_bytes)
            .field("default_station", &self.default_station)
            .field("vendors_dir", &self.vendors_dir)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "manual_refresh_cooldown_secs",
                &self.manual_refresh_cooldown_secs,
            )
            .field("manual_refresh_per_minute", &self.manual_refresh_per_minute)
            .field("write_buffer_events", &self.write_buffer_events)
            .field("simulator_speed", &self.simulator_speed)
            .field("simulator_seed", &self.simulator_seed)
            .field("demo", &self.demo)
            .field("log_format", &self.log_format)
            .field("cors_origins", &self.cors_origins)
            .field("vendor_base_urls", &self.vendor_base_urls)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let settings = Settings {
            database_url: Some("mysql://root:s3cret-pw@db:3306/csm".into()),
            redis_url: Some("redis://:redis-pw@cache:6379".into()),
            admin_token: Some("admin-token-value".into()),
            ..Settings::default()
        };
        let debug = format!("{settings:?}");
        for secret in ["s3cret-pw", "redis-pw", "admin-token-value"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
        assert!(debug.contains("db:3306"));
    }

    #[test]
    fn unusable_values_name_their_variable() {
        let bad_db = Settings {
            database_url: Some("postgres://x".into()),
            ..Settings::default()
        };
        assert_eq!(bad_db.validate().unwrap_err().variable, "CSM_DATABASE_URL");
        let zero = Settings {
            concurrency: 0,
            ..Settings::default()
        };
        assert_eq!(zero.validate().unwrap_err().variable, "CSM_CONCURRENCY");
        assert!(Settings::default().validate().is_ok());
    }

    #[test]
    fn cache_ttl_defaults_to_three_intervals() {
        let settings = Settings {
            refresh_interval_secs: 20,
            ..Settings::default()
        };
        assert_eq!(settings.cache_ttl(), Duration::from_secs(60));
    }
}
