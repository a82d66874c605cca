//! `GET /api/events`: port changes as Server-Sent Events.
//!
//! One task turns the engine's updates into JSON once; every client stream only copies that
//! text. Streams send a heartbeat so proxies keep them open, and end when the server shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::Utc;
use csm_core::Monitor;
use csm_core::model::StationId;
use futures_util::{Stream, StreamExt, stream};
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use super::extract::ApiQuery;
use crate::AppState;
use crate::error::ApiError;
use crate::views::{EventJson, PortJson, StationJson, StationUpdateJson};

/// One update, encoded once for every client.
#[derive(Debug)]
pub struct SseMessage {
    /// The station it is about.
    pub station_id: StationId,
    /// The `data:` of the event.
    pub json: String,
}

/// Turns engine updates into SSE messages until `cancel` fires.
pub async fn forward_updates(
    monitor: Arc<Monitor>,
    sender: broadcast::Sender<Arc<SseMessage>>,
    cancel: CancellationToken,
) {
    let mut updates = monitor.engine().subscribe();
    loop {
        let update = tokio::select! {
            () = cancel.cancelled() => return,
            update = updates.recv() => update,
        };
        let update = match update {
            Ok(update) => update,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "live event stream fell behind the refresh engine");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if sender.receiver_count() == 0 {
            continue;
        }
        let state = &update.state;
        let Ok(station) = monitor.station(&state.station_id).await else {
            continue;
        };
        let stale = state.is_stale(Utc::now(), monitor.stale_after());
        let changed: Vec<PortJson> = state
            .ports
            .iter()
            .filter(|p| update.events.iter().any(|e| e.port == p.reading.port))
            .map(|p| PortJson::of(p, state, stale))
            .collect();
        let body = StationUpdateJson {
            station: StationJson::build(&station, Some(state), stale),
            changes: update.events.iter().map(EventJson::from).collect(),
            ports: changed,
        };
        match serde_json::to_string(&body) {
            Ok(json) => {
                let _ = sender.send(Arc::new(SseMessage {
                    station_id: state.station_id.clone(),
                    json,
                }));
            }
            Err(error) => tracing::error!(%error, "cannot encode a live update"),
        }
    }
}

/// Filter of the event stream.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only updates of this station.
    station: Option<String>,
}

/// Counts connected clients in the `csm_sse_clients` gauge for as long as it lives.
struct ClientGuard;

impl ClientGuard {
    fn new() -> Self {
        metrics::gauge!("csm_sse_clients").increment(1.0);
        Self
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        metrics::gauge!("csm_sse_clients").decrement(1.0);
    }
}

/// Port changes as they happen (Server-Sent Events): `hello` on connect, then `station` events
/// with the station's summary and the ports that changed; `lagged` if this client fell behind.
#[utoipa::path(
    get, path = "/api/events", tag = "live",
    params(EventsQuery),
    responses(
        (status = 200, description = "text/event-stream of `hello`, `station` (data: StationUpdateJson) and `lagged` events", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad query", body = crate::views::ErrorJson),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let only = query.station.as_deref().map(StationId::parse).transpose()?;
    let guard = ClientGuard::new();
    let hello = Event::default()
        .event("hello")
        .data(serde_json::json!({ "server_time": Utc::now() }).to_string());
    let updates = BroadcastStream::new(state.updates.subscribe()).filter_map(move |message| {
        let event = match message {
            Ok(message) if only.as_ref().is_none_or(|id| *id == message.station_id) => {
                Some(Event::default().event("station").data(&message.json))
            }
            Ok(_) => None,
            Err(BroadcastStreamRecvError::Lagged(missed)) => Some(
                Event::default()
                    .event("lagged")
                    .data(serde_json::json!({ "missed": missed }).to_string()),
            ),
        };
        std::future::ready(event)
    });
    let stream = stream::once(std::future::ready(hello))
        .chain(updates)
        .map(move |event| {
            let _alive = &guard;
            Ok(event)
        })
        .take_until(state.shutdown.clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
