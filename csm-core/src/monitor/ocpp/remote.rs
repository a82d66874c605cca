//! Chargers across instances: a call of csm's to a charger (TriggerMessage,
//! ChangeConfiguration, …) from any instance goes to the instance holding its connection, and
//! an instance whose charger reconnected elsewhere closes its older connection at once.
//!
//! What the instances say to each other (JSON over [`crate::cluster::rpc`]):
//! - `{"moved": id}`: charger `id` connected to the asker; close this instance's connection
//!   of it without recording it offline;
//! - `{"call": {"charger", "action", "payload", "timeout_ms"}}`: call the charger here and
//!   answer `{"answer": <its payload>}` or `{"error": <CallError>}`;
//! - `{"refresh": id}`: a manual refresh of a charger held here (TriggerMessage, then the
//!   station's refresh): answers `{"ok": true}` or `{"error": "…"}`.
//!
//! Only the instance holding a charger decides it is offline (its socket closed, or it went
//! silent). When that instance dies, the instance whose slots hold the charger's station
//! records it offline once the charger has been quiet past its liveness window without
//! connecting anywhere (an orphan); a charger that reconnects elsewhere before is never
//! recorded offline.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Ocpp, TRIGGER_TIMEOUT};
use crate::model::{Station, StationId};
use crate::ocpp::source::CallError;

/// How much longer than the charger's own timeout an instance waits for its holder's answer.
const RELAY_MARGIN: Duration = Duration::from_secs(2);

/// How often an instance looks for the orphans among its slots' chargers.
pub const ORPHANS_EVERY: Duration = Duration::from_secs(5);

/// What a manual refresh of a charger held by another instance came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRefresh {
    /// The instance holding its connection (`None`: none does).
    pub holder: Option<String>,
    /// Whether that instance refreshed it, or why not.
    pub result: Result<(), String>,
}

impl Ocpp {
    /// Calls a charger (`TriggerMessage`, `ChangeConfiguration`, …) wherever its connection
    /// is, waiting at most `timeout` for its answer. A charger no instance holds fails at once.
    pub async fn call(
        &self,
        id: &StationId,
        action: &str,
        payload: Value,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        if self.source.holds(id) || !self.cluster.is_shared() {
            return self.source.call(id, action, payload, timeout).await;
        }
        let Some(holder) = self.holder(id).await else {
            return Err(CallError::NotConnected(id.to_string()));
        };
        let request = json!({"call": {
            "charger": id.as_str(),
            "action": action,
            "payload": payload,
            "timeout_ms": timeout.as_millis() as u64,
        }});
        let answer = self
            .cluster
            .ask(&holder, request, timeout + RELAY_MARGIN)
            .await
            .map_err(|e| CallError::Relayed {
                station: id.to_string(),
                message: e.to_string(),
            })?;
        match (answer.get("answer"), answer.get("error")) {
            (Some(payload), _) => Ok(payload.clone()),
            (None, Some(error)) => Err(serde_json::from_value(error.clone()).unwrap_or_else(
                |_| CallError::Relayed {
                    station: id.to_string(),
                    message: error.to_string(),
                },
            )),
            (None, None) => Err(CallError::Relayed {
                station: id.to_string(),
                message: format!("instance {holder} answered {answer}"),
            }),
        }
    }

    /// The live instance holding charger `id`'s connection, if another does.
    pub(super) async fn holder(&self, id: &StationId) -> Option<String> {
        match self.cluster.charger_holders(std::slice::from_ref(id)).await {
            Ok(mut holders) => holders.pop().flatten(),
            Err(error) => {
                tracing::debug!(%error, charger = %id, "cannot read where a charger is connected");
                None
            }
        }
    }

    /// A manual refresh of a charger whose connection is on another instance: that instance
    /// asks it for its status and refreshes its station.
    pub(in crate::monitor) async fn refresh_remote(&self, station: &Station) -> RemoteRefresh {
        let Some(holder) = self.holder(&station.id).await else {
            return RemoteRefresh {
                holder: None,
                result: Err(format!(
                    "charge point {} is not connected to any csm instance",
                    station.id
                )),
            };
        };
        let answer = self
            .cluster
            .ask(
                &holder,
                json!({"refresh": station.id.as_str()}),
                TRIGGER_TIMEOUT + RELAY_MARGIN * 2,
            )
            .await;
        let result = match answer {
            Ok(answer) if answer.get("ok").is_some() => Ok(()),
            Ok(answer) => Err(answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("the charger's instance could not refresh it")
                .to_owned()),
            Err(error) => Err(error.to_string()),
        };
        RemoteRefresh {
            holder: Some(holder),
            result,
        }
    }

    /// Whether this instance refreshes the charger's station: its connection is here, or it
    /// is an orphan of this instance's slots (alone: always).
    pub fn refreshes(&self, id: &StationId) -> bool {
        !self.cluster.is_shared()
            || self.source.holds(id)
            || super::lock(&self.orphans).contains(id)
    }

    /// Looks for orphans every [`ORPHANS_EVERY`] until `cancel` fires (alone: returns at once).
    pub async fn run_orphans(&self, cancel: CancellationToken) {
        if !self.cluster.is_shared() {
            return;
        }
        let mut every = tokio::time::interval(ORPHANS_EVERY);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = every.tick() => {}
            }
            if let Err(error) = self.find_orphans().await {
                tracing::debug!(%error, "cannot look for chargers whose instance is gone; trying again");
            }
        }
    }

    async fn find_orphans(&self) -> Result<(), String> {
        let catalog = self.catalog.get().await.map_err(|e| e.to_string())?;
        let candidates: Vec<StationId> = catalog
            .stations
            .iter()
            .filter(|s| s.vendor == crate::model::OCPP_VENDOR)
            .filter(|s| self.cluster.owns(&s.id) && !self.source.holds(&s.id))
            .map(|s| s.id.clone())
            .collect();
        let holders = self.cluster.charger_holders(&candidates).await?;
        let unheld: Vec<StationId> = candidates
            .into_iter()
            .zip(holders)
            .filter(|(_, holder)| holder.is_none())
            .map(|(id, _)| id)
            .collect();
        let mut orphans = std::collections::HashSet::new();
        if !unheld.is_empty() {
            let heard: std::collections::HashMap<StationId, chrono::DateTime<chrono::Utc>> = self
                .stored_charge_points()
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter_map(|r| Some((r.station_id.clone(), r.last_message_at?)))
                .collect();
            let now = crate::model::now();
            for id in unheld {
                let last = heard.get(&id).copied().unwrap_or(self.source.started());
                if now.signed_duration_since(last) > self.source.liveness() {
                    self.source.orphaned(&id, last);
                    orphans.insert(id);
                }
            }
        }
        *super::lock(&self.orphans) = orphans;
        Ok(())
    }

    /// Tells instance `holder` that charger `id` connected here (in the background).
    pub(super) fn tell_moved(&self, holder: &str, id: &StationId) {
        let (cluster, holder, id) = (self.cluster.clone(), holder.to_owned(), id.to_string());
        tokio::spawn(async move {
            let told = cluster
                .ask(&holder, json!({"moved": id}), Duration::from_secs(2))
                .await;
            if let Err(error) = told {
                tracing::debug!(%error, charger = %id, "cannot tell the instance of a charger's older connection; it closes that connection at its next frame");
            }
        });
    }

    /// Charger `id` connected to another instance: this instance's connection of it closes,
    /// and nothing is recorded (it is not offline).
    fn moved_away(&self, id: &StationId) {
        if self.source.holds(id) {
            tracing::info!(charger = %id, "the charger connected to another instance: closing its connection here");
        }
        self.source.forget(id);
        self.cluster.forget_charger(id);
    }

    /// Answers the other instances' requests about chargers until `cancel` fires (alone:
    /// returns at once). `refresh` refreshes a station held here.
    pub async fn run_requests(
        &self,
        refresh: impl Fn(Arc<Station>) -> futures_util::future::BoxFuture<'static, Result<(), String>>
        + Send
        + Sync
        + 'static,
        cancel: CancellationToken,
    ) {
        let ocpp = self.clone();
        let refresh = Arc::new(refresh);
        let handler: crate::cluster::Handler = Box::new(move |request: Value| {
            let (ocpp, refresh) = (ocpp.clone(), Arc::clone(&refresh));
            async move { ocpp.answer(request, &*refresh).await }.boxed()
        });
        self.cluster.serve_requests(handler, cancel).await;
    }

    async fn answer(
        &self,
        request: Value,
        refresh: &(
             dyn Fn(Arc<Station>) -> futures_util::future::BoxFuture<'static, Result<(), String>>
                 + Send
                 + Sync
         ),
    ) -> Value {
        let charger = |value: &Value| value.as_str().and_then(|id| StationId::parse(id).ok());
        if let Some(id) = request.get("moved").and_then(charger) {
            self.moved_away(&id);
            return json!({"ok": true});
        }
        if let Some(call) = request.get("call") {
            let Some(id) = call.get("charger").and_then(charger) else {
                return json!({"error": "a call names no charger"});
            };
            let action = call.get("action").and_then(Value::as_str).unwrap_or("");
            let payload = call.get("payload").cloned().unwrap_or(Value::Null);
            let timeout = call
                .get("timeout_ms")
                .and_then(Value::as_u64)
                .map_or(super::CALL_TIMEOUT, Duration::from_millis)
                .min(super::CALL_TIMEOUT * 6);
            return match self.source.call(&id, action, payload, timeout).await {
                Ok(payload) => json!({"answer": payload}),
                Err(error) => json!({"error": error}),
            };
        }
        if let Some(answer) = self.answer_operator(&request).await {
            return answer;
        }
        if let Some(id) = request.get("refresh").and_then(charger) {
            let Ok(station) = self.station(&id).await else {
                return json!({"error": format!("station {id} is not in the catalogue of the instance holding it")});
            };
            self.trigger(&station).await;
            return match refresh(station).await {
                Ok(()) => json!({"ok": true}),
                Err(error) => json!({"error": error}),
            };
        }
        json!({"error": format!("not a request csm knows: {request}")})
    }
}
