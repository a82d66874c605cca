//! The operators' commands and the message log, wherever the charger's connection is: on this
//! instance they run here; otherwise the instance holding the charger is asked (over
//! [`crate::cluster::rpc`]) and its answer comes back as if run here.
//!
//! What the instances say to each other:
//! - `{"command": {"charger", "command", "timeout_ms"}}`: check the command against the
//!   charger and send it; answers `{"outcome": …}`, `{"invalid": {field, message}}` or
//!   `{"error": <CallError>}`;
//! - `{"messages": {"charger", "after", "limit"}}`: answers `{"messages": [...]}`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{CALL_TIMEOUT, Ocpp};
use crate::error::InvalidInput;
use crate::model::StationId;
use crate::monitor::MonitorError;
use crate::ocpp::command::{self, Command};
use crate::ocpp::{CallError, Logged, OCPP_VENDOR};

/// The longest an operator may wait for a charger's answer (within the server's 30 s for a
/// request).
pub const MAX_COMMAND_TIMEOUT: Duration = Duration::from_secs(25);
/// How often a GetBaseReport looks for the parts of its report.
const REPORT_POLL: Duration = Duration::from_millis(50);
/// How long the holder of a charger is given beyond the command's own wait.
const RELAY_MARGIN: Duration = Duration::from_secs(2);

/// What a charger answered to a command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// The OCPP action sent.
    pub action: String,
    /// The charger's `status` (`Accepted`, `Rejected`, `NotSupported`, `RebootRequired`, …),
    /// when its answer has one (GetConfiguration's has none).
    pub status: Option<String>,
    /// The charger's answer as it sent it.
    pub answer: Value,
    /// From sending to the answer, milliseconds (with the way to the holding instance).
    pub took_ms: u64,
    /// The instance that holds the charger and sent the command.
    pub instance: Option<String>,
    /// GetBaseReport: the report's entries the charger sent (NotifyReport `reportData`), and
    /// whether it sent all of them within the wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<CommandReport>,
}

/// A report a charger sent in answer to GetBaseReport.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandReport {
    /// Its entries, in the order sent (each a component, a variable and its attributes).
    pub data: Vec<Value>,
    /// Whether the charger said the last part came.
    pub complete: bool,
}

/// A charger's message log, as read from the instance holding it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageLogRead {
    /// The frames, oldest first.
    pub messages: Vec<Logged>,
    /// Whether the instance that answered holds the charger's connection now.
    pub connected: bool,
    /// The instance that answered (`None` alone).
    pub instance: Option<String>,
}

impl Ocpp {
    /// Sends an operator's command to charger `id` wherever its connection is, and waits at
    /// most `timeout` (`None`: 10 s; 1–25 s) for its answer. The command is checked
    /// first, on its own and against what the charger has said.
    pub async fn command(
        &self,
        id: &StationId,
        command: &Command,
        timeout: Option<Duration>,
    ) -> Result<CommandOutcome, MonitorError> {
        let timeout = timeout
            .unwrap_or(CALL_TIMEOUT)
            .clamp(Duration::from_secs(1), MAX_COMMAND_TIMEOUT);
        command.check()?;
        let station = self.station(id).await?;
        if station.vendor != OCPP_VENDOR {
            return Err(MonitorError::Conflict(format!(
                "station {id} is a {} station: commands go to OCPP charge points (vendor ocpp)",
                station.vendor
            )));
        }
        if self.source.holds(id) || !self.cluster.is_shared() {
            return self.command_here(id, command, timeout).await;
        }
        let Some(holder) = self.holder(id).await else {
            return Err(CallError::NotConnected(id.to_string()).into());
        };
        let request = json!({"command": {
            "charger": id.as_str(),
            "command": command,
            "timeout_ms": timeout.as_millis() as u64,
        }});
        let relayed = |message: String| CallError::Relayed {
            station: id.to_string(),
            message,
        };
        let answer = self
            .cluster
            .ask(&holder, request, timeout + RELAY_MARGIN * 2)
            .await
            .map_err(|e| relayed(e.to_string()))?;
        read_outcome(answer).map_err(|e| match e {
            Ok(invalid) => MonitorError::Invalid(invalid),
            Err(error) => error
                .unwrap_or_else(|| {
                    relayed(format!("instance {holder} gave an answer csm cannot read"))
                })
                .into(),
        })
    }

    /// Runs a command on a charger connected here.
    async fn command_here(
        &self,
        id: &StationId,
        command: &Command,
        timeout: Duration,
    ) -> Result<CommandOutcome, MonitorError> {
        let facts = self
            .source
            .facts(id)
            .ok_or_else(|| CallError::NotConnected(id.to_string()))?;
        let call = command.to_call(id.as_str(), &facts)?;
        let started = Instant::now();
        if let Command::ChangeConfiguration { key, .. } = command
            && command::readable_key(key)
        {
            self.check_key(id, key, timeout).await?;
        }
        let left = |at_least: Duration| timeout.saturating_sub(started.elapsed()).max(at_least);
        let answer = self
            .source
            .call(id, call.action, call.payload, left(Duration::from_secs(1)))
            .await?;
        let status = answer
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let report = match call.report {
            Some(request) if status.as_deref() == Some("Accepted") => {
                Some(self.collect_report(id, request, left(Duration::ZERO)).await)
            }
            _ => None,
        };
        Ok(CommandOutcome {
            action: call.action.to_owned(),
            status,
            answer,
            took_ms: started.elapsed().as_millis() as u64,
            instance: self
                .cluster
                .is_shared()
                .then(|| self.cluster.id().to_owned()),
            report,
        })
    }

    /// Waits at most `wait` for the charger to send all of report `request`, and returns what
    /// it sent.
    async fn collect_report(&self, id: &StationId, request: i64, wait: Duration) -> CommandReport {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (data, complete) = self.source.report(id, request).unwrap_or_default();
            if complete || tokio::time::Instant::now() >= deadline {
                return CommandReport { data, complete };
            }
            tokio::time::sleep(REPORT_POLL.min(deadline - tokio::time::Instant::now())).await;
        }
    }

    /// Asks the charger whether it has configuration key `key` and lets it be changed: a
    /// key it lists as unknown or read-only is refused before the change is sent.
    async fn check_key(
        &self,
        id: &StationId,
        key: &str,
        timeout: Duration,
    ) -> Result<(), MonitorError> {
        let answer = self
            .source
            .call(id, "GetConfiguration", json!({"key": [key]}), timeout)
            .await?;
        let unknown = answer
            .get("unknownKey")
            .and_then(Value::as_array)
            .is_some_and(|keys| {
                keys.iter()
                    .any(|k| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(key)))
            });
        if unknown {
            return Err(InvalidInput::new(
                "key",
                format!("{key}: charge point {id} has no such configuration key (GetConfiguration lists the keys it has)"),
            )
            .into());
        }
        let readonly = answer
            .get("configurationKey")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|entry| {
                entry
                    .get("key")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.eq_ignore_ascii_case(key))
                    && entry.get("readonly").and_then(Value::as_bool) == Some(true)
            });
        if readonly {
            return Err(InvalidInput::new(
                "key",
                format!("{key} is read-only on charge point {id}"),
            )
            .into());
        }
        Ok(())
    }

    /// Charger `id`'s message log after frame number `after`, at most `limit` frames (the
    /// newest): read where its connection is, else what this instance kept of it.
    pub async fn messages(
        &self,
        id: &StationId,
        after: u64,
        limit: usize,
    ) -> Result<MessageLogRead, MonitorError> {
        let station = self.station(id).await?;
        if station.vendor != OCPP_VENDOR {
            return Err(MonitorError::Conflict(format!(
                "station {id} is a {} station: message logs are kept for OCPP charge points (vendor ocpp)",
                station.vendor
            )));
        }
        if self.settings.ocpp.log_database {
            return self.stored_messages(id, after, limit).await;
        }
        let here = || MessageLogRead {
            messages: self.source.messages(id, after, limit).unwrap_or_default(),
            connected: self.source.holds(id),
            instance: self
                .cluster
                .is_shared()
                .then(|| self.cluster.id().to_owned()),
        };
        if self.source.holds(id) || !self.cluster.is_shared() {
            return Ok(here());
        }
        let Some(holder) = self.holder(id).await else {
            return Ok(here());
        };
        let request = json!({"messages": {"charger": id.as_str(), "after": after, "limit": limit}});
        let answer = self
            .cluster
            .ask(&holder, request, RELAY_MARGIN * 2)
            .await
            .map_err(|e| CallError::Relayed {
                station: id.to_string(),
                message: e.to_string(),
            })?;
        serde_json::from_value(answer.get("messages").cloned().unwrap_or(Value::Null))
            .map(|messages| MessageLogRead {
                messages,
                connected: true,
                instance: Some(holder.clone()),
            })
            .map_err(|e| {
                CallError::Relayed {
                    station: id.to_string(),
                    message: format!("instance {holder} sent a log csm cannot read: {e}"),
                }
                .into()
            })
    }

    /// The log as the database keeps it (`CSM_OCPP_LOG_DATABASE`): every instance's frames of
    /// the charger, numbered by the database (a frame reaches it within a second).
    async fn stored_messages(
        &self,
        id: &StationId,
        after: u64,
        limit: usize,
    ) -> Result<MessageLogRead, MonitorError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX).min(10_000);
        let read = self.store.ocpp_messages(id, after, limit);
        let stored = crate::store::within(
            crate::store::READ_WAIT,
            "reading a message log",
            &*self.store,
            read,
        )
        .await?;
        let connected =
            self.source.holds(id) || (self.cluster.is_shared() && self.holder(id).await.is_some());
        Ok(MessageLogRead {
            instance: stored
                .last()
                .map(|f| f.instance.clone())
                .filter(|_| self.cluster.is_shared()),
            connected,
            messages: stored
                .into_iter()
                .map(|f| Logged {
                    seq: f.id,
                    at: f.at,
                    direction: f.direction,
                    connection: f.connection,
                    action: f.action,
                    frame: f.frame,
                })
                .collect(),
        })
    }

    /// Answers another instance's `command` or `messages` request; `None` for any other.
    pub(super) async fn answer_operator(&self, request: &Value) -> Option<Value> {
        let charger = |value: &Value| {
            value
                .get("charger")
                .and_then(Value::as_str)
                .and_then(|id| StationId::parse(id).ok())
        };
        if let Some(asked) = request.get("command") {
            let Some(id) = charger(asked) else {
                return Some(json!({"error": "a command names no charger"}));
            };
            let command: Command = match serde_json::from_value(
                asked.get("command").cloned().unwrap_or(Value::Null),
            ) {
                Ok(command) => command,
                Err(e) => {
                    return Some(
                        json!({"invalid": {"field": "command", "message": e.to_string()}}),
                    );
                }
            };
            let timeout = asked
                .get("timeout_ms")
                .and_then(Value::as_u64)
                .map_or(CALL_TIMEOUT, Duration::from_millis)
                .min(MAX_COMMAND_TIMEOUT);
            return Some(match self.command_here(&id, &command, timeout).await {
                Ok(outcome) => json!({"outcome": outcome}),
                Err(MonitorError::Invalid(invalid)) => {
                    json!({"invalid": {"field": invalid.field, "message": invalid.message}})
                }
                Err(MonitorError::Call(error)) => json!({"error": error}),
                Err(other) => {
                    json!({"error": CallError::Relayed { station: id.to_string(), message: other.to_string() }})
                }
            });
        }
        if let Some(asked) = request.get("messages") {
            let id = charger(asked)?;
            let after = asked.get("after").and_then(Value::as_u64).unwrap_or(0);
            let limit = asked
                .get("limit")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX);
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let messages = self.source.messages(&id, after, limit).unwrap_or_default();
            return Some(json!({"messages": messages}));
        }
        None
    }
}

/// Reads the holder's answer to a command: the outcome, or why not (`Ok`: the command was
/// refused as invalid; `Err`: the call failed, `None` when the answer says nothing readable).
fn read_outcome(answer: Value) -> Result<CommandOutcome, Result<InvalidInput, Option<CallError>>> {
    if let Some(outcome) = answer.get("outcome") {
        return serde_json::from_value(outcome.clone()).map_err(|_| Err(None));
    }
    if let Some(invalid) = answer.get("invalid") {
        let text = |name: &str| {
            invalid
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        return Err(Ok(InvalidInput::new(text("field"), text("message"))));
    }
    Err(Err(answer
        .get("error")
        .and_then(|e| serde_json::from_value(e.clone()).ok())))
}
