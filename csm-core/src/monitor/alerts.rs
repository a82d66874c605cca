//! Alerts through the monitor: channels and rules (checked against the catalogue before they
//! are stored), the history of fired alerts, a test message, and the two tasks that evaluate
//! rules and deliver what they fire ([`crate::alerts`]).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{MonitorError, Parts, READ_WAIT};
use crate::alerts::message::Message;
use crate::alerts::{
    Alert, AlertRecord, Answer, ChannelDraft, ChannelJson, RuleChange, RuleDraft, RuleId, RuleJson,
    RuleKind, Scope, TestOutcome, deliver, run,
};
use crate::catalog::CatalogCell;
use crate::error::InvalidInput;
use crate::feed::{Announcement, Feed};
use crate::refresh::Engine;
use crate::settings::Settings;
use crate::store;
use crate::store::Store;

/// Most alerts one history answer holds.
pub const MAX_ALERT_HISTORY: u32 = 1_000;

/// The alerts area of the [`Monitor`](super::Monitor).
#[derive(Clone)]
pub struct Alerts {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    engine: Engine,
    catalog: Arc<CatalogCell>,
    /// What the alert tasks share.
    hub: Arc<crate::alerts::Hub>,
    /// Tells the other instances of rule changes.
    feed: Feed,
    /// Shares channels' allowances with the other instances.
    cluster: crate::cluster::Cluster,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts").field("hub", &self.hub).finish()
    }
}

impl Alerts {
    pub(super) fn new(parts: &Parts) -> Self {
        Self {
            settings: Arc::clone(&parts.settings),
            store: Arc::clone(&parts.store),
            engine: parts.engine.clone(),
            catalog: Arc::clone(&parts.catalog),
            hub: Arc::new(crate::alerts::Hub::new()),
            feed: parts.feed.clone(),
            cluster: parts.cluster.clone(),
        }
    }

    /// Rules were added or removed elsewhere (another instance, `csm-cli`): the running
    /// evaluator reads them again at once.
    pub fn rules_changed_elsewhere(&self) {
        self.hub.send_change(RuleChange::Reload);
    }

    /// The time zone of rules that name none.
    fn zone(&self) -> Result<chrono_tz::Tz, MonitorError> {
        Ok(self.settings.history.timezone)
    }

    /// Evaluates alert rules and delivers what they fire until `cancel` fires.
    pub async fn run(&self, cancel: CancellationToken) {
        let zone = match self.zone() {
            Ok(zone) => zone,
            Err(error) => {
                tracing::error!(%error, "alert rules cannot run");
                return;
            }
        };
        let context = run::Context {
            store: Arc::clone(&self.store),
            engine: self.engine.clone(),
            catalog: Arc::clone(&self.catalog),
            hub: Arc::clone(&self.hub),
            zone,
            arrival_gap: run::arrival_gap(self.settings.engine.refresh_interval_secs),
        };
        let evaluate = run::evaluate(context, cancel.clone());
        let allowed = self.settings.alerts.clone();
        let deliver = deliver::run(
            Arc::clone(&self.store),
            Arc::clone(&self.hub),
            allowed,
            self.cluster.clone(),
            cancel,
        );
        tokio::join!(evaluate, deliver);
    }

    /// Waits until the running evaluator ([`Alerts::run`]) has loaded the rules, applied every
    /// rule change made so far and looked at every change of the stations so far: what it will
    /// fire for them is then fired. For callers that must not race it (tests, a deployment
    /// check).
    pub async fn settled(&self) {
        self.hub.settled(self.engine.updates_sent()).await;
    }

    /// Every alert channel, redacted.
    pub async fn channels(&self) -> Result<Vec<ChannelJson>, MonitorError> {
        let read = self.store.alerts().channels();
        let channels =
            store::within(READ_WAIT, "reading alert channels", &*self.store, read).await?;
        Ok(channels.iter().map(ChannelJson::from).collect())
    }

    /// Adds an alert channel.
    pub async fn add_channel(&self, draft: ChannelDraft) -> Result<ChannelJson, MonitorError> {
        let channel = draft.validate(&self.settings.alerts.allowed_hosts)?;
        self.store.alerts().add_channel(&channel).await?;
        Ok(ChannelJson::from(&channel))
    }

    /// Removes an alert channel no rule sends to.
    pub async fn remove_channel(&self, name: &str) -> Result<(), MonitorError> {
        let users: Vec<String> = run::stored_rules(&*self.store, self.zone()?)
            .await?
            .iter()
            .filter(|r| r.channel == name)
            .map(|r| r.id.to_string())
            .collect();
        if !users.is_empty() {
            return Err(MonitorError::Conflict(format!(
                "channel {name:?} is used by rule {}; remove those rules first",
                users.join(", ")
            )));
        }
        if !self.store.alerts().remove_channel(name).await? {
            return Err(MonitorError::Missing(format!(
                "alert channel {name:?} not found"
            )));
        }
        Ok(())
    }

    /// Every alert rule.
    pub async fn rules(&self) -> Result<Vec<RuleJson>, MonitorError> {
        let read = run::stored_rules(&*self.store, self.zone()?);
        let rules = store::within(READ_WAIT, "reading alert rules", &*self.store, read).await?;
        Ok(rules.iter().map(|r| r.to_json()).collect())
    }

    /// Adds an alert rule: its stations and its channel must exist. The running evaluator
    /// takes it at once.
    pub async fn add_rule(&self, draft: RuleDraft) -> Result<RuleJson, MonitorError> {
        let mut rule = draft.validate(self.zone()?)?;
        if let Scope::Stations(ids) = &rule.stations {
            let catalog = self.catalog.get().await?;
            if let Some(missing) = ids.iter().find(|id| catalog.get(id).is_none()) {
                return Err(InvalidInput::new(
                    "stations",
                    format!(
                        "name {missing}, which is not a station; add it first, or watch \"all\""
                    ),
                )
                .into());
            }
        }
        let channels = self.store.alerts().channels().await?;
        if !channels.iter().any(|c| c.name == rule.channel) {
            return Err(InvalidInput::new(
                "channel",
                format!(
                    "{:?} is not a channel; add it first with `csm-cli alerts channels add` or POST /api/alerts/channels",
                    rule.channel
                ),
            )
            .into());
        }
        let definition = serde_json::to_string(&rule.to_json())
            .map_err(|e| InvalidInput::new("rule", e.to_string()))?;
        rule.id = self.store.alerts().add_rule(&definition).await?;
        let answer = rule.to_json();
        self.hub.send_change(RuleChange::Added(rule));
        self.feed.announce(Announcement::Rules).await;
        Ok(answer)
    }

    /// Removes an alert rule (its pending alerts are still delivered).
    pub async fn remove_rule(&self, id: RuleId) -> Result<(), MonitorError> {
        if !self.store.alerts().remove_rule(id).await? {
            return Err(MonitorError::Missing(format!("alert rule {id} not found")));
        }
        self.hub.send_change(RuleChange::Removed(id));
        self.feed.announce(Announcement::Rules).await;
        Ok(())
    }

    /// The latest alerts with their delivery state, newest first.
    pub async fn history(&self, limit: u32) -> Result<Vec<AlertRecord>, MonitorError> {
        if !(1..=MAX_ALERT_HISTORY).contains(&limit) {
            return Err(InvalidInput::new(
                "limit",
                format!("{limit} is outside 1..={MAX_ALERT_HISTORY}"),
            )
            .into());
        }
        let read = self.store.alerts().alert_history(limit);
        let rows =
            store::within(READ_WAIT, "reading the alert history", &*self.store, read).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let alert: Alert = serde_json::from_str(&row.payload).ok()?;
                Some(AlertRecord {
                    alert,
                    channel: row.channel,
                    state: row.state,
                    attempts: row.attempts,
                    last_error: row.last_error,
                    delivered_at: row.delivered_at,
                })
            })
            .collect())
    }

    /// Sends a sample alert to a channel now (not through the outbox) and says what the
    /// platform answered.
    pub async fn test_channel(&self, name: &str) -> Result<TestOutcome, MonitorError> {
        let channels = self.store.alerts().channels().await?;
        let channel = channels
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| MonitorError::Missing(format!("alert channel {name:?} not found")))?;
        if !self.settings.alerts.allowed_hosts.allows(&channel.url) {
            return Err(InvalidInput::new(
                "url",
                format!("channel {name:?} posts to a host CSM_ALERT_HOSTS does not allow"),
            )
            .into());
        }
        let now = crate::model::now();
        let mut alert = Alert {
            id: crate::alerts::new_id(),
            rule: 0,
            kind: RuleKind::PortFree,
            resolved: false,
            station_id: "TEST".into(),
            station_name: "csm 测试消息".into(),
            port: Some(1),
            status: "free".into(),
            since: now,
            at: now,
            text: String::new(),
        };
        alert.text =
            format!("【测试】这是 csm 发往提醒渠道 {name} 的测试消息；收到即表示配置正确。");
        Ok(match self.hub.send(&channel, Message::One(&alert)).await {
            Answer::Accepted => TestOutcome {
                accepted: true,
                answer: "accepted".into(),
            },
            Answer::Retry { message, .. } | Answer::Refused(message) => TestOutcome {
                accepted: false,
                answer: message,
            },
        })
    }
}
