//! `csm-cli cluster status`: the live instances of the cluster on this Redis and cache prefix,
//! read from Redis: each one's id, version, last heartbeat, the slots and polled stations it
//! refreshes and the OCPP chargers it holds. `--json` prints the document of
//! `GET /api/cluster`.

use std::io::Write;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Subcommand};
use csm_core::Monitor;
use csm_core::settings::Settings;
use csm_core::views::cluster::ClusterJson;
use csm_flags::{CacheFlags, DatabaseFlags};

use super::{JsonOutput, Settle, emit_json, settle_by};

/// `cluster …`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// List the live instances and what each refreshes and holds.
    Status(ClusterStatusArgs),
}

/// Arguments of `cluster status`.
#[derive(Debug, Args)]
pub struct ClusterStatusArgs {
    /// `--json`: the document of `GET /api/cluster`.
    #[command(flatten)]
    pub output: JsonOutput,
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    cache: CacheFlags,
}

settle_by!(ClusterStatusArgs: database, cache);

impl Settle for ClusterCommand {
    fn apply(&self, settings: &mut Settings) {
        let Self::Status(args) = self;
        args.apply(settings);
    }
}

/// `cluster …`.
pub async fn cluster(
    settings: Settings,
    command: ClusterCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let ClusterCommand::Status(args) = command;
    let clustered = settings.is_clustered();
    let monitor = Monitor::open(settings).await?;
    let document = if clustered {
        let members = monitor
            .cluster()
            .members()
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the cluster: {e}"))?;
        ClusterJson::of(true, None, members)
    } else {
        ClusterJson::of(false, None, Vec::new())
    };
    emit_json(out, &args.output, || &document, |out| print(out, &document))
}

/// The people's view: one row an instance.
fn print(out: &mut (dyn Write + Send), document: &ClusterJson) -> anyhow::Result<()> {
    if !document.shared {
        writeln!(
            out,
            "no cluster: without CSM_REDIS_URL (or on SQLite) a csm server runs alone and refreshes every station"
        )?;
        return Ok(());
    }
    if document.instances.is_empty() {
        writeln!(
            out,
            "no live instance: no csm server on this Redis and CSM_CACHE_PREFIX has beaten in the last 2 s"
        )?;
        return Ok(());
    }
    let now = Utc::now();
    let mut table = super::table([
        "instance",
        "version",
        "up since",
        "last heartbeat",
        "slots",
        "stations",
        "chargers",
    ]);
    for instance in &document.instances {
        let ago = (now - instance.heartbeat_at).num_milliseconds().max(0);
        table.add_row([
            instance.id.clone(),
            instance.version.clone(),
            instance
                .started_at
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
            format!("{:.1} s ago", ago as f64 / 1000.0),
            instance.slots.to_string(),
            instance.stations.to_string(),
            instance.chargers.to_string(),
        ]);
    }
    writeln!(out, "{table}")?;
    let stations: usize = document.instances.iter().map(|i| i.stations).sum();
    let chargers: usize = document.instances.iter().map(|i| i.chargers).sum();
    writeln!(
        out,
        "{} instances: {stations} polled stations refreshed, {chargers} chargers connected",
        document.instances.len()
    )?;
    Ok(())
}
