//! Alerts: rules that watch stations and fire when a port frees, a pile breaks or goes dark,
//! and channels that carry the message (a signed webhook, the Feishu, DingTalk and WeCom group
//! bots).
//!
//! How an alert travels:
//! 1. The evaluator ([`evaluate`]) listens to the engine's change stream — the one the live
//!    event stream uses, so the refresh path never waits for it — and keeps each rule's
//!    conditions in memory: a condition fires once it has held for the rule's `min_secs`,
//!    is not sent again while it stays open, and resolves when it ends.
//! 2. A fired alert is written to the outbox in the database, with its open state, before
//!    anything is sent ([`crate::store::AlertStore`]). Quiet hours only move when it is due.
//! 3. The delivery worker ([`deliver`]) claims due alerts with an expiry, sends them within
//!    each channel's rate limit (a burst becomes one digest), retries what may succeed later,
//!    and records what the channel answered. An alert is delivered at least once, under the
//!    same id every time; a restart resumes what was pending.
//!
//! Rules and channels are kept in the database (both backends) and reloaded every
//! [`RULES_RELOAD`], so ones added by `csm-cli` or another instance are picked up.

use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, Notify, mpsc, watch};

pub mod deliver;
pub mod evaluate;
pub mod message;
pub(crate) mod run;

pub use self::message::Answer;
pub use crate::model::alerts::{
    Alert, AlertRecord, Channel, ChannelDraft, ChannelJson, ChannelKind, Condition, DeliveryState,
    QuietHours, Rule, RuleDraft, RuleId, RuleJson, RuleKind, Scope, new_id,
};

/// How often the running evaluator reloads the rules from the database.
pub const RULES_RELOAD: Duration = Duration::from_secs(10);

/// A change to the rules the running evaluator should apply at once.
#[derive(Debug)]
pub(crate) enum RuleChange {
    /// A rule was added.
    Added(Rule),
    /// A rule was removed.
    Removed(RuleId),
    /// Rules changed elsewhere: read them all again.
    Reload,
}

/// What the alert tasks share with the monitor: the HTTP client, the worker's wake-up and
/// the evaluator's inbox of rule changes.
#[derive(Debug)]
pub(crate) struct Hub {
    /// Built at the first message (or why it could not be).
    client: std::sync::OnceLock<Result<reqwest::Client, String>>,
    pub(crate) wake: Notify,
    changes: mpsc::UnboundedSender<RuleChange>,
    pub(crate) inbox: Mutex<mpsc::UnboundedReceiver<RuleChange>>,
    /// Rule changes sent to the evaluator so far.
    sent: AtomicU64,
    /// How far the running evaluator has got (what [`Hub::settled`] waits for).
    progress: watch::Sender<Progress>,
}

/// How far the running evaluator has got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// It has loaded the rules and listens to the engine's changes.
    pub(crate) running: bool,
    /// Rule changes it has applied.
    pub(crate) changes: u64,
    /// Engine updates it has looked at (or skipped, having fallen behind).
    pub(crate) updates: u64,
}

/// What a channel answered a test message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestOutcome {
    /// Whether the platform accepted it.
    pub accepted: bool,
    /// What it said (or why nothing could be sent).
    pub answer: String,
}

impl Hub {
    pub(crate) fn new() -> Self {
        let (changes, inbox) = mpsc::unbounded_channel();
        Self {
            client: std::sync::OnceLock::new(),
            wake: Notify::new(),
            changes,
            inbox: Mutex::new(inbox),
            sent: AtomicU64::new(0),
            progress: watch::Sender::new(Progress::default()),
        }
    }

    /// Tells the running evaluator (if any) of a rule change.
    pub(crate) fn send_change(&self, change: RuleChange) {
        self.sent.fetch_add(1, Ordering::AcqRel);
        // No evaluator running (the CLI): the server's picks it up from the database.
        let _ = self.changes.send(change);
    }

    /// Records how far the evaluator has got.
    pub(crate) fn advance(&self, step: impl FnOnce(&mut Progress)) {
        self.progress.send_modify(step);
    }

    /// Waits until the evaluator runs, has applied every rule change sent so far and has
    /// looked at the first `updates` engine updates.
    pub(crate) async fn settled(&self, updates: u64) {
        let changes = self.sent.load(Ordering::Acquire);
        let mut progress = self.progress.subscribe();
        let _ = progress
            .wait_for(|p| p.running && p.changes >= changes && p.updates >= updates)
            .await;
    }

    fn client(&self) -> Result<&reqwest::Client, &str> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .timeout(deliver::SEND_TIMEOUT)
                    // A redirect would carry a signed body somewhere its channel does not name.
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("csm/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client of alerts: {e}"))
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// Sends one message to a channel and reads its answer.
    pub(crate) async fn send(&self, channel: &Channel, message: message::Message<'_>) -> Answer {
        let client = match self.client() {
            Ok(client) => client,
            Err(error) => {
                return Answer::Retry {
                    message: error.to_owned(),
                    retry_after: None,
                };
            }
        };
        let now = crate::model::now();
        let request = message::request(channel, message, now);
        let mut post = client
            .post(&request.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(request.body);
        for (name, value) in request.headers {
            post = post.header(name, value);
        }
        match post.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| deliver::retry_after(v, now));
                let body = response.text().await.unwrap_or_default();
                message::read_answer(channel.kind, status, retry_after, &body)
            }
            // Without the URL: bot URLs carry their token.
            Err(error) => Answer::Retry {
                message: format!(
                    "could not reach {}: {}",
                    crate::secret::redact_target(&channel.url),
                    describe(error.without_url())
                ),
                retry_after: None,
            },
        }
    }
}

/// An HTTP client error with its causes (`error sending request: … Connection refused`).
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", deliver::SEND_TIMEOUT.as_secs());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
