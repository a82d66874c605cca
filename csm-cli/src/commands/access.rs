//! `csm-cli tokens …` (add, list, revoke) and `csm-cli audit`: the API's tokens and its audit
//! log, read and written in the database, so an operator can make the first token before any
//! server runs. `--json` prints the documents of `/api/tokens` and `/api/audit`, `--csv` that
//! of `/api/audit?format=csv`.

use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, TimeDelta, Utc};
use clap::{Args, Subcommand};
use csm_core::model::access::Role;
use csm_core::views::access::{
    AuditEntryJson, AuditListJson, NewTokenJson, TokenJson, TokenListJson,
};
use csm_core::views::history::csv;
use csm_flags::DatabaseFlags;

use super::{JsonOutput, Output, Settle, emit, emit_json, open, print_json, settle_by};
use crate::UsageError;

/// `tokens …`.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Add a token for a person and print it, this once (only its hash is kept).
    Add(AddTokenArgs),
    /// List the tokens: name, role, created, last used.
    List(ListTokensArgs),
    /// Revoke a token: it stops working within 2 seconds on every server.
    Revoke(RevokeTokenArgs),
}

/// Arguments of `tokens add`.
#[derive(Debug, Args)]
pub struct AddTokenArgs {
    /// Who it is for (letters, digits, `.`, `_`, `-`, `@`).
    pub name: String,
    /// `viewer` (reads what is protected), `operator` (commands, refreshes) or `admin`
    /// (stations, alerts, tokens, settings).
    #[arg(long)]
    pub role: String,
    /// `--json`: the document of `POST /api/tokens`.
    #[command(flatten)]
    pub output: JsonOutput,
    #[command(flatten)]
    database: DatabaseFlags,
}

/// Arguments of `tokens list`.
#[derive(Debug, Args)]
pub struct ListTokensArgs {
    /// `--json`: the document of `GET /api/tokens`.
    #[command(flatten)]
    pub output: JsonOutput,
    #[command(flatten)]
    database: DatabaseFlags,
}

/// Arguments of `tokens revoke`.
#[derive(Debug, Args)]
pub struct RevokeTokenArgs {
    /// The token's name.
    pub name: String,
    #[command(flatten)]
    database: DatabaseFlags,
}

settle_by!(AddTokenArgs: database);
settle_by!(ListTokensArgs: database);
settle_by!(RevokeTokenArgs: database);

impl Settle for TokensCommand {
    fn apply(&self, settings: &mut csm_core::settings::Settings) {
        match self {
            Self::Add(args) => args.apply(settings),
            Self::List(args) => args.apply(settings),
            Self::Revoke(args) => args.apply(settings),
        }
    }
}

/// `tokens …`.
pub async fn tokens(
    settings: csm_core::settings::Settings,
    command: TokensCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    match command {
        TokensCommand::Add(args) => {
            let role = Role::parse(&args.role).map_err(|e| UsageError(e.to_string()))?;
            let monitor = open(settings).await?;
            let (record, token) = monitor.access().add_token(&args.name, role).await?;
            if args.output.json {
                print_json(
                    out,
                    &NewTokenJson {
                        record: TokenJson::of(&record),
                        token,
                    },
                )?;
            } else {
                writeln!(
                    out,
                    "token {} ({}), shown this once; csm keeps only its hash:",
                    record.name, record.role
                )?;
                writeln!(out, "{token}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        TokensCommand::List(args) => {
            let monitor = open(settings).await?;
            let tokens = monitor.access().tokens().await?;
            emit_json(
                out,
                &args.output,
                || TokenListJson {
                    tokens: tokens.iter().map(TokenJson::of).collect(),
                },
                |out| {
                    if tokens.is_empty() {
                        writeln!(
                            out,
                            "no tokens: add one with `csm-cli tokens add NAME --role viewer|operator|admin`"
                        )?;
                        return Ok(());
                    }
                    let mut table = super::table(["name", "role", "created", "last used"]);
                    for t in &tokens {
                        table.add_row([
                            t.name.clone(),
                            t.role.to_string(),
                            shown(t.created_at),
                            t.last_used_at.map(shown).unwrap_or_else(|| "never".into()),
                        ]);
                    }
                    writeln!(out, "{table}")?;
                    Ok(())
                },
            )
        }
        TokensCommand::Revoke(args) => {
            let monitor = open(settings).await?;
            monitor.access().revoke(&args.name).await?;
            writeln!(out, "token {} revoked", args.name)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn shown(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Arguments of `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The last this many days (default 7).
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// At most this many entries, the newest (1–10,000).
    #[arg(long, default_value_t = 1_000)]
    pub limit: u32,
    /// `--json`, `--csv`: the documents of `GET /api/audit`.
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    database: DatabaseFlags,
}

settle_by!(AuditArgs: database);

/// `audit`: who wrote what, newest first.
pub async fn audit(
    settings: csm_core::settings::Settings,
    args: AuditArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    if args.days == 0 || !(1..=csm_core::monitor::MAX_AUDIT).contains(&args.limit) {
        return Err(
            UsageError("--days must be at least 1 and --limit within 1..10000".into()).into(),
        );
    }
    let monitor = open(settings).await?;
    let to = csm_core::model::now();
    let from = to - TimeDelta::days(i64::from(args.days));
    let entries = monitor.access().audit(from, to, args.limit).await?;
    emit(
        out,
        &args.output,
        || AuditListJson {
            from,
            to,
            entries: entries.iter().map(AuditEntryJson::of).collect(),
        },
        || csv::audit(&entries),
        |out| {
            if entries.is_empty() {
                writeln!(
                    out,
                    "nothing in the audit log over the last {} days",
                    args.days
                )?;
                return Ok(());
            }
            let mut table = super::table(["at", "who", "from", "request", "answer"]);
            for e in &entries {
                let who = match e.role {
                    Some(role) => format!("{} ({role})", e.actor),
                    None => e.actor.clone(),
                };
                let request = match &e.request {
                    Some(body) => format!("{} {}\n{body}", e.method, e.path),
                    None => format!("{} {}", e.method, e.path),
                };
                table.add_row([
                    e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    who,
                    e.address.clone(),
                    request,
                    format!("{} {}", e.status, e.outcome),
                ]);
            }
            writeln!(out, "{table}")?;
            Ok(())
        },
    )
}
