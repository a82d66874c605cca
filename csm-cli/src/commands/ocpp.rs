//! `csm-cli ocpp status`: the OCPP charge points, read from the registry the server keeps in
//! the database (written within a second of a change): how each is connected, when it last
//! sent what, its vendor, model and firmware. `--json` prints the document of
//! `GET /api/ocpp/charge-points`.
//!
//! `csm-cli ocpp command ID …` and `csm-cli ocpp messages ID [--follow]` go through a running
//! server (`--server`, any instance of a cluster): an operator's command and its answer, and
//! the charger's message log, as `POST /api/ocpp/charge-points/{id}/commands` and
//! `GET /api/ocpp/charge-points/{id}/messages` answer them.

use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use csm_core::monitor::{ChargePointStatus, Connection};
use csm_core::settings::Settings;
use csm_core::views::ocpp::ChargePointListJson;
use csm_flags::DatabaseFlags;

use super::{JsonOutput, Settle, emit_json, open, settle_by};

/// `ocpp …`.
#[derive(Debug, Subcommand)]
pub enum OcppCommand {
    /// List the connected charge points: since when, their last message, their firmware.
    Status(StatusArgs),
    /// Send an operator's command to a charger (through the server holding it) and print its
    /// answer.
    Command(super::operate::CommandArgs),
    /// A charger's message log: its last frames in both directions.
    Messages(super::operate::MessagesArgs),
    /// The security profile a charge point must connect with, read or set: 1 (its password,
    /// if any), 2 (TLS: wss://) or 3 (TLS with its client certificate).
    Security(SecurityArgs),
}

/// Arguments of `ocpp security`.
#[derive(Debug, Args)]
pub struct SecurityArgs {
    /// The charge point.
    pub id: String,
    /// The profile to set (none: print the one set).
    #[arg(value_parser = clap::value_parser!(u8).range(1..=3))]
    pub profile: Option<u8>,
    #[command(flatten)]
    database: DatabaseFlags,
}

/// Arguments of `ocpp status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Every OCPP station, also those not connected now.
    #[arg(long)]
    pub all: bool,
    /// `--json`: the document of `GET /api/ocpp/charge-points`.
    #[command(flatten)]
    pub output: JsonOutput,
    #[command(flatten)]
    database: DatabaseFlags,
}

impl Settle for OcppCommand {
    fn apply(&self, settings: &mut Settings) {
        match self {
            Self::Status(args) => args.apply(settings),
            Self::Security(args) => args.apply(settings),
            Self::Command(_) | Self::Messages(_) => {}
        }
    }
}

settle_by!(StatusArgs: database);
settle_by!(SecurityArgs: database);

/// `ocpp …`.
pub async fn ocpp(
    settings: Settings,
    command: OcppCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let args = match command {
        OcppCommand::Status(args) => args,
        OcppCommand::Command(args) => return super::operate::command(args, out).await,
        OcppCommand::Messages(args) => return super::operate::messages(args, out).await,
        OcppCommand::Security(args) => {
            let monitor = open(settings).await?;
            let id = csm_core::model::StationId::parse(&args.id)?;
            if let Some(profile) = args.profile {
                monitor.ocpp().set_security_profile(&id, profile).await?;
            }
            let profile = monitor.ocpp().security_profile(&id).await?;
            writeln!(out, "charge point {id}: security profile {profile}")?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let monitor = open(settings).await?;
    let list = monitor.ocpp().charge_points(args.all).await?;
    emit_json(
        out,
        &args.output,
        || ChargePointListJson::of(&list),
        |out| print_charge_points(out, &list, args.all),
    )
}

/// The people's view of the charge points: a table and how many are connected.
fn print_charge_points(
    out: &mut (dyn Write + Send),
    list: &[ChargePointStatus],
    all: bool,
) -> anyhow::Result<()> {
    if list.is_empty() {
        let what = if all {
            "no OCPP charge points: a charger appears when it connects to ws://HOST/ocpp/{id} (CSM_OCPP_REGISTRATION=auto) or is added with `csm-cli stations add ID NAME --vendor ocpp`"
        } else {
            "no charge point is connected (`--all` lists every OCPP station)"
        };
        writeln!(out, "{what}")?;
        return Ok(());
    }
    let now = Utc::now();
    let mut table = super::table([
        "charge point",
        "ocpp",
        "connection",
        "since",
        "last message",
        "vendor / model",
        "firmware",
    ]);
    for status in list {
        let r = &status.record;
        let since = match status.connection {
            Connection::Connected | Connection::Silent => r.connected_at,
            Connection::Disconnected | Connection::Never => r.disconnected_at,
        };
        let last = match (&r.last_action, r.last_message_at) {
            (Some(action), Some(at)) => format!("{action}, {}", ago(at, now)),
            (None, Some(at)) => ago(at, now),
            _ => String::new(),
        };
        let maker = [r.vendor.as_deref(), r.model.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" / ");
        let firmware = match (&r.firmware, &r.firmware_status) {
            (Some(version), Some(status)) => format!("{version} ({status})"),
            (Some(version), None) => version.clone(),
            (None, Some(status)) => format!("({status})"),
            (None, None) => String::new(),
        };
        table.add_row([
            format!("{} {}", status.station.id, status.station.name),
            r.ocpp_version.map(|v| v.to_string()).unwrap_or_default(),
            status.connection.as_str().to_owned(),
            since
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default(),
            last,
            maker,
            firmware,
        ]);
    }
    writeln!(out, "{table}")?;
    let connected = list
        .iter()
        .filter(|s| s.connection == Connection::Connected)
        .count();
    writeln!(out, "{connected} of {} connected", list.len())?;
    Ok(())
}

/// "12 s ago", "3 min ago", "2 h ago".
fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds().max(0);
    match secs {
        0..120 => format!("{secs} s ago"),
        120..7_200 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_the_unit_that_fits() {
        let now = Utc::now();
        let before = |secs: i64| now - chrono::TimeDelta::seconds(secs);
        assert_eq!(ago(before(5), now), "5 s ago");
        assert_eq!(ago(before(600), now), "10 min ago");
        assert_eq!(ago(before(3 * 3_600 + 5), now), "3 h ago");
        assert_eq!(ago(now + chrono::TimeDelta::seconds(3), now), "0 s ago");
    }
}
