//! Turning station states into alerts: for each rule and each station (or port) it watches,
//! whether its condition holds and since when; a condition fires once it has held for the
//! rule's `min_secs`, stays open (and silent) while it holds, and resolves when it ends.
//!
//! Everything here is in memory and synchronous: the evaluator is fed states as the engine
//! produces them and ticked by a clock, and says what fired and what resolved. Writing those to
//! the outbox is the running evaluator's job (`run.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::alerts::{Condition, Rule, RuleId, RuleKind, Scope};
use crate::model::{PortStatus, StationId, StationState, StatusEvent};
use crate::store::OpenAlert;

/// What a condition is about: a rule, a station, a port (0: the station as a whole).
pub type Target = (RuleId, StationId, u32);

/// A condition that began or ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The rule.
    pub rule: Arc<Rule>,
    /// The station where the condition began or ended.
    pub station_id: StationId,
    /// The port (`None`: the station).
    pub port: Option<u32>,
    /// `false`: fired; `true`: resolved.
    pub resolved: bool,
    /// Whether anyone is told (a resolution is announced only when the rule asks).
    pub announce: bool,
    /// The status of the port or station (`free`, `fault`, `offline`, …).
    pub status: String,
    /// Since when the condition held.
    pub since: DateTime<Utc>,
    /// When it fired or resolved.
    pub at: DateTime<Utc>,
    /// What the message adds (a count of free ports, a voltage, why a station is offline).
    pub detail: Option<String>,
    /// Resolved: the id of the alert that opened it.
    pub opened_by: Option<String>,
}

/// What one observation says of one target.
struct Seen {
    /// Since when the condition holds, when it holds (`None`: it does not).
    holds_since: Option<DateTime<Utc>>,
    /// csm cannot tell now whether the condition holds (the port is offline, or its station
    /// unreachable): it neither ends nor starts again, so a charger's short disconnection
    /// neither resolves its fault nor announces its free ports anew.
    unknown: bool,
    /// The port turned to the watched status in this very observation, from another status
    /// csm knew: news even to an evaluator that sees the port for the first time (the
    /// station just moved here from another instance).
    turned: bool,
    status: String,
    detail: Option<String>,
}

#[derive(Clone, Debug)]
struct Tracked {
    /// When it began to hold (`None`: it does not hold now).
    since: Option<DateTime<Utc>>,
    /// `port_free`: the port was seen not free, so becoming free is news.
    armed: bool,
    /// The alert that fired and has not resolved.
    open: Option<String>,
    status: String,
    detail: Option<String>,
}

/// The rules and the state of each of their conditions.
#[derive(Debug, Default)]
pub struct Evaluator {
    rules: HashMap<RuleId, Arc<Rule>>,
    /// The rules that name each station, and those that watch every station: an
    /// observation looks only at the rules that watch its station.
    by_station: HashMap<StationId, Vec<Arc<Rule>>>,
    everywhere: Vec<Arc<Rule>>,
    conditions: HashMap<Target, Tracked>,
}

impl Evaluator {
    /// An evaluator of `rules` that knows which alerts are open already (from the store).
    pub fn new(rules: impl IntoIterator<Item = Rule>, open: &[OpenAlert]) -> Self {
        let mut evaluator = Self::default();
        for rule in rules {
            evaluator.set_rule(rule);
        }
        for alert in open {
            if evaluator.rules.contains_key(&alert.rule_id) {
                evaluator.conditions.insert(
                    (alert.rule_id, alert.station_id.clone(), alert.port),
                    Tracked {
                        since: Some(alert.opened_at),
                        armed: true,
                        open: Some(alert.alert_id.clone()),
                        status: String::new(),
                        detail: None,
                    },
                );
            }
        }
        evaluator
    }

    /// Whether a rule watches any of `stations`.
    pub fn watches_any(&self, stations: &HashSet<StationId>) -> bool {
        !self.everywhere.is_empty() || stations.iter().any(|id| self.by_station.contains_key(id))
    }

    /// Takes the store's word on which alerts of `stations` are open (they arrived from
    /// another instance, which opened or resolved alerts meanwhile): an open one resolves here
    /// when its condition ends, and is not sent again while it holds. What this evaluator knew
    /// of their other conditions is forgotten: their next observation is a first sight (a port
    /// already free is not news; other conditions count from the port's `since`).
    pub fn adopt(&mut self, stations: &HashSet<StationId>, open: &[OpenAlert]) {
        let mut stored: HashMap<Target, &OpenAlert> = HashMap::new();
        for alert in open {
            if stations.contains(&alert.station_id) && self.rules.contains_key(&alert.rule_id) {
                stored.insert((alert.rule_id, alert.station_id.clone(), alert.port), alert);
            }
        }
        self.conditions
            .retain(|target, _| !stations.contains(&target.1) || stored.contains_key(target));
        for (target, alert) in stored {
            let condition = self.conditions.entry(target).or_insert_with(|| Tracked {
                since: Some(alert.opened_at),
                armed: true,
                open: None,
                status: String::new(),
                detail: None,
            });
            condition.open = Some(alert.alert_id.clone());
        }
    }

    /// The rules, by id.
    pub fn rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.rules.values()
    }

    /// Adds or replaces a rule.
    pub fn set_rule(&mut self, rule: Rule) {
        let id = rule.id;
        self.unindex(id);
        let rule = Arc::new(rule);
        match &rule.stations {
            Scope::All => self.everywhere.push(Arc::clone(&rule)),
            Scope::Stations(ids) => {
                for station in ids {
                    self.by_station
                        .entry(station.clone())
                        .or_default()
                        .push(Arc::clone(&rule));
                }
            }
        }
        self.rules.insert(id, rule);
    }

    /// Drops a rule and its conditions.
    pub fn remove_rule(&mut self, id: RuleId) {
        self.unindex(id);
        self.rules.remove(&id);
        self.conditions.retain(|(rule, _, _), _| *rule != id);
    }

    fn unindex(&mut self, id: RuleId) {
        let Some(old) = self.rules.get(&id) else {
            return;
        };
        match &old.stations {
            Scope::All => self.everywhere.retain(|r| r.id != id),
            Scope::Stations(ids) => {
                for station in ids {
                    if let Some(rules) = self.by_station.get_mut(station) {
                        rules.retain(|r| r.id != id);
                        if rules.is_empty() {
                            self.by_station.remove(station);
                        }
                    }
                }
            }
        }
    }

    /// Whether any rule needs every observation of this station, not only its status changes
    /// (a voltage rule).
    pub fn watches_measurements(&self) -> Vec<&Arc<Rule>> {
        self.rules
            .values()
            .filter(|r| r.kind() == RuleKind::Voltage)
            .collect()
    }

    /// Takes a station's new state; returns what fired or resolved.
    pub fn observe(&mut self, state: &StationState, now: DateTime<Utc>) -> Vec<Change> {
        self.observe_update(state, &[], now)
    }

    /// Takes a station's new state and the status changes that led to it; returns what fired
    /// or resolved.
    pub fn observe_update(
        &mut self,
        state: &StationState,
        events: &[StatusEvent],
        now: DateTime<Utc>,
    ) -> Vec<Change> {
        let named = self.by_station.get(&state.station_id).into_iter().flatten();
        let rules: Vec<Arc<Rule>> = named.chain(&self.everywhere).cloned().collect();
        if rules.is_empty() {
            return Vec::new();
        }
        let mut changes = Vec::new();
        for rule in rules {
            for (port, seen) in self.look(&rule, state, events, now) {
                let target = (rule.id, state.station_id.clone(), port);
                if let Some(change) = self.step(&rule, target, seen, now) {
                    changes.push(change);
                }
            }
        }
        changes
    }

    /// Fires the conditions that have now held long enough.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Change> {
        let mut changes = Vec::new();
        for ((rule_id, station_id, port), condition) in &mut self.conditions {
            let Some(rule) = self.rules.get(rule_id) else {
                continue;
            };
            if let Some(since) = condition.since
                && condition.open.is_none()
                && condition.armed
                && now - since >= TimeDelta::seconds(i64::from(rule.min_secs))
            {
                let change = fire(rule, station_id, *port, condition, since, now);
                condition.open = Some(String::new());
                changes.push(change);
            }
        }
        changes
    }

    /// Records the id of the alert a change opened (so its resolution can name it).
    pub fn opened(&mut self, change: &Change, alert_id: &str) {
        let target = (
            change.rule.id,
            change.station_id.clone(),
            change.port.unwrap_or(0),
        );
        if let Some(condition) = self.conditions.get_mut(&target) {
            condition.open = Some(alert_id.to_owned());
        }
    }

    /// One target's step: fire when the condition has held long enough, resolve when it ended.
    fn step(
        &mut self,
        rule: &Arc<Rule>,
        target: Target,
        seen: Seen,
        now: DateTime<Utc>,
    ) -> Option<Change> {
        let port = target.2;
        let station_id = target.1.clone();
        match seen.holds_since {
            Some(since) => {
                let condition = self.conditions.entry(target).or_insert_with(|| Tracked {
                    since: None,
                    // A port already free when first seen is not news, unless it turned free
                    // just now; other conditions are.
                    armed: rule.kind() != RuleKind::PortFree || seen.turned,
                    open: None,
                    status: String::new(),
                    detail: None,
                });
                // A voltage excursion is timed from when csm first saw it.
                let since = match (rule.kind(), condition.since) {
                    (RuleKind::Voltage, Some(before)) => before,
                    _ => since,
                };
                condition.since = Some(since);
                condition.status = seen.status;
                condition.detail = seen.detail;
                let due = now - since >= TimeDelta::seconds(i64::from(rule.min_secs));
                if condition.open.is_none() && condition.armed && due {
                    let change = fire(rule, &station_id, port, condition, since, now);
                    condition.open = Some(String::new());
                    return Some(change);
                }
                None
            }
            None => {
                let condition = self.conditions.get_mut(&target);
                if seen.unknown && condition.is_some() {
                    return None;
                }
                let Some(condition) = condition else {
                    if rule.kind() == RuleKind::PortFree {
                        self.conditions.insert(
                            target,
                            Tracked {
                                since: None,
                                armed: true,
                                open: None,
                                status: seen.status,
                                detail: None,
                            },
                        );
                    }
                    return None;
                };
                let began = condition.since.take();
                let change = condition.open.take().map(|opened_by| Change {
                    rule: Arc::clone(rule),
                    station_id,
                    port: (port != 0).then_some(port),
                    resolved: true,
                    announce: rule.resolved,
                    status: seen.status.clone(),
                    since: began.unwrap_or(now),
                    at: now,
                    detail: None,
                    opened_by: Some(opened_by).filter(|id| !id.is_empty()),
                });
                condition.armed = true;
                condition.status = seen.status;
                if rule.kind() != RuleKind::PortFree {
                    self.conditions.remove(&target);
                }
                change
            }
        }
    }

    /// What `state` says of each target of `rule` at this station.
    fn look(
        &self,
        rule: &Rule,
        state: &StationState,
        events: &[StatusEvent],
        now: DateTime<Utc>,
    ) -> Vec<(u32, Seen)> {
        let ports = state
            .ports
            .iter()
            .filter(|p| rule.watches_port(p.reading.port));
        match rule.condition {
            Condition::PortFree | Condition::Fault => {
                let wanted = if rule.condition == Condition::PortFree {
                    PortStatus::Free
                } else {
                    PortStatus::Fault
                };
                ports
                    .map(|p| {
                        let status = p.reading.status;
                        let unknown = unseen(p, state);
                        let turned = events.iter().any(|e| {
                            e.port == p.reading.port
                                && e.new == wanted
                                && e.old.is_some_and(|old| old != wanted)
                        });
                        let seen = Seen {
                            holds_since: (status == wanted && !unknown).then_some(p.since),
                            unknown,
                            turned,
                            status: status.as_str().to_owned(),
                            detail: None,
                        };
                        (p.reading.port, seen)
                    })
                    .collect()
            }
            Condition::Voltage { low, high } => ports
                .map(|p| {
                    let unknown = unseen(p, state);
                    let voltage = p.reading.voltage.filter(|_| !unknown);
                    let outside = voltage.filter(|v| *v < low || *v > high);
                    let seen = Seen {
                        holds_since: outside.map(|_| state.observed_at.unwrap_or(now)),
                        unknown,
                        turned: false,
                        status: p.reading.status.as_str().to_owned(),
                        detail: outside.map(|v| format!("{v:.1} V（正常 {low}–{high} V）")),
                    };
                    (p.reading.port, seen)
                })
                .collect(),
            Condition::FreePorts { count } => {
                let needed = count as usize;
                let (mut free, mut offline) = (Vec::new(), 0);
                for port in ports {
                    match port.reading.status {
                        PortStatus::Free => free.push(port.since),
                        PortStatus::Offline => offline += 1,
                        _ => {}
                    }
                }
                free.sort_unstable_by(|a, b| b.cmp(a));
                // At least `needed` ports have been free together since the `needed`-th most
                // recent of their stays began.
                let holds = (!unreachable(state) && free.len() >= needed).then(|| free[needed - 1]);
                // Short of it, with ports csm cannot see: it cannot tell.
                let unknown = holds.is_none() && (unreachable(state) || offline > 0);
                vec![(
                    0,
                    Seen {
                        holds_since: holds,
                        unknown,
                        turned: false,
                        status: "free".into(),
                        detail: Some(free.len().to_string()),
                    },
                )]
            }
            Condition::Offline => {
                let seen = if unreachable(state) {
                    Seen {
                        holds_since: Some(state.observed_at.unwrap_or(state.checked_at)),
                        unknown: false,
                        turned: false,
                        status: "offline".into(),
                        detail: Some("（无法连接）".into()),
                    }
                } else if !state.ports.is_empty()
                    && state
                        .ports
                        .iter()
                        .all(|p| p.reading.status == PortStatus::Offline)
                {
                    Seen {
                        holds_since: state.ports.iter().map(|p| p.since).max(),
                        unknown: false,
                        turned: false,
                        status: "offline".into(),
                        detail: Some("（全部端口离线）".into()),
                    }
                } else {
                    Seen {
                        holds_since: None,
                        unknown: false,
                        turned: false,
                        status: "online".into(),
                        detail: None,
                    }
                };
                vec![(0, seen)]
            }
        }
    }
}

/// Whether csm cannot reach the station now (its last attempt failed).
fn unreachable(state: &StationState) -> bool {
    state.failures > 0 && state.last_error.is_some()
}

/// Whether csm cannot see the port now: it is offline, or its station unreachable.
fn unseen(port: &crate::model::PortState, state: &StationState) -> bool {
    port.reading.status == PortStatus::Offline || unreachable(state)
}

fn fire(
    rule: &Arc<Rule>,
    station_id: &StationId,
    port: u32,
    condition: &Tracked,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Change {
    Change {
        rule: Arc::clone(rule),
        station_id: station_id.clone(),
        port: (port != 0).then_some(port),
        resolved: false,
        announce: true,
        status: condition.status.clone(),
        since,
        at: now,
        detail: condition.detail.clone(),
        opened_by: None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::alerts::RuleDraft;
    use crate::model::{PortReading, PortState};

    fn rule(id: RuleId, json: serde_json::Value) -> Rule {
        let mut rule = serde_json::from_value::<RuleDraft>(json)
            .unwrap()
            .validate(chrono_tz::Asia::Shanghai)
            .unwrap();
        rule.id = id;
        rule
    }

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap() + TimeDelta::seconds(secs)
    }

    /// A state at `at` of ports given as (status, since, voltage).
    fn state(at: i64, ports: &[(PortStatus, i64, Option<f64>)]) -> StationState {
        StationState {
            station_id: StationId::parse("S1").unwrap(),
            observed_at: Some(t(at)),
            checked_at: t(at),
            last_error: None,
            failures: 0,
            ports: ports
                .iter()
                .enumerate()
                .map(|(i, (status, since, volts))| PortState {
                    reading: PortReading {
                        port: i as u32 + 1,
                        status: *status,
                        raw_code: None,
                        voltage: *volts,
                        current: None,
                        power: None,
                        energy_kwh: None,
                        session_ends_at: None,
                    },
                    since: t(*since),
                })
                .collect(),
            counted_from: None,
        }
    }

    use PortStatus::{Fault, Free, Occupied, Offline};

    #[test]
    fn a_port_that_turned_free_is_news_to_an_evaluator_seeing_it_first() {
        let rules = || {
            [rule(
                1,
                serde_json::json!({"kind": "port_free", "stations": ["S1"], "channel": "c"}),
            )]
        };
        let turned = StatusEvent {
            station_id: StationId::parse("S1").unwrap(),
            port: 2,
            old: Some(Occupied),
            new: Free,
            at: t(30),
        };
        let now = state(30, &[(Free, 0, None), (Free, 30, None)]);
        // The station moved here from another instance: its first update here carries the
        // change the previous observation (made elsewhere) leads to.
        let fired =
            Evaluator::new(rules(), &[]).observe_update(&now, std::slice::from_ref(&turned), t(30));
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].port, Some(2));
        let first_sight = StatusEvent {
            old: None,
            ..turned
        };
        assert!(
            Evaluator::new(rules(), &[])
                .observe_update(&now, &[first_sight], t(30))
                .is_empty(),
            "a port seen for the first time ever is not news"
        );
    }

    #[test]
    fn a_port_freeing_fires_once_and_resolves_when_taken() {
        let mut e = Evaluator::new(
            [rule(
                1,
                serde_json::json!({"kind": "port_free", "stations": ["S1"], "channel": "c", "resolved": true}),
            )],
            &[],
        );
        assert!(
            e.observe(&state(0, &[(Free, 0, None), (Occupied, 0, None)]), t(0))
                .is_empty(),
            "a port already free when first seen is not news"
        );
        let fired = e.observe(&state(30, &[(Free, 0, None), (Free, 30, None)]), t(30));
        assert_eq!(fired.len(), 1);
        assert_eq!((fired[0].port, fired[0].resolved), (Some(2), false));
        e.opened(&fired[0], "A1");
        assert!(
            e.observe(&state(60, &[(Free, 0, None), (Free, 30, None)]), t(60))
                .is_empty(),
            "an open alert is not sent again"
        );
        let resolved = e.observe(&state(90, &[(Free, 0, None), (Occupied, 90, None)]), t(90));
        assert_eq!(resolved.len(), 1);
        assert!(resolved[0].resolved && resolved[0].announce);
        assert_eq!(resolved[0].opened_by.as_deref(), Some("A1"));
        assert_eq!(
            e.observe(&state(120, &[(Free, 0, None), (Free, 120, None)]), t(120))
                .len(),
            1,
            "freeing again fires again"
        );
    }

    #[test]
    fn a_charger_offline_for_a_moment_neither_frees_its_ports_anew_nor_ends_its_fault() {
        let mut e = Evaluator::new(
            [
                rule(
                    1,
                    serde_json::json!({"kind": "port_free", "stations": ["S1"], "channel": "c", "resolved": true}),
                ),
                rule(
                    2,
                    serde_json::json!({"kind": "fault", "stations": ["S1"], "min_secs": 0, "channel": "c", "resolved": true}),
                ),
            ],
            &[],
        );
        let mut fired = e.observe(&state(0, &[(Occupied, 0, None), (Fault, 0, None)]), t(0));
        fired.extend(e.observe(&state(30, &[(Free, 30, None), (Fault, 0, None)]), t(30)));
        assert_eq!(fired.len(), 2, "port 1 freed, port 2 in fault: {fired:?}");
        for change in &fired {
            e.opened(change, "A");
        }
        let offline = state(60, &[(Offline, 60, None), (Offline, 60, None)]);
        assert!(e.observe(&offline, t(60)).is_empty(), "nothing resolved");
        assert!(
            e.observe(&state(90, &[(Free, 90, None), (Fault, 90, None)]), t(90))
                .is_empty(),
            "back as before: no news"
        );
        assert!(
            e.observe(&offline, t(100)).is_empty()
                && e.observe(&state(110, &[(Free, 110, None), (Fault, 90, None)]), t(110))
                    .is_empty(),
            "and once more"
        );
        // Taken during a disconnection, then free: that is news.
        e.observe(
            &state(120, &[(Occupied, 120, None), (Fault, 90, None)]),
            t(120),
        );
        e.observe(
            &state(150, &[(Offline, 150, None), (Fault, 90, None)]),
            t(150),
        );
        let freed = e.observe(&state(180, &[(Free, 180, None), (Fault, 90, None)]), t(180));
        assert_eq!(freed.iter().filter(|c| !c.resolved).count(), 1, "{freed:?}");
    }

    #[test]
    fn a_fault_fires_only_after_its_minimum_and_not_for_a_blip() {
        let mut e = Evaluator::new(
            [rule(
                2,
                serde_json::json!({"kind": "fault", "stations": "all", "min_secs": 600, "channel": "c"}),
            )],
            &[],
        );
        assert!(e.observe(&state(0, &[(Fault, 0, None)]), t(0)).is_empty());
        assert!(e.tick(t(300)).is_empty());
        assert!(
            e.observe(&state(330, &[(Free, 330, None)]), t(330))
                .is_empty(),
            "a blip"
        );
        assert!(e.tick(t(1000)).is_empty());
        assert!(
            e.observe(&state(1000, &[(Fault, 1000, None)]), t(1000))
                .is_empty()
        );
        assert!(e.tick(t(1599)).is_empty());
        let fired = e.tick(t(1600));
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].since, t(1000));
        assert!(e.tick(t(1700)).is_empty());
        let resolved = e.observe(&state(1800, &[(Free, 1800, None)]), t(1800));
        assert_eq!(resolved.len(), 1);
        assert!(
            !resolved[0].announce,
            "the rule did not ask for resolutions"
        );
    }

    #[test]
    fn free_ports_offline_and_voltage() {
        let mut e = Evaluator::new(
            [
                rule(
                    3,
                    serde_json::json!({"kind": "free_ports", "stations": "all", "free_ports": 2, "channel": "c"}),
                ),
                rule(
                    4,
                    serde_json::json!({"kind": "offline", "stations": "all", "min_secs": 60, "channel": "c"}),
                ),
                rule(
                    5,
                    serde_json::json!({"kind": "voltage", "stations": "all", "low": 200, "high": 240, "min_secs": 60, "channel": "c"}),
                ),
            ],
            &[],
        );
        let two = e.observe(
            &state(
                0,
                &[
                    (Free, 0, Some(220.0)),
                    (Free, 0, Some(250.0)),
                    (Occupied, 0, None),
                ],
            ),
            t(0),
        );
        assert_eq!(two.len(), 1, "{two:?}");
        assert_eq!((two[0].rule.id, two[0].detail.as_deref()), (3, Some("2")));
        assert!(e.tick(t(59)).is_empty());
        let volts = e.tick(t(60));
        assert_eq!(volts.len(), 1);
        assert_eq!((volts[0].rule.id, volts[0].port), (5, Some(2)));
        let mut down = state(
            100,
            &[(Free, 0, None), (Free, 0, None), (Occupied, 0, None)],
        );
        down.observed_at = Some(t(90));
        down.failures = 1;
        down.last_error = Some("timed out".into());
        let changes = e.observe(&down, t(100));
        assert!(
            changes.is_empty(),
            "csm cannot see the station: free ports and voltage stay as they were: {changes:?}"
        );
        assert!(e.tick(t(149)).is_empty());
        let offline = e.tick(t(150));
        assert_eq!(offline.len(), 1);
        assert_eq!((offline[0].rule.id, offline[0].since), (4, t(90)));
        let all_offline = state(
            200,
            &[
                (Offline, 200, None),
                (Offline, 150, None),
                (Offline, 200, None),
            ],
        );
        assert!(
            e.observe(&all_offline, t(200)).is_empty(),
            "still offline: no repeat"
        );
    }

    #[test]
    fn open_alerts_from_the_store_are_not_sent_again() {
        let open = OpenAlert {
            rule_id: 2,
            station_id: StationId::parse("S1").unwrap(),
            port: 1,
            alert_id: "A9".into(),
            opened_at: t(0),
        };
        let mut e = Evaluator::new(
            [rule(
                2,
                serde_json::json!({"kind": "fault", "stations": "all", "min_secs": 0, "channel": "c", "resolved": true}),
            )],
            &[open],
        );
        assert!(e.observe(&state(10, &[(Fault, 0, None)]), t(10)).is_empty());
        let resolved = e.observe(&state(20, &[(Free, 20, None)]), t(20));
        assert_eq!(resolved[0].opened_by.as_deref(), Some("A9"));
    }

    #[test]
    fn a_station_back_from_another_instance_takes_its_open_alerts_from_the_store() {
        let rules = || {
            [rule(
                1,
                serde_json::json!({"kind": "port_free", "stations": ["S1"], "channel": "c", "resolved": true}),
            )]
        };
        let here: HashSet<StationId> = [StationId::parse("S1").unwrap()].into();
        // This instance saw port 1 taken; the station then moved away, and the other instance
        // announced port 1 free (open in the store, alert B1).
        let mut e = Evaluator::new(rules(), &[]);
        assert!(
            e.observe(&state(0, &[(Occupied, 0, None)]), t(0))
                .is_empty()
        );
        let opened_elsewhere = OpenAlert {
            rule_id: 1,
            station_id: StationId::parse("S1").unwrap(),
            port: 1,
            alert_id: "B1".into(),
            opened_at: t(40),
        };
        e.adopt(&here, std::slice::from_ref(&opened_elsewhere));
        assert!(
            e.observe(&state(60, &[(Free, 40, None)]), t(60)).is_empty(),
            "the other instance's alert is not sent again"
        );
        let resolved = e.observe(&state(90, &[(Occupied, 90, None)]), t(90));
        assert_eq!(resolved.len(), 1, "{resolved:?}");
        assert_eq!(resolved[0].opened_by.as_deref(), Some("B1"));
        assert_eq!(
            e.observe(&state(120, &[(Free, 120, None)]), t(120)).len(),
            1,
            "freeing again fires again"
        );

        // Gone again; the other instance resolved that alert and saw the port free at first
        // sight (no alert): back here, the port is not news.
        let mut e = Evaluator::new(rules(), std::slice::from_ref(&opened_elsewhere));
        e.adopt(&here, &[]);
        assert!(
            e.observe(&state(200, &[(Free, 150, None)]), t(200))
                .is_empty()
        );
        assert!(e.tick(t(260)).is_empty());
    }
}
