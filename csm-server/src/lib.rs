//! csm-server: the REST API, live events, dashboard and background scheduler of the charging
//! station monitor, over `csm-core`.
//!
//! [`Server::serve`] takes a bound listener and a shutdown future, so tests bind port 0 and
//! stop the server when they are done.
#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use csm_core::Monitor;
use csm_core::ocpp::simulated::{Counters, SimulatedChargers, run_charger};
use csm_core::settings::Settings;
use csm_flags::LogFormat;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub mod access;
pub mod api;
mod assets;
mod changes;
pub mod client;
mod conditional;
pub mod config;
mod detail;
pub mod error;
pub mod flags;
mod list;
mod metrics;
pub mod openapi;
mod serve;
pub mod tls;
pub mod views;

use api::events::{SseClients, SseMessage, forward_updates};
pub use config::{Limits, ServerConfig};

/// Demo stations seeded at the first start of the embedded default.
pub const DEMO_STATIONS: usize = 6;
/// Simulated OCPP chargers the demo connects to its own `/ocpp` endpoint (ids `SEV-0001`, …).
pub const DEMO_CHARGERS: usize = 2;
/// How long shutdown waits for running refresh jobs and pending writes.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The monitor service.
    pub monitor: Arc<Monitor>,
    /// The server's settings.
    pub config: Arc<ServerConfig>,
    /// Live updates, encoded once for every SSE client.
    pub updates: broadcast::Sender<Arc<SseMessage>>,
    /// Live event streams open now, within the limit.
    pub sse_clients: Arc<SseClients>,
    /// Fires when the server shuts down (ends the SSE streams).
    pub shutdown: CancellationToken,
    /// The Prometheus recorder.
    pub metrics: PrometheusHandle,
    /// The fleet's change count, which makes kept answers out of date.
    pub changes: Arc<changes::Changes>,
    /// Encoded answers of the station endpoints.
    pub details: Arc<detail::DetailCache>,
    /// Encoded answers of the station list.
    pub lists: Arc<list::ListAnswers>,
    /// The server's TLS, when it speaks it (`CSM_TLS_CERT`).
    pub tls: Option<Arc<tls::Tls>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("monitor", &self.monitor)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A configured server, ready to serve.
pub struct Server {
    state: AppState,
    scheduler: bool,
    /// Whether to connect the demo's simulated OCPP chargers once listening.
    demo_chargers: bool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("monitor", &self.state.monitor)
            .field("scheduler", &self.scheduler)
            .finish()
    }
}

impl Server {
    /// Connects everything, applies migrations and, in the embedded default, seeds demo
    /// stations on the simulator.
    pub async fn new(settings: Settings, config: ServerConfig) -> anyhow::Result<Self> {
        let embedded = settings.is_embedded_default();
        let demo = settings.seeds_demo();
        let monitor = Monitor::open(settings).await?;
        monitor
            .migrate()
            .await
            .context("applying database migrations")?;
        let mut demo_chargers = false;
        if demo {
            let seeded = monitor.stations().seed_demo(DEMO_STATIONS).await?;
            if seeded > 0 {
                tracing::info!(seeded, "seeded demo stations on the simulator (CSM_DEMO)");
                let ids: Vec<String> = (0..DEMO_CHARGERS)
                    .map(|n| demo_chargers_at("").id(n))
                    .collect();
                monitor.stations().seed_demo_charge_points(&ids).await?;
            }
            demo_chargers = if monitor.settings().ocpp.require_password {
                tracing::warn!(
                    "the demo's simulated OCPP chargers have no password: not connecting them (CSM_OCPP_REQUIRE_PASSWORD)"
                );
                false
            } else {
                true
            };
        }
        if embedded {
            tracing::info!(
                "demo mode: CSM_DATABASE_URL is not set, so csm uses sqlite://csm.db, an in-process cache and simulated stations. \
                 To monitor real stations set CSM_DATABASE_URL (mysql://…), CSM_REDIS_URL (redis://…) and put vendor profiles in CSM_VENDORS_DIR; see .env.example"
            );
        }
        let mut server = Self::from_monitor(Arc::new(monitor), config);
        server.demo_chargers = demo_chargers;
        Ok(server)
    }

    /// A server over an existing monitor (tests, embedding programs).
    pub fn from_monitor(monitor: Arc<Monitor>, config: ServerConfig) -> Self {
        let (updates, _) = broadcast::channel(1024);
        let sse_clients = Arc::new(SseClients::new(
            config.limits.max_sse_clients,
            config.limits.max_sse_per_address,
        ));
        let changes = Arc::new(changes::Changes::new(Arc::clone(&monitor)));
        Self {
            state: AppState {
                monitor,
                config: Arc::new(config),
                updates,
                sse_clients,
                shutdown: CancellationToken::new(),
                metrics: metrics::handle(),
                changes: Arc::clone(&changes),
                details: Arc::new(detail::DetailCache::new(Arc::clone(&changes))),
                lists: Arc::new(list::ListAnswers::new(changes)),
                tls: None,
            },
            scheduler: true,
            demo_chargers: false,
        }
    }

    /// Serves without the background scheduler (refreshes happen only on request).
    pub fn without_scheduler(mut self) -> Self {
        self.scheduler = false;
        self
    }

    /// The monitor service.
    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.state.monitor
    }

    /// The routes, for serving or for calling in process.
    pub fn router(&self) -> Router {
        api::router(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` completes, then ends the live streams, lets
    /// running refresh jobs finish and writes what they produced.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        if let Some(files) = &self.state.config.tls {
            self.state.tls = Some(Arc::new(tls::Tls::load(files)?));
        }
        let state = self.state.clone();
        let cancel = state.shutdown.clone();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(forward_updates(
            Arc::clone(&state.monitor),
            state.updates.clone(),
            cancel.clone(),
        ));
        tasks.spawn(Arc::clone(&state.changes).follow(cancel.clone()));
        let (ocpp, token) = (state.monitor.ocpp().clone(), cancel.clone());
        tasks.spawn(async move { ocpp.run_registry(token).await });
        let (monitor, token) = (Arc::clone(&state.monitor), cancel.clone());
        tasks.spawn(async move { monitor.run_cluster(token).await });
        let (monitor, token) = (Arc::clone(&state.monitor), cancel.clone());
        tasks.spawn(async move { monitor.run_feed(token).await });
        let (monitor, token) = (Arc::clone(&state.monitor), cancel.clone());
        tasks.spawn(async move { monitor.run_requests(token).await });
        let upkeep = tokio::spawn(metrics::upkeep(state.metrics.clone()));
        if let Some(tls) = &state.tls {
            tasks.spawn(Arc::clone(tls).watch(cancel.clone()));
        }
        if self.demo_chargers && state.tls.is_some() {
            tracing::info!(
                "the demo's simulated OCPP chargers speak plain ws://: not connecting them to a TLS server"
            );
        } else if self.demo_chargers {
            let chargers = Arc::new(demo_chargers_at(&ocpp_url(listener.local_addr()?)));
            let counters = Arc::new(Counters::new(Duration::ZERO));
            tracing::info!(url = %chargers.url, count = DEMO_CHARGERS, "connecting the demo's simulated OCPP chargers");
            for n in 0..DEMO_CHARGERS {
                let (chargers, counters, cancel) =
                    (Arc::clone(&chargers), Arc::clone(&counters), cancel.clone());
                tasks.spawn(async move {
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = run_charger(n, &chargers, &counters) => {}
                    }
                });
            }
        }
        if self.scheduler {
            let monitor = &state.monitor;
            let (refresh, token) = (monitor.refresh().clone(), cancel.clone());
            tasks.spawn(async move { refresh.run_scheduler(token).await });
            let (history, token) = (monitor.history().clone(), cancel.clone());
            tasks.spawn(async move { history.run_pruning(token).await });
            let (alerts, token) = (monitor.alerts().clone(), cancel.clone());
            tasks.spawn(async move { alerts.run(token).await });
        }
        let stop = cancel.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: ending live streams and finishing refresh jobs");
            stop.cancel();
        });
        serve::serve(
            listener,
            self.router(),
            state.config.limits,
            state.tls.clone(),
            cancel.clone(),
        )
        .await;
        cancel.cancel();
        upkeep.abort();
        while tasks.join_next().await.is_some() {}
        let report = state.monitor.shutdown(SHUTDOWN_DEADLINE).await;
        if report.pending_rows == 0 {
            tracing::info!(
                status_events = state.monitor.refresh().events_produced(),
                dropped_events = report.dropped_events,
                "all writes flushed; bye"
            );
        }
        Ok(())
    }
}

/// The demo's simulated OCPP chargers, connecting to `url`.
fn demo_chargers_at(url: &str) -> SimulatedChargers {
    SimulatedChargers {
        url: url.to_owned(),
        connectors: 2,
        seed: 7,
        meter_secs: 10,
        session_secs: 300,
        prefix: "SEV-".into(),
        password: None,
        v201_percent: 0,
        tls: None,
    }
}

/// The OCPP URL of this server as seen from this machine (a wildcard address becomes
/// loopback).
fn ocpp_url(local: std::net::SocketAddr) -> String {
    let ip = match local.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("ws://{}/ocpp", std::net::SocketAddr::new(ip, local.port()))
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Runs the server the settings describe until Ctrl-C or SIGTERM.
pub async fn run(settings: Settings, config: ServerConfig) -> anyhow::Result<()> {
    settings.validate()?;
    let bind = config.bind;
    let config_tls = config.tls.is_some();
    let server = Server::new(settings, config).await?;
    let listener = TcpListener::bind(bind).await.with_context(|| {
        format!("cannot listen on {bind}; is another server running there? choose another address with CSM_BIND")
    })?;
    let local = listener.local_addr()?;
    let scheme = if config_tls { "https" } else { "http" };
    tracing::info!("csm listening on {scheme}://{local} (dashboard at /, API docs at /api/docs)");
    server.serve(listener, shutdown_signal()).await
}

/// Sets up logging on stdout: `info` by default (`RUST_LOG` to change), JSON when asked.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
