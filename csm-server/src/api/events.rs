//! `GET /api/events`: port changes as Server-Sent Events.
//!
//! One task turns the changes of the feed ([`csm_core::feed`]: the whole fleet's, in a
//! cluster) into complete SSE frames once, gathering the changes of a short window (a refresh
//! cycle finishes many stations within milliseconds) into one batch; every client stream
//! shares those bytes and writes a batch with one write instead of one per station. Each
//! `station` event carries its change's id: a client that reconnects with `Last-Event-ID` (as
//! `EventSource` does) first gets the changes it missed, or a `reset` event when they are no
//! longer kept. Streams send a heartbeat comment so proxies keep them open, and end when the
//! server shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use csm_core::Monitor;
use csm_core::feed::{Change, EventId, Resume};
use csm_core::model::StationId;
use csm_core::refresh::StationUpdate;
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use super::extract::ApiQuery;
use crate::AppState;
use crate::error::ApiError;
use csm_core::views::{EventJson, PortJson, StationJson, StationUpdateJson};

/// How often an idle stream sends a comment, so proxies keep it open.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// How long the forwarder gathers updates into one batch after the first arrives.
const BATCH_WINDOW: Duration = Duration::from_millis(15);
/// Most updates in one batch.
const BATCH_MAX: usize = 512;

/// One change, encoded.
#[derive(Debug)]
pub struct SseFrame {
    /// The change's id.
    pub id: EventId,
    /// Its station.
    pub station: StationId,
    /// `id: …`, `event: station`, `data: …`, blank line.
    pub bytes: Bytes,
}

/// Changes of a moment, encoded once for every client.
#[derive(Debug)]
pub struct SseMessage {
    /// Each change's SSE frame, in the feed's order.
    pub frames: Vec<SseFrame>,
    /// All frames, concatenated: what a client without a station filter receives.
    pub all: Bytes,
}

/// An SSE frame of `event` with one line of `data` (JSON has no raw newlines).
fn frame(event: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// Turns the feed's changes into SSE batches until `cancel` fires.
pub async fn forward_updates(
    monitor: Arc<Monitor>,
    sender: broadcast::Sender<Arc<SseMessage>>,
    cancel: CancellationToken,
) {
    let mut updates = monitor.feed().subscribe();
    loop {
        let first = tokio::select! {
            () = cancel.cancelled() => return,
            update = updates.recv() => update,
        };
        let mut batch = Vec::new();
        match first {
            Ok(update) => batch.push(update),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "live event stream fell behind the change feed");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
        let window = tokio::time::sleep(BATCH_WINDOW);
        tokio::pin!(window);
        while batch.len() < BATCH_MAX {
            tokio::select! {
                () = &mut window => break,
                update = updates.recv() => match update {
                    Ok(update) => batch.push(update),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "live event stream fell behind the change feed");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
        if sender.receiver_count() == 0 {
            continue;
        }
        let frames = encode_changes(&monitor, &batch).await;
        if frames.is_empty() {
            continue;
        }
        let all = concat(frames.iter());
        let _ = sender.send(Arc::new(SseMessage { frames, all }));
    }
}

/// The frames of `changes`, in order.
async fn encode_changes(monitor: &Monitor, changes: &[Arc<Change>]) -> Vec<SseFrame> {
    let mut frames = Vec::with_capacity(changes.len());
    for change in changes {
        let Some(update) = change.update() else {
            continue;
        };
        if let Some(bytes) = encode_update(monitor, change.id, update).await {
            frames.push(SseFrame {
                id: change.id,
                station: update.state.station_id.clone(),
                bytes,
            });
        }
    }
    frames
}

/// The bytes of `frames`, one after the other.
fn concat<'a>(frames: impl Iterator<Item = &'a SseFrame>) -> Bytes {
    Bytes::from(
        frames
            .flat_map(|f| f.bytes.iter().copied())
            .collect::<Vec<u8>>(),
    )
}

/// The SSE frame of the change `id`.
async fn encode_update(monitor: &Monitor, id: EventId, update: &StationUpdate) -> Option<Bytes> {
    if update.events.is_empty() && !update.health_changed {
        // An observation sent for alerts (a voltage rule): nothing to show.
        return None;
    }
    let state = &update.state;
    let station = monitor.stations().get(&state.station_id).await.ok()?;
    let stale = state.is_stale(Utc::now(), monitor.stations().stale_after());
    let estimates = monitor.history().estimates(state);
    let changed: Vec<PortJson> = state
        .ports
        .iter()
        .zip(estimates)
        .filter(|(p, _)| update.events.iter().any(|e| e.port == p.reading.port))
        .map(|(p, estimate)| PortJson::of(p, state, stale, estimate))
        .collect();
    let body = StationUpdateJson {
        station: StationJson::build(&station, Some(state), stale),
        changes: update.events.iter().map(EventJson::from).collect(),
        ports: changed,
    };
    match serde_json::to_string(&body) {
        Ok(json) => Some(Bytes::from(format!(
            "id: {id}\nevent: station\ndata: {json}\n\n"
        ))),
        Err(error) => {
            tracing::error!(%error, "cannot encode a live update");
            None
        }
    }
}

/// One event of the stream, as a client's `EventSource` sees it.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SseEvent {
    /// `hello` on connect (data: `{"server_time"}`), `station` when a station changed (data:
    /// StationUpdateJson; `id:` the change's id), `lagged` when this client fell behind and
    /// should reload (data: `{"missed"}`), or `reset` when the changes since the
    /// `Last-Event-ID` it sent are no longer kept and it should reload (data: `{"reason"}`).
    event: SseEventName,
    /// The event's JSON.
    data: String,
}

/// The events of the stream.
#[derive(Debug, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum SseEventName {
    /// On connect.
    Hello,
    /// A station changed.
    Station,
    /// This client fell behind.
    Lagged,
    /// What this client missed is no longer kept.
    Reset,
}

/// Filter of the event stream.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only updates of this station.
    #[param(pattern = "^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,63}$")]
    station: Option<String>,
    /// Resume after this change (as the `Last-Event-ID` header, which wins when both are
    /// sent): first the changes since, then live ones.
    #[param(pattern = "^[0-9]{1,19}(-[0-9]{1,19})?$")]
    last_event_id: Option<String>,
    /// A token, for a server whose reads need one (`CSM_READ_REQUIRES_TOKEN`): browsers open
    /// an event stream without headers.
    #[allow(dead_code)]
    access_token: Option<String>,
}

/// The live event streams open now, and how many may be: in all, and from one client address.
#[derive(Debug)]
pub struct SseClients {
    open: std::sync::Mutex<Open>,
    max: usize,
    max_per_address: usize,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: std::collections::HashMap<IpAddr, usize>,
}

/// Why a stream was refused.
enum Full {
    /// Every place is taken.
    All,
    /// This address holds all the places one address may.
    Address,
}

impl SseClients {
    /// Room for `max` streams, `max_per_address` of them from one client address.
    pub fn new(max: usize, max_per_address: usize) -> Self {
        Self {
            open: std::sync::Mutex::default(),
            max,
            max_per_address,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more stream of `client`, or why there is none.
    fn join(self: &Arc<Self>, client: IpAddr) -> Result<ClientGuard, Full> {
        let mut open = self.lock();
        if open.total >= self.max {
            return Err(Full::All);
        }
        let mine = open.by_address.entry(client).or_default();
        if *mine >= self.max_per_address {
            return Err(Full::Address);
        }
        *mine += 1;
        open.total += 1;
        metrics::gauge!("csm_sse_clients").increment(1.0);
        Ok(ClientGuard {
            clients: Arc::clone(self),
            client,
        })
    }
}

/// One open stream: counted in `csm_sse_clients` and in the limits for as long as it lives.
struct ClientGuard {
    clients: Arc<SseClients>,
    client: IpAddr,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let mut open = self.clients.lock();
        open.total -= 1;
        if let Some(mine) = open.by_address.get_mut(&self.client) {
            *mine -= 1;
            if *mine == 0 {
                open.by_address.remove(&self.client);
            }
        }
        metrics::gauge!("csm_sse_clients").decrement(1.0);
    }
}

/// Port changes as they happen (Server-Sent Events): `hello` on connect, then `station` events
/// with the station's summary and the ports that changed; `lagged` if this client fell behind.
#[utoipa::path(
    get, path = "/api/events", tag = "live",
    params(EventsQuery),
    responses(
        (status = 200, description = "A stream of `hello`, `station` (data: StationUpdateJson) and `lagged` events", content_type = "text/event-stream", body = SseEvent),
        (status = 400, description = "Bad query", body = crate::views::ErrorJson),
        (status = 429, description = "This client address holds as many event streams as one address may (CSM_MAX_SSE_PER_ADDRESS)", body = crate::views::ErrorJson),
        (status = 503, description = "As many event streams are open as the server takes (CSM_MAX_SSE_CLIENTS)", body = crate::views::ErrorJson),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let only = query.station.as_deref().map(StationId::parse).transpose()?;
    let resume_from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.last_event_id)
        .map(|text| text.trim().parse::<EventId>())
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("Last-Event-ID: {e}")))?;
    let client = state.config.trusted_proxies.client(peer, &headers);
    let clients = &state.sse_clients;
    let guard = clients.join(client).map_err(|full| match full {
        Full::All => ApiError::Unavailable(format!(
            "{} live event streams are open, the most this server takes (CSM_MAX_SSE_CLIENTS); try again later",
            clients.max
        )),
        Full::Address => ApiError::TooManyRequests {
            message: format!(
                "{client} holds {} live event streams, the most one address may (CSM_MAX_SSE_PER_ADDRESS); close one first",
                clients.max_per_address
            ),
            retry_after: HEARTBEAT,
        },
    })?;
    let hello = frame(
        "hello",
        &serde_json::json!({ "server_time": Utc::now() }).to_string(),
    );
    // Subscribed before the missed changes are read, so none falls between the two.
    let live = BroadcastStream::new(state.updates.subscribe());
    let (missed, after) = match resume_from {
        None => (None, None),
        Some(after) => match state.monitor.feed().since(after).await {
            Resume::Changes(changes) => {
                let frames = encode_changes(&state.monitor, &changes).await;
                let last = frames.last().map_or(after, |f| f.id);
                let mine: Vec<&SseFrame> = frames
                    .iter()
                    .filter(|f| only.as_ref().is_none_or(|id| &f.station == id))
                    .collect();
                (Some(concat(mine.into_iter())), Some(last))
            }
            Resume::Reset(reason) => (
                Some(frame(
                    "reset",
                    &serde_json::json!({ "reason": reason }).to_string(),
                )),
                None,
            ),
        },
    };
    let updates = live.filter_map(move |message| {
        let bytes = match message {
            // The common case: every frame, already joined.
            Ok(message)
                if only.is_none()
                    && after.is_none_or(|a| message.frames.first().is_some_and(|f| f.id > a)) =>
            {
                Some(message.all.clone())
            }
            // A batch may hold several updates of the station: send them all, in order.
            Ok(message) => {
                let mine = concat(message.frames.iter().filter(|f| {
                    only.as_ref().is_none_or(|id| &f.station == id)
                        && after.is_none_or(|a| f.id > a)
                }));
                (!mine.is_empty()).then_some(mine)
            }
            Err(BroadcastStreamRecvError::Lagged(missed)) => Some(frame(
                "lagged",
                &serde_json::json!({ "missed": missed }).to_string(),
            )),
        };
        std::future::ready(bytes)
    });
    let heartbeats = stream::unfold((), |()| async {
        tokio::time::sleep(HEARTBEAT).await;
        Some((Bytes::from_static(b": keep-alive\n\n"), ()))
    });
    let frames = stream::once(std::future::ready(hello))
        .chain(stream::iter(missed))
        .chain(stream::select(updates, heartbeats))
        .map(move |bytes| {
            let _alive = &guard;
            Ok::<_, Infallible>(bytes)
        })
        .take_until(state.shutdown.clone().cancelled_owned());
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(frames),
    )
        .into_response())
}
