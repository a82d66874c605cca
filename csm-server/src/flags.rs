//! The server's command line: the core's flag groups (database, cache, engine, vendors,
//! simulator, history) and the server's own, each also read from its `CSM_*` variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser};
use csm_core::settings::{Settings, defaults as core};
use csm_flags::{
    AlertFlags, CacheFlags, DatabaseFlags, EngineFlags, LogFormat, RecordingFlags, RetentionFlags,
    SimulatorFlags, TimeZoneFlags, VendorFlags,
};

use crate::config::{Limits, ServerConfig, defaults};

/// Charging station monitor server: REST API, live dashboard and background refresh. With no
/// configuration it runs on an embedded default (SQLite, in-process cache, simulated stations).
#[derive(Debug, Parser)]
#[command(name = "csm-server", version, about)]
pub struct ServerFlags {
    #[command(flatten)]
    server: OwnFlags,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    cache: CacheFlags,
    #[command(flatten)]
    engine: EngineFlags,
    #[command(flatten)]
    vendors: VendorFlags,
    #[command(flatten)]
    simulator: SimulatorFlags,
    #[command(flatten)]
    timezone: TimeZoneFlags,
    #[command(flatten)]
    recording: RecordingFlags,
    #[command(flatten)]
    retention: RetentionFlags,
    #[command(flatten)]
    alerts: AlertFlags,
    #[command(flatten)]
    ocpp: OcppFlags,
}

/// Who may register as an OCPP charge point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum RegistrationFlag {
    /// Only stations added with vendor `ocpp`.
    Known,
    /// A charger that connects is added as a station.
    Auto,
}

/// OCPP 1.6J charge points connecting to `ws://HOST/ocpp/{charge_point_id}`.
#[derive(Debug, Args)]
#[command(next_help_heading = "OCPP")]
struct OcppFlags {
    /// `known`: only stations added with vendor ocpp may connect; `auto`: a charger that
    /// connects is added. Unset: `auto` in the embedded default, else `known`.
    #[arg(long, env = "CSM_OCPP_REGISTRATION", value_enum)]
    ocpp_registration: Option<RegistrationFlag>,

    /// Accept chargers that offer no WebSocket subprotocol at all (some firmware does not).
    #[arg(long, env = "CSM_OCPP_ALLOW_NO_SUBPROTOCOL", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    ocpp_allow_no_subprotocol: bool,

    /// The OCPP version picked when a charger offers both subprotocols (`2.0.1` or `1.6`).
    #[arg(long, env = "CSM_OCPP_PREFERRED_VERSION", default_value = "2.0.1", value_parser = clap::builder::ValueParser::new(|text: &str| text.parse::<csm_core::ocpp::Version>()))]
    ocpp_preferred_version: csm_core::ocpp::Version,

    /// The heartbeat interval csm gives chargers at boot, seconds.
    #[arg(long, env = "CSM_OCPP_HEARTBEAT_SECS", default_value_t = core::OCPP_HEARTBEAT_SECS)]
    ocpp_heartbeat_secs: u32,

    /// Answer Authorize (and StartTransaction's id tag) with Accepted; `false`: Invalid.
    #[arg(long, env = "CSM_OCPP_ACCEPT_AUTHORIZE", value_parser = clap::builder::BoolishValueParser::new(), default_value = "true")]
    ocpp_accept_authorize: bool,

    /// Refuse chargers that have no password (security profile 1 for every charger).
    #[arg(long, env = "CSM_OCPP_REQUIRE_PASSWORD", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    ocpp_require_password: bool,

    /// Seconds between the WebSocket pings sent to each charger, so NAT and proxies keep idle
    /// sockets open (0: none).
    #[arg(long, env = "CSM_OCPP_PING_SECS", default_value_t = core::OCPP_PING_SECS)]
    ocpp_ping_secs: u32,

    /// After a charger boots, set its MeterValueSampleInterval to this many seconds
    /// (ChangeConfiguration). Unset: leave the charger's own.
    #[arg(long, env = "CSM_OCPP_METER_INTERVAL_SECS")]
    ocpp_meter_interval_secs: Option<u32>,

    /// Seconds a new connection has to send its first frame (a charger not registered yet:
    /// its BootNotification) before it is closed.
    #[arg(long, env = "CSM_OCPP_FIRST_FRAME_SECS", default_value_t = core::OCPP_FIRST_FRAME_SECS)]
    ocpp_first_frame_secs: u32,

    /// Auto registration adds no charge point once this many OCPP stations exist; a charger
    /// past it has its BootNotification answered Rejected.
    #[arg(long, env = "CSM_OCPP_AUTO_MAX", default_value_t = core::OCPP_AUTO_MAX)]
    ocpp_auto_max: usize,

    /// Charge points auto registration adds per minute (as many at once); a charger past it
    /// has its BootNotification answered Rejected, with when to try again.
    #[arg(long, env = "CSM_OCPP_AUTO_PER_MINUTE", default_value_t = core::OCPP_AUTO_PER_MINUTE)]
    ocpp_auto_per_minute: u32,

    /// Write each charger's message log to the database too (table `ocpp_messages`, kept
    /// CSM_RETAIN_OCPP_LOG_DAYS): it then survives restarts and reads whole from any instance.
    #[arg(long, env = "CSM_OCPP_LOG_DATABASE", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    ocpp_log_database: bool,
}

impl OcppFlags {
    fn apply(self, settings: &mut Settings) {
        settings.ocpp.registration = self.ocpp_registration.map(|r| match r {
            RegistrationFlag::Known => csm_core::settings::Registration::Known,
            RegistrationFlag::Auto => csm_core::settings::Registration::Auto,
        });
        settings.ocpp.allow_no_subprotocol = self.ocpp_allow_no_subprotocol;
        settings.ocpp.preferred_version = self.ocpp_preferred_version;
        settings.ocpp.heartbeat_secs = self.ocpp_heartbeat_secs.max(1);
        settings.ocpp.accept_authorize = self.ocpp_accept_authorize;
        settings.ocpp.require_password = self.ocpp_require_password;
        settings.ocpp.ping_secs = self.ocpp_ping_secs;
        settings.ocpp.meter_interval_secs = self.ocpp_meter_interval_secs.filter(|s| *s > 0);
        settings.ocpp.first_frame_secs = self.ocpp_first_frame_secs.max(1);
        settings.ocpp.auto_max = self.ocpp_auto_max;
        settings.ocpp.auto_per_minute = self.ocpp_auto_per_minute.max(1);
        settings.ocpp.log_database = self.ocpp_log_database;
    }
}

/// The server's own settings.
#[derive(Debug, Args)]
#[command(next_help_heading = "Server")]
struct OwnFlags {
    /// Address the server listens on.
    #[arg(long, env = "CSM_BIND", default_value = defaults::BIND)]
    bind: SocketAddr,

    /// Bootstrap admin token of the API (beside the tokens of `csm-cli tokens add`). With
    /// neither, writes are refused (403).
    #[arg(long, env = "CSM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,

    /// The API's reads need a token too (any role): the page then asks for one.
    #[arg(long, env = "CSM_READ_REQUIRES_TOKEN", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false")]
    read_requires_token: bool,

    /// Origins allowed by CORS, comma separated (`https://ops.example.com`). Unset: none.
    #[arg(long, env = "CSM_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,

    /// Station served by `GET /api/ports`. Unset: the first station.
    #[arg(long, env = "CSM_DEFAULT_STATION", value_parser = parse_station_id)]
    default_station: Option<csm_core::model::StationId>,

    /// This instance's id among the servers sharing the database and Redis (1–64 letters,
    /// digits, `-`, `_`, `.`, `:`). Unset: made up at start from the host name and process id.
    #[arg(long, env = "CSM_INSTANCE_ID")]
    instance_id: Option<String>,

    /// Seed demo stations on the simulator when the database has none. Unset: only in the
    /// embedded default (no `CSM_DATABASE_URL`).
    #[arg(long, env = "CSM_DEMO", value_parser = clap::builder::BoolishValueParser::new())]
    demo: Option<bool>,

    /// A manual refresh of a station is refused (429) while its data is younger than this many
    /// seconds.
    #[arg(long, env = "CSM_MANUAL_REFRESH_COOLDOWN_SECS", default_value_t = core::MANUAL_REFRESH_COOLDOWN_SECS)]
    manual_refresh_cooldown_secs: u64,

    /// Manual refreshes accepted per minute across all stations (protects vendor APIs).
    #[arg(long, env = "CSM_MANUAL_REFRESH_PER_MINUTE", default_value_t = core::MANUAL_REFRESH_PER_MINUTE)]
    manual_refresh_per_minute: u32,

    /// Seconds a client may take to send a request's headers before its connection is closed.
    #[arg(long, env = "CSM_HTTP_HEADER_TIMEOUT_SECS", default_value_t = defaults::HEADER_TIMEOUT_SECS)]
    http_header_timeout_secs: u64,

    /// Seconds an idle keep-alive connection is kept open.
    #[arg(long, env = "CSM_HTTP_KEEPALIVE_SECS", default_value_t = defaults::KEEPALIVE_SECS)]
    http_keepalive_secs: u64,

    /// Connections served at once; past it the longest-idle connection makes room.
    #[arg(long, env = "CSM_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS)]
    max_connections: usize,

    /// Live event streams (`/api/events`) at once; past it the stream answers 503.
    #[arg(long, env = "CSM_MAX_SSE_CLIENTS", default_value_t = defaults::MAX_SSE_CLIENTS)]
    max_sse_clients: usize,

    /// Live event streams one client address may hold at once; past it the stream answers 429.
    /// Behind a proxy, name it in CSM_TRUSTED_PROXIES so clients are told apart.
    #[arg(long, env = "CSM_MAX_SSE_PER_ADDRESS", default_value_t = defaults::MAX_SSE_PER_ADDRESS)]
    max_sse_per_address: usize,

    /// Seconds a connection's writes may stay blocked (its client does not read what it is
    /// sent, e.g. a live stream's) before it is closed.
    #[arg(long, env = "CSM_WRITE_STALL_SECS", default_value_t = defaults::WRITE_STALL_SECS)]
    write_stall_secs: u64,

    /// Proxies (addresses or networks, comma separated: `10.0.0.1,fd00::/8`) whose
    /// X-Forwarded-For names the client. Unset: every client is its connection's address.
    #[arg(long, env = "CSM_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_network)]
    trusted_proxies: Vec<crate::client::Network>,

    /// The server's TLS certificate chain (PEM): with CSM_TLS_KEY, the port speaks HTTPS and
    /// wss:// only. Read again on SIGHUP or when the file changes.
    #[arg(long, env = "CSM_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,

    /// The private key of CSM_TLS_CERT (PEM).
    #[arg(long, env = "CSM_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,

    /// A CA (PEM): clients are asked for a certificate and one they send is verified against
    /// it (OCPP security profile 3; the charge point id is its subject's CN).
    #[arg(long, env = "CSM_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<std::path::PathBuf>,

    /// Behind a proxy that terminates TLS: the header in which it passes the verified client
    /// certificate, URL-escaped PEM (nginx: `proxy_set_header X-SSL-Client-Cert
    /// $ssl_client_escaped_cert;`). Believed only from CSM_TRUSTED_PROXIES.
    #[arg(long, env = "CSM_TLS_CLIENT_CERT_HEADER")]
    tls_client_cert_header: Option<axum::http::HeaderName>,

    /// Log format: `text` or `json` (`RUST_LOG` sets the level).
    #[arg(long, env = "CSM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Benchmarks only: serve `GET /bench/ceiling`, a fixed JSON body of this many bytes, as
    /// the ceiling the API endpoints are compared with.
    #[arg(long, env = "CSM_BENCH_CEILING_BYTES", hide = true)]
    bench_ceiling_bytes: Option<usize>,
}

fn parse_station_id(text: &str) -> Result<csm_core::model::StationId, String> {
    csm_core::model::StationId::parse(text).map_err(|e| e.to_string())
}

fn parse_network(text: &str) -> Result<crate::client::Network, String> {
    text.parse()
}

/// Everything the command line says: the core's settings, the server's, and the log format.
#[derive(Debug)]
pub struct Parsed {
    /// The core's settings.
    pub settings: Settings,
    /// The server's settings.
    pub config: ServerConfig,
    /// How to write logs.
    pub log_format: LogFormat,
}

impl ServerFlags {
    /// The settings the flags describe.
    pub fn into_settings(self) -> Parsed {
        let mut settings = Settings::default();
        self.database.apply(&mut settings);
        self.cache.apply(&mut settings);
        self.engine.apply(&mut settings);
        self.vendors.apply(&mut settings);
        self.simulator.apply(&mut settings);
        self.timezone.apply(&mut settings);
        self.recording.apply(&mut settings);
        self.retention.apply(&mut settings);
        self.alerts.apply(&mut settings);
        self.ocpp.apply(&mut settings);
        let own = self.server;
        settings.default_station = own.default_station;
        settings.demo = own.demo;
        settings.instance_id = own.instance_id;
        settings.manual_refresh.cooldown_secs = own.manual_refresh_cooldown_secs;
        settings.manual_refresh.per_minute = own.manual_refresh_per_minute;
        let config = ServerConfig {
            bind: own.bind,
            admin_token: own
                .admin_token
                .filter(|t| !t.is_empty())
                .map(csm_core::secret::Secret::new),
            read_requires_token: own.read_requires_token,
            cors_origins: own.cors_origins,
            limits: Limits {
                header_timeout: Duration::from_secs(own.http_header_timeout_secs.max(1)),
                keepalive_timeout: Duration::from_secs(own.http_keepalive_secs.max(1)),
                max_connections: own.max_connections.max(1),
                max_sse_clients: own.max_sse_clients,
                max_sse_per_address: own.max_sse_per_address.max(1),
                write_stall_timeout: Duration::from_secs(own.write_stall_secs.max(1)),
            },
            bench_ceiling_bytes: own.bench_ceiling_bytes,
            trusted_proxies: crate::client::TrustedProxies::new(own.trusted_proxies),
            tls: own
                .tls_cert
                .zip(own.tls_key)
                .map(|(cert, key)| crate::tls::TlsFiles {
                    cert,
                    key,
                    client_ca: own.tls_client_ca,
                }),
            client_cert_header: own.tls_client_cert_header,
        };
        Parsed {
            settings,
            config,
            log_format: own.log_format,
        }
    }
}
