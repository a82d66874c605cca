//! The running evaluator: feeds the engine's changes and a one-second clock to the
//! [`Evaluator`], writes what fired to the outbox (with its open state) and wakes the delivery
//! worker. A write that fails (the database is away) is kept and tried again every tick, under
//! the same alert id.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::evaluate::{Change, Evaluator};
use super::message;
use super::{RULES_RELOAD, RuleChange};
use crate::catalog::CatalogCell;
use crate::model::StationId;
use crate::model::alerts::{Alert, DeliveryState, Rule, RuleDraft, Scope, new_id};
use crate::refresh::{Engine, Watched};
use crate::store::{OpenAlert, OutboxRow};
use crate::store::{Store, StoreError};

/// Alerts fired but not yet written, at most; beyond it the oldest go (counted).
const UNSAVED_MAX: usize = 100_000;

/// What one write to the outbox holds.
#[derive(Debug, Default)]
struct Unsaved {
    fired: Vec<OutboxRow>,
    opened: Vec<OpenAlert>,
    closed: Vec<(u64, StationId, u32)>,
    /// Rules that fired with `once`, removed when the write lands.
    spent: Vec<u64>,
}

/// What the evaluator works with.
#[derive(Clone)]
pub(crate) struct Context {
    /// Rules, open alerts and the outbox.
    pub(crate) store: Arc<dyn Store>,
    /// The change stream, and the stations' current state.
    pub(crate) engine: Engine,
    /// Station names.
    pub(crate) catalog: Arc<CatalogCell>,
    /// The delivery worker's wake-up and the inbox of rule changes.
    pub(crate) hub: Arc<super::Hub>,
    /// The time zone of rules that name none.
    pub(crate) zone: chrono_tz::Tz,
    /// A station not evaluated here for this long has been refreshed elsewhere meanwhile (or
    /// never here): its open alerts are read again before its next update is looked at.
    pub(crate) arrival_gap: Duration,
}

/// [`Context::arrival_gap`] for stations refreshed every `interval_secs`: two and a half
/// intervals, and at least 10 s.
pub(crate) fn arrival_gap(interval_secs: u64) -> Duration {
    Duration::from_millis(interval_secs.saturating_mul(2_500)).max(Duration::from_secs(10))
}

/// Evaluates rules until `cancel` fires.
pub(crate) async fn evaluate(ctx: Context, cancel: CancellationToken) {
    let Some(mut evaluator) = start(&ctx, &cancel).await else {
        return;
    };
    let mut inbox = ctx.hub.inbox.lock().await;
    let mut updates = ctx.engine.subscribe();
    // Updates sent before the subscription are not this evaluator's to see.
    let seen = ctx.engine.updates_sent();
    ctx.hub.advance(|p| {
        p.running = true;
        p.updates = p.updates.max(seen);
    });
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    let mut reload = tokio::time::interval(RULES_RELOAD);
    reload.reset();
    let mut unsaved = Unsaved::default();
    seed(&ctx, &mut evaluator, None, &mut unsaved).await;
    // When each station's update was last looked at here (the seed counts: it came with the
    // open alerts just read).
    let mut last_seen: HashMap<StationId, Instant> = HashMap::new();
    if let Ok(catalog) = ctx.catalog.get().await {
        let now = Instant::now();
        last_seen.extend(catalog.stations.iter().map(|s| (s.id.clone(), now)));
    }
    loop {
        let mut changes = Vec::new();
        // What this turn took: rule changes applied, engine updates looked at.
        let (mut applied, mut looked) = (0, 0);
        // Rule changes first (a rule added just before a change must see it), then the clock
        // (ready once a second, so a stream of changes cannot starve it).
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            change = inbox.recv() => match change {
                Some(RuleChange::Added(rule)) => {
                    let id = rule.id;
                    evaluator.set_rule(rule);
                    watch(&ctx, &evaluator);
                    seed(&ctx, &mut evaluator, Some(id), &mut unsaved).await;
                    applied = 1;
                }
                Some(RuleChange::Removed(id)) => {
                    evaluator.remove_rule(id);
                    watch(&ctx, &evaluator);
                    applied = 1;
                }
                Some(RuleChange::Reload) => {
                    reload_rules(&ctx, &mut evaluator, &mut unsaved).await;
                    applied = 1;
                }
                None => break,
            },
            _ = clock.tick() => changes.extend(evaluator.tick(crate::model::now())),
            _ = reload.tick() => reload_rules(&ctx, &mut evaluator, &mut unsaved).await,
            update = updates.recv() => match update {
                Ok(update) => {
                    // Take whatever else is waiting, so a burst is written at once.
                    let mut burst = vec![update];
                    while let Ok(update) = updates.try_recv() {
                        burst.push(update);
                    }
                    looked = burst.len() as u64;
                    adopt_arrivals(&ctx, &mut evaluator, &mut last_seen, &burst, &unsaved).await;
                    let now = crate::model::now();
                    for update in &burst {
                        changes.extend(evaluator.observe_update(&update.state, &update.events, now));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "alert rules fell behind the refresh engine; reading the stations again");
                    seed(&ctx, &mut evaluator, None, &mut unsaved).await;
                    looked = missed;
                }
                Err(RecvError::Closed) => break,
            },
        }
        collect(&ctx, &mut evaluator, changes, &mut unsaved).await;
        save(&ctx, &mut unsaved).await;
        if applied + looked > 0 {
            ctx.hub.advance(|p| {
                p.changes += applied;
                p.updates += looked;
            });
        }
    }
    save(&ctx, &mut unsaved).await;
}

/// Reads the open alerts again for the stations of `burst` that arrive here: seen here never,
/// or not for [`Context::arrival_gap`] (another instance refreshed them meanwhile, and may have
/// opened or resolved their alerts). Without it, an alert another instance opened would not
/// resolve here, and would keep the next one of its target from being sent.
async fn adopt_arrivals(
    ctx: &Context,
    evaluator: &mut Evaluator,
    last_seen: &mut HashMap<StationId, Instant>,
    burst: &[Arc<crate::refresh::StationUpdate>],
    unsaved: &Unsaved,
) {
    let now = Instant::now();
    let mut arrived = HashSet::new();
    for update in burst {
        let id = &update.state.station_id;
        match last_seen.get_mut(id) {
            Some(seen) => {
                if now.duration_since(*seen) > ctx.arrival_gap {
                    arrived.insert(id.clone());
                }
                *seen = now;
            }
            None => {
                arrived.insert(id.clone());
                last_seen.insert(id.clone(), now);
            }
        }
    }
    if arrived.is_empty() || !evaluator.watches_any(&arrived) {
        return;
    }
    match ctx.store.alerts().open_alerts().await {
        Ok(mut open) => {
            // Opened here but not written yet (the database was away): still open.
            open.extend(unsaved.opened.iter().cloned());
            evaluator.adopt(&arrived, &open);
        }
        Err(error) => {
            tracing::warn!(%error, stations = arrived.len(), "cannot read the open alerts of stations that moved here; their conditions go on from what this instance knew");
        }
    }
}

/// Loads the rules and the open alerts, waiting for the database.
async fn start(ctx: &Context, cancel: &CancellationToken) -> Option<Evaluator> {
    loop {
        match load(ctx).await {
            Ok(evaluator) => {
                watch(ctx, &evaluator);
                return Some(evaluator);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read alert rules yet; trying again in 5 s");
                tokio::select! {
                    () = cancel.cancelled() => return None,
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        }
    }
}

async fn load(ctx: &Context) -> Result<Evaluator, StoreError> {
    let rules = stored_rules(&*ctx.store, ctx.zone).await?;
    let open = ctx.store.alerts().open_alerts().await?;
    Ok(Evaluator::new(rules, &open))
}

/// The stored rules that still read as rules (one that does not is logged and skipped);
/// `zone`: the time zone of rules that name none.
pub(crate) async fn stored_rules(
    store: &dyn Store,
    zone: chrono_tz::Tz,
) -> Result<Vec<Rule>, StoreError> {
    let stored = store.alerts().rules().await?;
    Ok(stored
        .into_iter()
        .filter_map(|(id, definition)| {
            let rule = serde_json::from_str::<RuleDraft>(&definition)
                .map_err(|e| e.to_string())
                .and_then(|draft| draft.validate(zone).map_err(|e| e.to_string()));
            match rule {
                Ok(mut rule) => {
                    rule.id = id;
                    Some(rule)
                }
                Err(error) => {
                    tracing::error!(rule = id, %error, "a stored alert rule cannot be read; it is skipped");
                    None
                }
            }
        })
        .collect())
}

/// Picks up rules added or removed elsewhere (`csm-cli`, another instance).
async fn reload_rules(ctx: &Context, evaluator: &mut Evaluator, unsaved: &mut Unsaved) {
    let Ok(rules) = stored_rules(&*ctx.store, ctx.zone).await else {
        return;
    };
    let known: HashSet<u64> = evaluator.rules().map(|r| r.id).collect();
    let stored: HashSet<u64> = rules.iter().map(|r| r.id).collect();
    for gone in known.difference(&stored) {
        evaluator.remove_rule(*gone);
    }
    let mut added = Vec::new();
    for rule in rules {
        if !known.contains(&rule.id) && !unsaved.spent.contains(&rule.id) {
            added.push(rule.id);
            evaluator.set_rule(rule);
        }
    }
    watch(ctx, evaluator);
    for id in added {
        seed(ctx, evaluator, Some(id), unsaved).await;
    }
}

/// Tells the engine which stations voltage rules need every observation of.
fn watch(ctx: &Context, evaluator: &Evaluator) {
    let voltage = evaluator.watches_measurements();
    let watched = if voltage.iter().any(|r| r.stations == Scope::All) {
        Watched::All
    } else {
        Watched::Stations(
            voltage
                .iter()
                .flat_map(|r| match &r.stations {
                    Scope::Stations(ids) => ids.clone(),
                    Scope::All => Vec::new(),
                })
                .collect(),
        )
    };
    ctx.engine.watch_measurements(watched);
}

/// Shows the evaluator the current state of the stations its rules (or one rule) watch.
async fn seed(ctx: &Context, evaluator: &mut Evaluator, rule: Option<u64>, unsaved: &mut Unsaved) {
    let Ok(catalog) = ctx.catalog.get().await else {
        return;
    };
    let stations = &catalog.stations;
    let rules: Vec<Arc<Rule>> = evaluator
        .rules()
        .filter(|r| rule.is_none_or(|id| r.id == id))
        .cloned()
        .collect();
    let watched: Vec<_> = stations
        .iter()
        .filter(|s| rules.iter().any(|r| r.stations.covers(&s.id)))
        .map(|s| s.id.clone())
        .collect();
    let now = crate::model::now();
    let mut changes = Vec::new();
    for chunk in watched.chunks(1_000) {
        for current in ctx.engine.current(chunk).await {
            if let Some(state) = &current.state {
                changes.extend(evaluator.observe(state, now));
            }
        }
    }
    collect(ctx, evaluator, changes, unsaved).await;
}

/// Turns changes into outbox rows and open / closed alerts.
async fn collect(
    ctx: &Context,
    evaluator: &mut Evaluator,
    changes: Vec<Change>,
    unsaved: &mut Unsaved,
) {
    if changes.is_empty() {
        return;
    }
    let catalog = ctx.catalog.get().await.ok();
    for change in changes {
        let target = (
            change.rule.id,
            change.station_id.clone(),
            change.port.unwrap_or(0),
        );
        if change.resolved {
            unsaved.closed.push(target.clone());
            if !change.announce {
                continue;
            }
        }
        let name = catalog
            .as_ref()
            .and_then(|c| c.get(&change.station_id))
            .map(|s| s.name.clone())
            .unwrap_or_else(|| change.station_id.to_string());
        let mut alert = Alert {
            id: new_id(),
            rule: change.rule.id,
            kind: change.rule.kind(),
            resolved: change.resolved,
            station_id: change.station_id.to_string(),
            station_name: name,
            port: change.port,
            status: change.status.clone(),
            since: change.since,
            at: change.at,
            text: String::new(),
        };
        alert.text = message::text(&alert, change.detail.as_deref());
        let urgent = !change.resolved && change.rule.kind().urgent();
        let due_at = change.rule.due(change.at, urgent);
        metrics::counter!("csm_alerts_fired_total", "kind" => change.rule.kind().as_str(), "resolved" => if change.resolved { "true" } else { "false" })
            .increment(1);
        if !change.resolved {
            evaluator.opened(&change, &alert.id);
            unsaved.opened.push(OpenAlert {
                rule_id: target.0,
                station_id: target.1,
                port: target.2,
                alert_id: alert.id.clone(),
                opened_at: change.at,
            });
            if change.rule.once {
                unsaved.spent.push(change.rule.id);
                evaluator.remove_rule(change.rule.id);
            }
        }
        unsaved.fired.push(OutboxRow {
            payload: serde_json::to_string(&alert).unwrap_or_default(),
            id: alert.id,
            rule_id: change.rule.id,
            channel: change.rule.channel.clone(),
            state: DeliveryState::Pending,
            attempts: 0,
            last_error: None,
            created_at: change.at,
            due_at,
            delivered_at: None,
        });
    }
    if unsaved.fired.len() > UNSAVED_MAX {
        let dropped = unsaved.fired.len() - UNSAVED_MAX;
        unsaved.fired.drain(..dropped);
        metrics::counter!("csm_alerts_dropped_total").increment(dropped as u64);
        tracing::error!(
            dropped,
            "the database has been away too long: the oldest unsaved alerts were dropped"
        );
    }
    if !unsaved.spent.is_empty() {
        watch(ctx, evaluator);
    }
}

/// Writes what is unsaved; keeps it for the next try when the database is away.
async fn save(ctx: &Context, unsaved: &mut Unsaved) {
    if unsaved.fired.is_empty()
        && unsaved.opened.is_empty()
        && unsaved.closed.is_empty()
        && unsaved.spent.is_empty()
    {
        return;
    }
    let store = &ctx.store;
    match store
        .alerts()
        .record_alerts(&unsaved.fired, &unsaved.opened, &unsaved.closed)
        .await
    {
        Ok(()) => {
            let spent = std::mem::take(&mut unsaved.spent);
            *unsaved = Unsaved::default();
            ctx.hub.wake.notify_one();
            for id in spent {
                if let Err(error) = store.alerts().remove_rule(id).await {
                    tracing::warn!(rule = id, %error, "cannot remove a rule that fired once yet; trying again");
                    unsaved.spent.push(id);
                }
            }
        }
        Err(error) => {
            tracing::warn!(%error, alerts = unsaved.fired.len(), "cannot write fired alerts yet; kept in memory and tried again each second");
        }
    }
}
