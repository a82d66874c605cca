//! `csm-cli alerts …`: channels (list, add, remove, test), rules (list, add, remove) and the
//! history of fired alerts. `--json` prints the documents of the `/api/alerts/…` endpoints.
//! The server's evaluator picks up rules added here within seconds.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use csm_core::alerts::{AlertRecord, ChannelDraft, ChannelJson, RuleDraft, RuleJson, Scope};
use csm_core::settings::Settings;
use csm_core::views::alerts::{AlertListJson, ChannelListJson, ChannelTestJson, RuleListJson};
use csm_flags::{AlertFlags, DatabaseFlags};

use super::{JsonOutput, Settle, emit_json, open, settle_by};

/// `alerts …`.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Where alerts are sent: webhooks and the Feishu, DingTalk and WeCom group bots.
    #[command(subcommand)]
    Channels(ChannelsCommand),
    /// What fires an alert.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// The latest fired alerts with their delivery state.
    History(HistoryArgs),
}

/// `alerts channels …`.
#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// List the channels (URLs redacted, secrets never shown).
    List(Listing),
    /// Add a channel.
    Add(AddChannelArgs),
    /// Remove a channel no rule sends to.
    Remove(NamedChannel),
    /// Send a test message to a channel and print what the platform answered.
    Test(NamedChannel),
}

/// `alerts rules …`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules.
    List(Listing),
    /// Add a rule.
    Add(Box<AddRuleArgs>),
    /// Remove a rule (alerts it fired are still delivered).
    Remove(RuleIdArgs),
}

/// What every alert command connects to.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    #[command(flatten)]
    database: DatabaseFlags,
    #[command(flatten)]
    alerts: AlertFlags,
}

/// A list command's arguments.
#[derive(Debug, Args)]
pub struct Listing {
    /// `--json`: the document the API answers.
    #[command(flatten)]
    pub output: JsonOutput,
    #[command(flatten)]
    connection: Connection,
}

/// Arguments of `alerts channels add`: the fields of `POST /api/alerts/channels`.
#[derive(Debug, Args)]
pub struct AddChannelArgs {
    /// The channel's name (letters, digits, `-`, `_`).
    pub name: String,
    /// `webhook`, `feishu`, `dingtalk` or `wecom`.
    #[arg(long)]
    pub kind: String,
    /// The address to post to (a bot's webhook URL with its token).
    #[arg(long)]
    pub url: String,
    /// The signing secret (webhook: required; Feishu, DingTalk: their signed-secret mode).
    /// Also read from CSM_ALERT_SECRET, which keeps it out of the shell's history.
    #[arg(long, env = "CSM_ALERT_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// `--json`: the document the API answers.
    #[command(flatten)]
    pub output: JsonOutput,
    #[command(flatten)]
    connection: Connection,
}

/// A channel named on the command line.
#[derive(Debug, Args)]
pub struct NamedChannel {
    /// The channel's name.
    pub name: String,
    /// `--json`: the document the API answers.
    #[command(flatten)]
    pub output: JsonOutput,
    #[command(flatten)]
    connection: Connection,
}

/// Arguments of `alerts rules add`: the fields of `POST /api/alerts/rules`.
#[derive(Debug, Args)]
pub struct AddRuleArgs {
    /// `port_free`, `free_ports`, `fault`, `offline` or `voltage`.
    #[arg(long)]
    pub kind: String,
    /// `all`, or station ids separated by commas.
    #[arg(long)]
    pub stations: String,
    /// Only these ports, separated by commas.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub ports: Option<Vec<i64>>,
    /// Seconds the condition must hold before the rule fires (default: at once for
    /// port_free and free_ports, 300 for the others).
    #[arg(long, allow_negative_numbers = true)]
    pub min_secs: Option<i64>,
    /// free_ports: how many ports must be free.
    #[arg(long, allow_negative_numbers = true)]
    pub free_ports: Option<i64>,
    /// voltage: the lowest acceptable voltage.
    #[arg(long, allow_negative_numbers = true)]
    pub low: Option<f64>,
    /// voltage: the highest acceptable voltage.
    #[arg(long, allow_negative_numbers = true)]
    pub high: Option<f64>,
    /// The channel it sends to.
    #[arg(long)]
    pub channel: String,
    /// Remove the rule after it fires once.
    #[arg(long)]
    pub once: bool,
    /// Also announce when the condition ends.
    #[arg(long)]
    pub resolved: bool,
    /// A daily window (`23:00-07:00`) when non-urgent alerts wait for its end.
    #[arg(long)]
    pub quiet_hours: Option<String>,
    /// The time zone of the quiet hours (default: CSM_TIMEZONE).
    #[arg(long)]
    pub timezone: Option<String>,
    /// `--json`: the document the API answers.
    #[command(flatten)]
    pub output: JsonOutput,
    #[command(flatten)]
    connection: Connection,
}

/// A rule named on the command line.
#[derive(Debug, Args)]
pub struct RuleIdArgs {
    /// The rule's id.
    pub id: u64,
    #[command(flatten)]
    connection: Connection,
}

/// Arguments of `alerts history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// At most this many, newest first (1–1,000).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// `--json`: the document the API answers.
    #[command(flatten)]
    pub output: JsonOutput,
    #[command(flatten)]
    connection: Connection,
}

impl AlertsCommand {
    fn connection(&self) -> &Connection {
        match self {
            Self::Channels(ChannelsCommand::List(a)) => &a.connection,
            Self::Channels(ChannelsCommand::Test(a) | ChannelsCommand::Remove(a)) => &a.connection,
            Self::Channels(ChannelsCommand::Add(a)) => &a.connection,
            Self::Rules(RulesCommand::List(a)) => &a.connection,
            Self::Rules(RulesCommand::Add(a)) => &a.connection,
            Self::Rules(RulesCommand::Remove(a)) => &a.connection,
            Self::History(a) => &a.connection,
        }
    }
}

impl Settle for AlertsCommand {
    fn apply(&self, settings: &mut Settings) {
        self.connection().apply(settings);
    }
}

settle_by!(Connection: database, alerts);

/// `alerts …`.
pub async fn alerts(
    settings: Settings,
    command: AlertsCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let monitor = open(settings).await?;
    match command {
        AlertsCommand::Channels(ChannelsCommand::List(args)) => {
            let document = ChannelListJson {
                channels: monitor.alerts().channels().await?,
            };
            emit_json(
                out,
                &args.output,
                || &document,
                |out| print_channels(out, &document.channels),
            )
        }
        AlertsCommand::Channels(ChannelsCommand::Add(args)) => {
            let draft = ChannelDraft {
                name: args.name,
                kind: args.kind,
                url: args.url,
                secret: args.secret,
            };
            let channel = monitor.alerts().add_channel(draft).await?;
            emit_json(
                out,
                &args.output,
                || &channel,
                |out| {
                    let (name, kind, url) = (&channel.name, channel.kind.as_str(), &channel.url);
                    writeln!(out, "added channel {name} ({kind}, {url})")?;
                    Ok(())
                },
            )
        }
        AlertsCommand::Channels(ChannelsCommand::Remove(args)) => {
            monitor.alerts().remove_channel(&args.name).await?;
            writeln!(out, "removed channel {}", args.name)?;
            Ok(ExitCode::SUCCESS)
        }
        AlertsCommand::Channels(ChannelsCommand::Test(args)) => {
            let outcome = monitor.alerts().test_channel(&args.name).await?;
            let document = ChannelTestJson::of(&args.name, outcome);
            emit_json(
                out,
                &args.output,
                || &document,
                |out| {
                    if document.accepted {
                        writeln!(out, "{}: the platform accepted the test message", args.name)?;
                    } else {
                        writeln!(out, "{}: not delivered: {}", args.name, document.answer)?;
                    }
                    Ok(())
                },
            )?;
            Ok(if document.accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AlertsCommand::Rules(RulesCommand::List(args)) => {
            let document = RuleListJson {
                rules: monitor.alerts().rules().await?,
            };
            emit_json(
                out,
                &args.output,
                || &document,
                |out| print_rules(out, &document.rules),
            )
        }
        AlertsCommand::Rules(RulesCommand::Add(args)) => {
            let stations = if args.stations.trim() == "all" {
                serde_json::Value::String("all".into())
            } else {
                args.stations
                    .split(',')
                    .map(|s| serde_json::Value::String(s.trim().to_owned()))
                    .collect()
            };
            let args = *args;
            let draft = RuleDraft {
                id: None,
                kind: args.kind,
                stations,
                ports: args
                    .ports
                    .map(|ports| ports.into_iter().map(serde_json::Number::from).collect()),
                min_secs: args.min_secs.map(serde_json::Number::from),
                free_ports: args.free_ports.map(serde_json::Number::from),
                low: args.low,
                high: args.high,
                channel: args.channel,
                once: args.once,
                resolved: args.resolved,
                quiet_hours: args.quiet_hours,
                timezone: args.timezone,
            };
            let rule = monitor.alerts().add_rule(draft).await?;
            emit_json(
                out,
                &args.output,
                || &rule,
                |out| {
                    let (id, kind, channel) = (rule.id, rule.kind.as_str(), &rule.channel);
                    writeln!(out, "added rule {id} ({kind} → {channel})")?;
                    Ok(())
                },
            )
        }
        AlertsCommand::Rules(RulesCommand::Remove(args)) => {
            monitor.alerts().remove_rule(args.id).await?;
            writeln!(out, "removed rule {}", args.id)?;
            Ok(ExitCode::SUCCESS)
        }
        AlertsCommand::History(args) => {
            let document = AlertListJson {
                alerts: monitor.alerts().history(args.limit).await?,
            };
            emit_json(
                out,
                &args.output,
                || &document,
                |out| print_history(out, &document.alerts),
            )
        }
    }
}

/// The channels as a table; URLs come redacted, secrets only as "set".
fn print_channels(out: &mut (dyn Write + Send), channels: &[ChannelJson]) -> anyhow::Result<()> {
    let mut table = super::table(["name", "kind", "url", "secret"]);
    for c in channels {
        let secret = if c.has_secret { "set" } else { "-" };
        table.add_row(vec![c.name.as_str(), c.kind.as_str(), &c.url, secret]);
    }
    writeln!(out, "{table}")?;
    Ok(())
}

/// The rules as a table, a rule's own fields and options in one column.
fn print_rules(out: &mut (dyn Write + Send), rules: &[RuleJson]) -> anyhow::Result<()> {
    let mut table = super::table([
        "id", "kind", "stations", "ports", "min", "channel", "options",
    ]);
    for rule in rules {
        let stations = match &rule.stations {
            Scope::All => "all".to_owned(),
            Scope::Stations(ids) => ids
                .iter()
                .map(|id| id.as_str())
                .collect::<Vec<_>>()
                .join(","),
        };
        let ports = rule
            .ports
            .as_ref()
            .map(|p| p.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| "all".into());
        let mut options = Vec::new();
        if let Some(k) = rule.free_ports {
            options.push(format!("free ≥ {k}"));
        }
        if let (Some(low), Some(high)) = (rule.low, rule.high) {
            options.push(format!("{low}–{high} V"));
        }
        if rule.once {
            options.push("once".into());
        }
        if rule.resolved {
            options.push("resolved".into());
        }
        if let Some(quiet) = &rule.quiet_hours {
            options.push(format!("quiet {quiet} {}", rule.timezone));
        }
        table.add_row(vec![
            rule.id.to_string(),
            rule.kind.as_str().to_owned(),
            stations,
            ports,
            format!("{} s", rule.min_secs),
            rule.channel.clone(),
            options.join(", "),
        ]);
    }
    writeln!(out, "{table}")?;
    Ok(())
}

/// The fired alerts as a table, with the last delivery error under the message.
fn print_history(out: &mut (dyn Write + Send), alerts: &[AlertRecord]) -> anyhow::Result<()> {
    let mut table = super::table(["at", "channel", "state", "tries", "message"]);
    for record in alerts {
        let mut message = record.alert.text.clone();
        if let Some(error) = &record.last_error {
            message.push_str(&format!("\n({error})"));
        }
        table.add_row(vec![
            record.alert.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            record.channel.clone(),
            record.state.as_str().to_owned(),
            record.attempts.to_string(),
            message,
        ]);
    }
    writeln!(out, "{table}")?;
    Ok(())
}
