//! The delivery worker: claims due alerts from the outbox (a claim with an expiry, so several
//! csm instances can share one database without sending an alert twice), sends them to their
//! channels within each channel's rate limit (shared by the cluster's instances through
//! Redis, so three instances do not send three times a channel's allowance; a burst becomes
//! one digest message) and records each outcome: delivered, retried later (timeouts, connection errors, 5xx, 429 and
//! the bots' "too fast", with backoff, jitter and `Retry-After`), or failed with the
//! platform's message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use super::Hub;
use super::message::{Answer, Message};
use crate::backoff::Backoff;
use crate::cluster::Cluster;
use crate::model::alerts::{Alert, Channel, new_id};
use crate::rate::TokenBucket;
use crate::settings::AlertSettings;
use crate::store::Store;
use crate::store::{Finish, OutboxRow};

/// How long a claim holds: longer than any attempt (the client gives up after
/// [`SEND_TIMEOUT`]), short enough that a dead instance's alerts go out soon after.
pub const CLAIM_FOR: Duration = Duration::from_secs(60);
/// The longest one request to a channel may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts before an alert is given up.
pub const MAX_ATTEMPTS: u32 = 20;
/// How often the outbox is looked at when nothing woke the worker (retries, quiet hours,
/// alerts fired by another instance).
const POLL: Duration = Duration::from_secs(1);
/// How long the worker waits after being woken, for the rest of a burst.
const GATHER: Duration = Duration::from_millis(100);
/// Alerts claimed at once.
const CLAIM_BATCH: u32 = 500;
/// At most this many alerts for one channel at once go as separate messages; more become a
/// digest.
const SEPARATE_AT_MOST: usize = 3;

/// A channel's allowance of messages: the cluster's shared bucket, or (alone, or while Redis
/// is away) this process's own.
struct Allowance {
    cluster: Cluster,
    key: String,
    capacity: f64,
    per_sec: f64,
    local: TokenBucket,
}

impl Allowance {
    fn of(cluster: &Cluster, channel: Option<&Channel>, name: &str) -> Self {
        let per_minute = channel.map_or(1.0, |c| f64::from(c.kind.per_minute()));
        let per_sec = per_minute / 60.0;
        Self {
            cluster: cluster.clone(),
            key: format!("channel:{name}"),
            capacity: per_minute,
            per_sec,
            local: TokenBucket::new(per_minute, per_sec),
        }
    }

    /// Whole messages the channel may take now.
    async fn available(&mut self) -> usize {
        match self
            .cluster
            .bucket(&self.key, self.capacity, self.per_sec, false)
            .await
        {
            Some((tokens, _)) => tokens.floor() as usize,
            None => self.local.available() as usize,
        }
    }

    /// Takes one message's worth, or says how long until there is one.
    async fn take(&mut self) -> Result<(), Duration> {
        match self
            .cluster
            .bucket(&self.key, self.capacity, self.per_sec, true)
            .await
        {
            Some((_, None)) => Ok(()),
            Some((_, Some(wait))) => Err(wait),
            None => self.local.take(),
        }
    }
}

/// Sends what the outbox holds until `cancel` fires.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    allowed: AlertSettings,
    cluster: Cluster,
    cancel: CancellationToken,
) {
    let retry_base_ms = allowed.retry_base_ms;
    let mut buckets: HashMap<String, Allowance> = HashMap::new();
    let mut depth_checked = tokio::time::Instant::now() - Duration::from_secs(60);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = hub.wake.notified() => {
                // A burst (a vendor outage) is written in several pieces: gather it, so a
                // channel gets one digest rather than one per piece.
                tokio::time::sleep(GATHER).await;
            }
            () = tokio::time::sleep(POLL) => {}
        }
        loop {
            let claim = new_id();
            let now = crate::model::now();
            let until = now + TimeDelta::from_std(CLAIM_FOR).unwrap_or_default();
            let rows = match store
                .alerts()
                .claim_alerts(&claim, now, until, CLAIM_BATCH)
                .await
            {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::warn!(%error, "cannot claim alerts to deliver; trying again shortly");
                    break;
                }
            };
            if rows.is_empty() {
                break;
            }
            let channels = match store.alerts().channels().await {
                Ok(channels) => channels,
                Err(error) => {
                    tracing::warn!(%error, "cannot read alert channels; the claim expires and the alerts go later");
                    break;
                }
            };
            let groups = group_by_channel(rows);
            let mut sends = Vec::new();
            for (name, rows) in groups {
                let channel = channels.iter().find(|c| c.name == name).cloned();
                let refused = channel
                    .as_ref()
                    .filter(|c| !allowed.allowed_hosts.allows(&c.url))
                    .map(|c| {
                        format!(
                            "channel {:?} posts to a host CSM_ALERT_HOSTS does not allow",
                            c.name
                        )
                    });
                let bucket = buckets
                    .remove(&name)
                    .unwrap_or_else(|| Allowance::of(&cluster, channel.as_ref(), &name));
                let store = Arc::clone(&store);
                let hub = Arc::clone(&hub);
                let claim = claim.clone();
                sends.push(async move {
                    let mut bucket = bucket;
                    match refused {
                        Some(error) => refuse(&*store, &claim, &rows, error).await,
                        None => {
                            let group = Group {
                                store: &*store,
                                hub: &hub,
                                claim: &claim,
                                retry_base_ms,
                            };
                            group.send(channel.as_ref(), rows, &mut bucket).await;
                        }
                    }
                    (name, bucket)
                });
            }
            for (name, bucket) in futures_util::future::join_all(sends).await {
                buckets.insert(name, bucket);
            }
            if cancel.is_cancelled() {
                return;
            }
        }
        if depth_checked.elapsed() >= Duration::from_secs(10) {
            depth_checked = tokio::time::Instant::now();
            if let Ok(depth) = store.alerts().outbox_depth().await {
                metrics::gauge!("csm_alert_outbox_depth").set(depth as f64);
            }
        }
    }
}

/// Fails claimed alerts that cannot be sent.
async fn refuse(store: &dyn Store, claim: &str, rows: &[OutboxRow], error: String) {
    count_outcome(&rows[0].channel, "failed", rows.len());
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    if let Err(store_error) = store
        .alerts()
        .finish_alerts(claim, &ids, &Finish::Failed { error })
        .await
    {
        tracing::warn!(error = %store_error, "cannot record a failed delivery; the claim expires and it is tried again");
    }
}

fn group_by_channel(rows: Vec<OutboxRow>) -> Vec<(String, Vec<OutboxRow>)> {
    let mut groups: Vec<(String, Vec<OutboxRow>)> = Vec::new();
    for row in rows {
        match groups.iter_mut().find(|(name, _)| *name == row.channel) {
            Some((_, rows)) => rows.push(row),
            None => groups.push((row.channel.clone(), vec![row])),
        }
    }
    groups
}

/// What sending one channel's claimed alerts needs.
struct Group<'a> {
    store: &'a dyn Store,
    hub: &'a Hub,
    claim: &'a str,
    retry_base_ms: u64,
}

impl Group<'_> {
    /// Sends one channel's claimed alerts: each on its own when few, else one digest.
    async fn send(&self, channel: Option<&Channel>, rows: Vec<OutboxRow>, bucket: &mut Allowance) {
        let Group {
            store,
            hub,
            claim,
            retry_base_ms,
        } = *self;
        let finish = |ids: Vec<String>, finish: Finish| async move {
            if let Err(error) = store.alerts().finish_alerts(claim, &ids, &finish).await {
                tracing::warn!(%error, "cannot record a delivery; the claim expires and it is sent again");
            }
        };
        let Some(channel) = channel else {
            let error = format!("channel {:?} no longer exists", rows[0].channel);
            refuse(store, claim, &rows, error).await;
            return;
        };
        let mut alerts = Vec::with_capacity(rows.len());
        let mut sent_rows = Vec::with_capacity(rows.len());
        for row in rows {
            match serde_json::from_str::<Alert>(&row.payload) {
                Ok(alert) => {
                    alerts.push(alert);
                    sent_rows.push(row);
                }
                Err(error) => {
                    let error = format!("the stored alert cannot be read: {error}");
                    finish(vec![row.id], Finish::Failed { error }).await;
                }
            }
        }
        if alerts.is_empty() {
            return;
        }
        // Separate messages only while they leave half the channel's allowance for what
        // comes next; otherwise one digest.
        let spare = bucket.available().await;
        let separate = alerts.len() <= SEPARATE_AT_MOST
            && spare >= alerts.len() + bucket.capacity as usize / 2;
        if separate {
            for (alert, row) in alerts.iter().zip(&sent_rows) {
                let _ = bucket.take().await;
                let answer = hub.send(channel, Message::One(alert)).await;
                let outcome = outcome(answer, row.attempts, retry_base_ms);
                record_metrics(&channel.name, &outcome, std::slice::from_ref(alert));
                finish(vec![row.id.clone()], outcome).await;
            }
            return;
        }
        let ids: Vec<String> = sent_rows.iter().map(|r| r.id.clone()).collect();
        if let Err(wait) = bucket.take().await {
            let due_at = crate::model::now() + TimeDelta::from_std(wait).unwrap_or_default();
            finish(ids, Finish::Release { due_at }).await;
            return;
        }
        let message = if alerts.len() == 1 {
            Message::One(&alerts[0])
        } else {
            tracing::info!(channel = %channel.name, alerts = alerts.len(), "sending a digest");
            Message::Digest {
                id: &new_id(),
                alerts: &alerts,
            }
        };
        let answer = hub.send(channel, message).await;
        let attempts = sent_rows.iter().map(|r| r.attempts).max().unwrap_or(0);
        let outcome = outcome(answer, attempts, retry_base_ms);
        record_metrics(&channel.name, &outcome, &alerts);
        finish(ids, outcome).await;
    }
}

/// What an answer means for the outbox row, after `attempts` earlier attempts.
fn outcome(answer: Answer, attempts: u32, retry_base_ms: u64) -> Finish {
    match answer {
        Answer::Accepted => Finish::Delivered {
            at: crate::model::now(),
        },
        Answer::Refused(error) => Finish::Failed { error },
        Answer::Retry { message, .. } if attempts + 1 >= MAX_ATTEMPTS => Finish::Failed {
            error: format!("gave up after {MAX_ATTEMPTS} attempts; the last: {message}"),
        },
        Answer::Retry {
            message,
            retry_after,
        } => Finish::Retry {
            due_at: crate::model::now() + backoff(attempts + 1, retry_after, retry_base_ms),
            error: message,
        },
    }
}

/// The wait before attempt `attempt + 1`: csm's one backoff ([`Backoff`]) from `base_ms` up
/// to 10 minutes, and never less than the platform's `Retry-After` (at most an hour of it).
pub fn backoff(attempt: u32, retry_after: Option<u64>, base_ms: u64) -> TimeDelta {
    let wait = Backoff {
        base: Duration::from_millis(base_ms),
        max: Duration::from_secs(600),
    }
    .delay(
        attempt.saturating_sub(1),
        retry_after.map(|secs| Duration::from_secs(secs.min(3_600))),
    );
    TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX)
}

fn count_outcome(channel: &str, outcome: &'static str, alerts: usize) {
    metrics::counter!("csm_alert_deliveries_total", "channel" => channel.to_owned(), "outcome" => outcome)
        .increment(alerts as u64);
}

fn record_metrics(channel: &str, finish: &Finish, alerts: &[Alert]) {
    let (label, at) = match finish {
        Finish::Delivered { at } => ("delivered", Some(*at)),
        Finish::Retry { .. } => ("retry", None),
        Finish::Failed { .. } => ("failed", None),
        Finish::Release { .. } => return,
    };
    count_outcome(channel, label, alerts.len());
    if let Some(at) = at {
        for alert in alerts {
            let latency = (at - alert.at).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!("csm_alert_delivery_latency_seconds").record(latency);
        }
    }
}

/// Reads `Retry-After`: seconds, or an HTTP date.
pub(crate) fn retry_after(value: &str, now: DateTime<Utc>) -> Option<u64> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(secs);
    }
    let at = DateTime::parse_from_rfc2822(value.trim()).ok()?;
    Some((at.with_timezone(&Utc) - now).num_seconds().max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        for _ in 0..100 {
            let first = backoff(1, None, 2_000).num_milliseconds();
            assert!((2_000..4_000).contains(&first), "{first}");
            let second = backoff(2, None, 2_000).num_milliseconds();
            assert!((4_000..8_000).contains(&second), "{second}");
            let late = backoff(30, None, 2_000).num_seconds();
            assert!((600..1_200).contains(&late), "{late}");
            assert!(backoff(1, Some(120), 2_000).num_seconds() >= 120);
        }
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now), Some(60));
        assert_eq!(retry_after(" 7 ", now), Some(7));
        assert_eq!(retry_after("soon", now), None);
    }
}
