//! `csm-cli ocpp command ID …` and `csm-cli ocpp messages ID`: an operator at a misbehaving
//! charger. Both go through a running server ([`ServerFlags`]); each command is named as the
//! API names it (`reset` is `Reset`, `get-configuration` is `GetConfiguration`, …), once for
//! both OCPP versions: the server sends it as the charger's version says, or refuses a command
//! that version does not have.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use csm_core::ocpp::Command;
use csm_core::views::ocpp::{CommandAnswerJson, MessageJson, MessageLogJson};
use serde_json::json;

use super::server::ServerFlags;
use super::{JsonOutput, emit_json};

/// Arguments of `ocpp command`.
#[derive(Debug, Args)]
pub struct CommandArgs {
    /// The charge point.
    pub id: String,
    /// What to ask of it.
    #[command(subcommand)]
    pub command: OperatorCommand,
    /// Seconds to wait for the charger's answer (1–25; default 10).
    #[arg(long, global = true)]
    pub timeout_secs: Option<u64>,
    /// `--json`: the document of `POST /api/ocpp/charge-points/{id}/commands`.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerFlags,
}

/// `Soft` or `Hard` (OCPP 1.6), `Immediate` or `OnIdle` (OCPP 2.0.1).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ResetType {
    /// 1.6: stop transactions, restart the software.
    Soft,
    /// 1.6: restart the hardware.
    Hard,
    /// 2.0.1: stop transactions and restart now.
    Immediate,
    /// 2.0.1: restart once no transaction runs.
    OnIdle,
}

/// The base reports of OCPP 2.0.1 (named as the specification names them).
#[derive(Debug, Clone, Copy, ValueEnum)]
#[allow(clippy::enum_variant_names)]
pub enum ReportType {
    /// The variables that can be configured.
    ConfigurationInventory,
    /// Every component and variable.
    FullInventory,
    /// The components' availability and problems.
    SummaryInventory,
}

/// In service or not.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AvailabilityType {
    /// In service.
    Operative,
    /// Taken out of service.
    Inoperative,
}

/// The commands, as the API names them.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Restart the charger.
    Reset {
        /// 1.6: `soft` (stop transactions, restart the software) or `hard`; 2.0.1:
        /// `immediate` or `on-idle`.
        #[arg(value_enum, default_value = "soft")]
        kind: ResetType,
    },
    /// Release the cable lock of a connector.
    UnlockConnector {
        /// The connector, from 1.
        connector: u32,
    },
    /// Take a connector, or with 0 the whole charger, out of service or back.
    ChangeAvailability {
        /// `operative` or `inoperative`.
        #[arg(value_enum)]
        availability: AvailabilityType,
        /// The connector (0, the default: the whole charger).
        #[arg(long, default_value_t = 0)]
        connector: u32,
    },
    /// Read the charger's configuration: every key, or the ones named.
    GetConfiguration {
        /// Keys to read (none: all).
        keys: Vec<String>,
    },
    /// Change one configuration key.
    ChangeConfiguration {
        /// The key.
        key: String,
        /// Its new value.
        value: String,
    },
    /// OCPP 2.0.1: read variables, each `COMPONENT.VARIABLE` (or `COMPONENT.VARIABLE[INSTANCE]`).
    GetVariables {
        /// The variables (1–100).
        #[arg(required = true)]
        variables: Vec<String>,
        /// The EVSE (port) whose components they are (none: the station's).
        #[arg(long)]
        evse: Option<u32>,
    },
    /// OCPP 2.0.1: set variables, each `COMPONENT.VARIABLE=VALUE` (or
    /// `COMPONENT.VARIABLE[INSTANCE]=VALUE`).
    SetVariables {
        /// The variables and their values (1–100).
        #[arg(required = true)]
        variables: Vec<String>,
        /// The EVSE (port) whose components they are (none: the station's).
        #[arg(long)]
        evse: Option<u32>,
    },
    /// OCPP 2.0.1: ask for a base report; it is printed as it comes within the wait.
    GetBaseReport {
        /// Which report.
        #[arg(value_enum, default_value = "configuration-inventory")]
        report: ReportType,
    },
    /// Ask the charger to send a message now (BootNotification, FirmwareStatusNotification,
    /// Heartbeat, MeterValues, StatusNotification; 1.6: DiagnosticsStatusNotification; 2.0.1:
    /// LogStatusNotification, TransactionEvent).
    TriggerMessage {
        /// The message.
        message: String,
        /// The connector it is about.
        #[arg(long)]
        connector: Option<u32>,
    },
    /// Clear the charger's cache of authorised id tags.
    ClearCache,
    /// Start a transaction for an id tag.
    RemoteStartTransaction {
        /// The id tag.
        #[arg(long)]
        id_tag: String,
        /// The connector (none: the charger chooses).
        #[arg(long)]
        connector: Option<u32>,
    },
    /// Stop a transaction: by its id, or the one running on a connector.
    RemoteStopTransaction {
        /// The transaction's id (1.6: a number; 2.0.1: the charger's text).
        #[arg(
            long,
            conflicts_with = "connector",
            required_unless_present = "connector"
        )]
        transaction: Option<String>,
        /// The connector whose transaction to stop.
        #[arg(long)]
        connector: Option<u32>,
    },
}

/// `COMPONENT.VARIABLE[INSTANCE]` (and `=VALUE` when `with_value`) as the API names it.
fn variable(text: &str, evse: Option<u32>, with_value: bool) -> anyhow::Result<serde_json::Value> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) if with_value => (name, Some(value)),
        None if !with_value => (text, None),
        _ if with_value => anyhow::bail!("{text:?}: write COMPONENT.VARIABLE=VALUE"),
        _ => anyhow::bail!("{text:?}: write COMPONENT.VARIABLE, with no value"),
    };
    let (name, instance) = match name.strip_suffix(']').and_then(|n| n.split_once('[')) {
        Some((name, instance)) => (name, Some(instance)),
        None => (name, None),
    };
    let Some((component, variable)) = name.split_once('.') else {
        anyhow::bail!(
            "{text:?}: name the component and the variable, as OCPPCommCtrlr.HeartbeatInterval"
        );
    };
    let mut entry = json!({"component": component, "variable": variable});
    if let Some(instance) = instance {
        entry["instance"] = json!(instance);
    }
    if let Some(evse) = evse {
        entry["evse"] = json!(evse);
    }
    if let Some(value) = value {
        entry["value"] = json!(value);
    }
    Ok(entry)
}

impl OperatorCommand {
    /// The body the API takes.
    fn body(&self) -> anyhow::Result<serde_json::Value> {
        let variables = |list: &[String], evse: Option<u32>, with_value: bool| {
            list.iter()
                .map(|text| variable(text, evse, with_value))
                .collect::<anyhow::Result<Vec<_>>>()
        };
        Ok(match self {
            Self::Reset { kind } => json!({"command": "Reset", "type": match kind {
                ResetType::Soft => "Soft",
                ResetType::Hard => "Hard",
                ResetType::Immediate => "Immediate",
                ResetType::OnIdle => "OnIdle",
            }}),
            Self::GetVariables {
                variables: list,
                evse,
            } => {
                json!({"command": "GetVariables", "variables": variables(list, *evse, false)?})
            }
            Self::SetVariables {
                variables: list,
                evse,
            } => {
                json!({"command": "SetVariables", "variables": variables(list, *evse, true)?})
            }
            Self::GetBaseReport { report } => {
                json!({"command": "GetBaseReport", "report": match report {
                    ReportType::ConfigurationInventory => "ConfigurationInventory",
                    ReportType::FullInventory => "FullInventory",
                    ReportType::SummaryInventory => "SummaryInventory",
                }})
            }
            Self::UnlockConnector { connector } => {
                json!({"command": "UnlockConnector", "connector": connector})
            }
            Self::ChangeAvailability {
                availability,
                connector,
            } => json!({"command": "ChangeAvailability", "connector": connector,
            "availability": match availability {
                AvailabilityType::Operative => "Operative",
                AvailabilityType::Inoperative => "Inoperative",
            }}),
            Self::GetConfiguration { keys } => json!({"command": "GetConfiguration", "keys": keys}),
            Self::ChangeConfiguration { key, value } => {
                json!({"command": "ChangeConfiguration", "key": key, "value": value})
            }
            Self::TriggerMessage { message, connector } => {
                json!({"command": "TriggerMessage", "message": message, "connector": connector})
            }
            Self::ClearCache => json!({"command": "ClearCache"}),
            Self::RemoteStartTransaction { id_tag, connector } => {
                json!({"command": "RemoteStartTransaction", "id_tag": id_tag, "connector": connector})
            }
            Self::RemoteStopTransaction {
                transaction,
                connector,
            } => json!({"command": "RemoteStopTransaction", "transaction_id": transaction,
                "connector": connector}),
        })
    }
}

/// `ocpp command ID …`: checks the command here, sends it, prints the charger's answer.
pub async fn command(args: CommandArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<ExitCode> {
    let body = args.command.body()?;
    let command: Command =
        serde_json::from_value(body.clone()).map_err(|e| anyhow::anyhow!("not a command: {e}"))?;
    command.check()?;
    let query = args
        .timeout_secs
        .map(|secs| format!("?timeout_secs={secs}"))
        .unwrap_or_default();
    let path = format!("/api/ocpp/charge-points/{}/commands{query}", args.id);
    let answer: CommandAnswerJson = args
        .server
        .ask(reqwest::Method::POST, &path, Some(&body))
        .await?;
    emit_json(
        out,
        &JsonOutput { json: args.json },
        || answer.clone(),
        |out| print_answer(out, &answer),
    )
}

fn print_answer(out: &mut (dyn Write + Send), answer: &CommandAnswerJson) -> anyhow::Result<()> {
    if let Some(keys) = &answer.configuration {
        let mut table = super::table(["key", "value", "read-only"]);
        for key in keys {
            table.add_row([
                key.key.clone(),
                key.value.clone().unwrap_or_default(),
                if key.readonly { "yes" } else { "" }.to_owned(),
            ]);
        }
        writeln!(out, "{table}")?;
        if let Some(unknown) = answer.unknown_keys.as_ref().filter(|k| !k.is_empty()) {
            writeln!(out, "unknown to the charger: {}", unknown.join(", "))?;
        }
    }
    if let Some(variables) = &answer.variables {
        let mut table = super::table(["component", "evse", "variable", "value", "status"]);
        for v in variables {
            let name = match &v.instance {
                Some(instance) => format!("{}[{instance}]", v.variable),
                None => v.variable.clone(),
            };
            table.add_row([
                v.component.clone(),
                v.evse.map(|e| e.to_string()).unwrap_or_default(),
                name,
                v.value.clone().unwrap_or_default(),
                v.status.clone().unwrap_or_default(),
            ]);
        }
        writeln!(out, "{table}")?;
    }
    if let Some(report) = &answer.report {
        for entry in &report.data {
            writeln!(out, "{entry}")?;
        }
        if !report.complete {
            writeln!(out, "(the report was not complete within the wait)")?;
        }
    }
    let status = match (&answer.status, &answer.configuration) {
        (Some(status), _) => status.clone(),
        (None, Some(keys)) => format!("{} keys", keys.len()),
        (None, None) => "answered".to_owned(),
    };
    writeln!(
        out,
        "{} {}: {status} (in {} ms)",
        answer.station_id, answer.action, answer.took_ms
    )?;
    Ok(())
}

/// Arguments of `ocpp messages`.
#[derive(Debug, Args)]
pub struct MessagesArgs {
    /// The charge point.
    pub id: String,
    /// Keep printing new frames as they come (every second) until interrupted.
    #[arg(long)]
    pub follow: bool,
    /// At most this many frames, the newest (1–200).
    #[arg(long, default_value_t = 200)]
    pub limit: usize,
    /// `--json`: the document of `GET /api/ocpp/charge-points/{id}/messages` (with `--follow`,
    /// one frame's JSON a line).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerFlags,
}

/// `ocpp messages ID`: the charger's last frames, and with `--follow` those that come after.
pub async fn messages(
    args: MessagesArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let path = |after: u64| {
        format!(
            "/api/ocpp/charge-points/{}/messages?after={after}&limit={}",
            args.id, args.limit
        )
    };
    let log: MessageLogJson = args
        .server
        .ask(reqwest::Method::GET, &path(0), None)
        .await?;
    if !args.follow {
        return emit_json(
            out,
            &JsonOutput { json: args.json },
            || log.clone(),
            |out| {
                if log.messages.is_empty() {
                    writeln!(
                        out,
                        "no frames kept for {} (a log starts when the charger connects to this cluster)",
                        log.station_id
                    )?;
                }
                log.messages.iter().try_for_each(|m| print_message(out, m))
            },
        );
    }
    let mut last = print_new(out, &log, args.json)?;
    let mut instance = log.instance;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let mut log: MessageLogJson = args
            .server
            .ask(reqwest::Method::GET, &path(last), None)
            .await?;
        // Another instance holds the charger now: its log is numbered on its own.
        if log.instance != instance {
            log = args
                .server
                .ask(reqwest::Method::GET, &path(0), None)
                .await?;
            instance.clone_from(&log.instance);
            last = 0;
        }
        last = last.max(print_new(out, &log, args.json)?);
    }
}

/// Prints the frames of a followed log (JSON: one a line); the newest frame's number.
fn print_new(
    out: &mut (dyn Write + Send),
    log: &MessageLogJson,
    json: bool,
) -> anyhow::Result<u64> {
    for message in &log.messages {
        if json {
            serde_json::to_writer(&mut *out, message)?;
            writeln!(out)?;
        } else {
            print_message(out, message)?;
        }
    }
    out.flush()?;
    Ok(log.messages.iter().map(|m| m.seq).max().unwrap_or(0))
}

/// One frame a line: csm's time, the direction, the action, the frame.
fn print_message(out: &mut (dyn Write + Send), message: &MessageJson) -> anyhow::Result<()> {
    let arrow = match message.direction {
        csm_core::ocpp::Direction::In => "→ csm",
        csm_core::ocpp::Direction::Out => "← csm",
        csm_core::ocpp::Direction::Note => "  ···",
    };
    writeln!(
        out,
        "{}  {arrow}  {:<22} {}",
        message.at.format("%Y-%m-%d %H:%M:%S%.3f"),
        message.action.as_deref().unwrap_or(""),
        message.frame
    )?;
    Ok(())
}
