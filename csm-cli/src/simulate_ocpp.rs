//! `csm-cli simulate-ocpp`: simulated EV chargers ([`csm_core::ocpp::simulated`]) that connect
//! to a central system over OCPP 1.6J or 2.0.1, `ws://` or `wss://` (csm's `/ocpp/{id}`, or any
//! other). For the demo, tests
//! and the benchmark; with `--duration-secs` it stops and prints what it measured (answer times
//! as the chargers saw them).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Args;
use csm_core::ocpp::simulated::{Counters, SimulatedChargers, run_charger};
use serde_json::json;

/// Arguments of `simulate-ocpp`.
#[derive(Debug, Args)]
pub struct SimulateOcppArgs {
    /// The central system's OCPP URL; each charger appends its id
    /// (`ws://127.0.0.1:5000/ocpp` → `ws://127.0.0.1:5000/ocpp/SIM-0001`). Several, separated
    /// by commas: every charger connects to the first, and after a drop to another (as behind
    /// a load balancer when an instance dies).
    #[arg(long)]
    pub url: String,
    /// Chargers to simulate.
    #[arg(long, default_value_t = 10)]
    pub chargers: usize,
    /// Connectors of each charger.
    #[arg(long, default_value_t = 2)]
    pub connectors: u32,
    /// Seed: the same seed gives the same sessions.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Seconds between MeterValues of a charging connector.
    #[arg(long, default_value_t = 10)]
    pub meter_secs: u64,
    /// Mean seconds of a charging session (and of the pause between two).
    #[arg(long, default_value_t = 120)]
    pub session_secs: u64,
    /// Charge point ids are this prefix and a number.
    #[arg(long, default_value = "SIM-")]
    pub prefix: String,
    /// Password sent with HTTP Basic auth (the same for every charger).
    #[arg(long, env = "CSM_OCPP_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Stop after this many seconds and print a summary (default: run until interrupted).
    #[arg(long)]
    pub duration_secs: Option<u64>,
    /// Answer times of the first this many seconds (the chargers connecting and booting) are
    /// left out of the summary.
    #[arg(long, default_value_t = 0)]
    pub warmup_secs: u64,
    /// Of every hundred chargers, how many speak OCPP 2.0.1 (the others 1.6J).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub ocpp201_percent: u8,
    /// For `wss://` URLs: a CA (PEM) to trust besides the system's.
    #[arg(long)]
    pub ca: Option<std::path::PathBuf>,
}

/// A TLS client trusting the system's CAs and `ca`.
fn tls_client(ca: Option<&std::path::Path>) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca {
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| anyhow::anyhow!("--ca {}: {e}", path.display()))?
        {
            let cert = cert.map_err(|e| anyhow::anyhow!("--ca {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| anyhow::anyhow!("--ca {}: {e}", path.display()))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn lock_len(times: &std::sync::Mutex<Vec<u64>>) -> usize {
    times.lock().unwrap_or_else(|p| p.into_inner()).len()
}

/// `simulate-ocpp`.
pub async fn run(args: SimulateOcppArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<ExitCode> {
    let chargers = Arc::new(SimulatedChargers {
        url: args.url.clone(),
        connectors: args.connectors,
        seed: args.seed,
        meter_secs: args.meter_secs,
        session_secs: args.session_secs,
        prefix: args.prefix.clone(),
        password: args.password.clone(),
        v201_percent: args.ocpp201_percent,
        tls: if args.url.starts_with("wss://") {
            Some(Arc::new(tls_client(args.ca.as_deref())?))
        } else {
            None
        },
    });
    let counters = Arc::new(Counters::new(Duration::from_secs(args.warmup_secs)));
    let mut tasks = tokio::task::JoinSet::new();
    writeln!(
        out,
        "{} simulated chargers of {} connectors connecting to {}",
        args.chargers, args.connectors, args.url
    )?;
    for n in 0..args.chargers {
        let (chargers, counters) = (Arc::clone(&chargers), Arc::clone(&counters));
        tasks.spawn(async move { run_charger(n, &chargers, &counters).await });
        if n % 100 == 99 {
            // Not all at once: a real car park does not boot in the same millisecond.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    match args.duration_secs {
        Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tasks.abort_all();
    let percentiles = |times: &std::sync::Mutex<Vec<u64>>| {
        let mut micros = times.lock().unwrap_or_else(|p| p.into_inner()).clone();
        micros.sort_unstable();
        let at = |q: f64| {
            micros
                .get(((micros.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0) as f64
                / 1000.0
        };
        json!({"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": at(1.0)})
    };
    let summary = json!({
        "chargers": args.chargers,
        "connected": counters.connected.load(Ordering::Relaxed),
        "connections": counters.connections.load(Ordering::Relaxed),
        "calls": counters.calls.load(Ordering::Relaxed),
        "answers": counters.answers.load(Ordering::Relaxed),
        "errors": counters.errors.load(Ordering::Relaxed),
        "answer_ms": percentiles(&counters.answer_micros),
        "answer_ms_ocpp16": percentiles(&counters.answer_micros_by_version[0]),
        "answer_ms_ocpp201": percentiles(&counters.answer_micros_by_version[1]),
        "connect_ms": percentiles(&counters.connect_micros),
        "answer_ms_with_warmup": percentiles(&counters.all_answer_micros),
        "first_connect_ms": percentiles(&counters.first_connect_micros),
        "back_after_drop": lock_len(&counters.back_micros),
        "back_after_drop_ms": percentiles(&counters.back_micros),
        "answer_ms_after_drop": percentiles(&counters.after_drop_answer_micros),
        "never_connected": args.chargers - lock_len(&counters.first_connect_micros),
    });
    writeln!(out, "{summary}")?;
    Ok(ExitCode::SUCCESS)
}
