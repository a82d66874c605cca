//! The OCPP central-system endpoint: `ws://HOST/ocpp/{charge_point_id}`, upgraded when the
//! charger offers the `ocpp2.0.1` or `ocpp1.6` subprotocol (both: `CSM_OCPP_PREFERRED_VERSION`
//! picks, 2.0.1 unless set; none: 1.6, with `CSM_OCPP_ALLOW_NO_SUBPROTOCOL`). Each text frame
//! is answered by the core ([`csm_core::ocpp`]) in the version agreed; a change a charger
//! reports refreshes its station like a poll.
//!
//! Also `GET /api/ocpp/charge-points`: the registry of charge points (connection, last message,
//! firmware), the document of `csm-cli ocpp status --json`.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

use csm_core::model::Station;
use csm_core::monitor::{Admitted, BeforeBoot, Transport};

use super::responses::{AdminRefusals, BodyRefusals, Unavailable};
use crate::AppState;
use crate::api::extract::{Admin, ApiJson, ApiQuery, Operator, StationPath, Viewer};
use crate::error::ApiError;
use csm_core::ocpp::log::MAX_FRAMES;
use csm_core::ocpp::{Command, Version};
use csm_core::views::ocpp::{
    ChargePointJson, ChargePointListJson, CommandAnswerJson, MessageLogJson,
};

/// Largest frame a charger may send (a MeterValues of many samples is a few KiB).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// How long a new connection's first refresh waits for the charger's first report.
const FIRST_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);
/// The read buffer of a connection.
const BUFFER_BYTES: usize = 4 * 1024;

/// Which charge points to list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChargePointsQuery {
    /// Every OCPP station, also those not connected now (default: the connected ones).
    all: Option<bool>,
}

/// The OCPP charge points: how each is connected, when it last sent what, its firmware.
#[utoipa::path(
    get, path = "/api/ocpp/charge-points", tag = "ocpp",
    params(ChargePointsQuery),
    responses(
        (status = 200, description = "The charge points, by id", body = ChargePointListJson),
        (status = 400, description = "A bad query", body = crate::views::ErrorJson),
        Unavailable,
    )
)]
pub async fn charge_points(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ChargePointsQuery>,
) -> Result<axum::Json<ChargePointListJson>, ApiError> {
    let list = state
        .monitor
        .ocpp()
        .charge_points(query.all.unwrap_or(false))
        .await?;
    Ok(axum::Json(ChargePointListJson::of(&list)))
}

/// One OCPP charge point: how it is connected, when it last sent what, its firmware.
#[utoipa::path(
    get, path = "/api/ocpp/charge-points/{station_id}", tag = "ocpp",
    params(StationPath),
    responses(
        (status = 200, description = "The charge point", body = ChargePointJson),
        (status = 400, description = "Not a station id", body = crate::views::ErrorJson),
        (status = 404, description = "No OCPP station has this id", body = crate::views::ErrorJson),
        Unavailable,
    )
)]
pub async fn charge_point(
    State(state): State<AppState>,
    StationPath(id): StationPath,
) -> Result<axum::Json<ChargePointJson>, ApiError> {
    let status = state.monitor.ocpp().charge_point(&id).await?;
    Ok(axum::Json(ChargePointJson::of(&status)))
}

/// The security profile to set.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityProfileBody {
    /// 1 (its password, if it has one, over any connection), 2 (TLS: `wss://`) or 3 (TLS with
    /// its client certificate, whose subject CN is its id, issued by `CSM_TLS_CLIENT_CA`).
    #[serde(deserialize_with = "csm_core::model::whole::u32")]
    #[schema(minimum = 1, maximum = 3)]
    pub security_profile: u32,
}

/// A charge point's security profile.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SecurityProfileJson {
    /// The charge point.
    pub station_id: String,
    /// 1, 2 or 3.
    pub security_profile: u32,
}

/// Sets the security profile an OCPP charge point must connect with (admin token required);
/// every instance applies it within 60 s (this one at once).
#[utoipa::path(
    put, path = "/api/ocpp/charge-points/{station_id}/security", tag = "ocpp",
    params(StationPath),
    request_body = SecurityProfileBody,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Set", body = SecurityProfileJson),
        (status = 400, description = "Not a profile, or not an OCPP station", body = crate::views::ErrorJson),
        AdminRefusals,
        (status = 404, description = "No station has this id", body = crate::views::ErrorJson),
        BodyRefusals,
        Unavailable,
    )
)]
pub async fn set_security(
    State(state): State<AppState>,
    _admin: Admin,
    StationPath(id): StationPath,
    ApiJson(body): ApiJson<SecurityProfileBody>,
) -> Result<axum::Json<SecurityProfileJson>, ApiError> {
    let profile = u8::try_from(body.security_profile).unwrap_or(u8::MAX);
    state
        .monitor
        .ocpp()
        .set_security_profile(&id, profile)
        .await?;
    tracing::info!(station = %id, profile, "security profile set");
    Ok(axum::Json(SecurityProfileJson {
        station_id: id.to_string(),
        security_profile: u32::from(profile),
    }))
}

/// How long a command waits for the charger's answer.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CommandQuery {
    /// Seconds to wait for the charger's answer (1–25, default 10).
    #[param(minimum = 1, maximum = 25)]
    timeout_secs: Option<u64>,
}

/// Sends an operator's command to an OCPP charge point, through the instance that holds its
/// connection, and answers with what the charger answered.
#[utoipa::path(
    post, path = "/api/ocpp/charge-points/{station_id}/commands", tag = "ocpp",
    params(StationPath, CommandQuery),
    request_body = Command,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The charger's answer (its status may be Rejected or NotSupported)", body = CommandAnswerJson),
        (status = 400, description = "A command that cannot be right: an unknown key, a connector the charger does not have, a value of the wrong type", body = crate::views::ErrorJson),
        (status = 401, description = "No token, or one csm does not know", body = crate::views::ErrorJson),
        (status = 403, description = "The token's role is below operator, or writes are disabled", body = crate::views::ErrorJson),
        (status = 404, description = "No station has this id", body = crate::views::ErrorJson),
        (status = 409, description = "The charger is not connected, or the station is not an OCPP charge point", body = crate::views::ErrorJson),
        (status = 502, description = "The charger answered with an error (NotImplemented, …)", body = crate::views::ErrorJson),
        (status = 504, description = "The charger did not answer in time", body = crate::views::ErrorJson),
        BodyRefusals,
        Unavailable,
    )
)]
pub async fn command(
    State(state): State<AppState>,
    _operator: Operator,
    StationPath(id): StationPath,
    ApiQuery(query): ApiQuery<CommandQuery>,
    ApiJson(command): ApiJson<Command>,
) -> Result<axum::Json<CommandAnswerJson>, ApiError> {
    let timeout = match query.timeout_secs {
        Some(secs @ 1..=25) => Some(Duration::from_secs(secs)),
        Some(secs) => {
            return Err(ApiError::BadRequest(format!(
                "timeout_secs {secs} is outside 1..25"
            )));
        }
        None => None,
    };
    let outcome = state.monitor.ocpp().command(&id, &command, timeout).await?;
    Ok(axum::Json(CommandAnswerJson::of(&id, outcome)))
}

/// Which frames of a message log to read.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    /// Only the frames after this number (`seq`): what a follower has not seen yet.
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    after: Option<u64>,
    /// At most this many frames, the newest (1–200, default 200).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
}

/// A charge point's message log: its last frames in both directions (at most 200, 256 KiB),
/// read from the instance that holds its connection.
#[utoipa::path(
    get, path = "/api/ocpp/charge-points/{station_id}/messages", tag = "ocpp",
    params(StationPath, MessagesQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The frames, oldest first", body = MessageLogJson),
        (status = 400, description = "A bad query or station id", body = crate::views::ErrorJson),
        (status = 401, description = "No token, or one csm does not know (any role may read)", body = crate::views::ErrorJson),
        (status = 404, description = "No station has this id", body = crate::views::ErrorJson),
        (status = 409, description = "The station is not an OCPP charge point", body = crate::views::ErrorJson),
        Unavailable,
    )
)]
pub async fn messages(
    State(state): State<AppState>,
    _viewer: Viewer,
    StationPath(id): StationPath,
    ApiQuery(query): ApiQuery<MessagesQuery>,
) -> Result<axum::Json<MessageLogJson>, ApiError> {
    let limit = query.limit.unwrap_or(MAX_FRAMES);
    if !(1..=MAX_FRAMES).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} is outside 1..{MAX_FRAMES}"
        )));
    }
    let after = query.after.unwrap_or(0);
    if i64::try_from(after).is_err() {
        return Err(ApiError::BadRequest(format!(
            "after {after} is past the largest frame number ({})",
            i64::MAX
        )));
    }
    let read = state.monitor.ocpp().messages(&id, after, limit).await?;
    Ok(axum::Json(MessageLogJson::of(&id, read)))
}

/// How the connection reached csm: over TLS (here, or at a trusted proxy that said so), and the
/// charge point id of the verified client certificate it presented (here, or in the header a
/// trusted proxy passes it in). A certificate csm cannot use is refused with the reason.
fn transport(
    state: &AppState,
    peer: std::net::SocketAddr,
    peer_tls: Option<&crate::tls::PeerTls>,
    headers: &HeaderMap,
) -> Result<Transport, String> {
    let named = |der: &[u8]| {
        crate::tls::common_name(der).ok_or_else(|| {
            "the client certificate names no charge point (its subject has no CN)".to_owned()
        })
    };
    if let Some(peer_tls) = peer_tls {
        let certificate = match &peer_tls.certificate {
            Some(der) => Some(named(der)?),
            None => None,
        };
        return Ok(Transport {
            tls: true,
            certificate,
        });
    }
    if !state.config.trusted_proxies.trusts_peer(peer) {
        return Ok(Transport::default());
    }
    let proxied_tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let passed = state
        .config
        .client_cert_header
        .as_ref()
        .and_then(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let Some(passed) = passed else {
        return Ok(Transport {
            tls: proxied_tls,
            certificate: None,
        });
    };
    let der = crate::tls::certificate_of_header(passed)
        .map_err(|e| format!("the client certificate the proxy passed: {e}"))?;
    if let Some(tls) = &state.tls {
        tls.verify_client(&der)
            .map_err(|e| format!("the client certificate the proxy passed: {e}"))?;
    }
    Ok(Transport {
        tls: true,
        certificate: Some(named(&der)?),
    })
}

/// Upgrades a charger's connection.
pub async fn connect(
    State(state): State<AppState>,
    Path(charge_point_id): Path<String>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    peer_tls: Option<axum::Extension<crate::tls::PeerTls>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    // Answered with the very token offered (`OCPP1.6` from firmware that spells it so).
    let chosen = Version::choose(&offered, state.monitor.settings().ocpp.preferred_version);
    let allowed = offered.is_empty() && state.monitor.settings().ocpp.allow_no_subprotocol;
    let (version, token) = match chosen {
        Some((version, token)) => (version, Some(token.to_owned())),
        None if allowed => (Version::V16, None),
        None => {
            return Err(ApiError::BadRequest(if offered.is_empty() {
                "offer the WebSocket subprotocol ocpp2.0.1 or ocpp1.6 (Sec-WebSocket-Protocol: ocpp2.0.1, ocpp1.6); a server can accept chargers that offer none, as OCPP 1.6, with CSM_OCPP_ALLOW_NO_SUBPROTOCOL=true".into()
            } else {
                format!(
                    "csm speaks OCPP 2.0.1 (subprotocol ocpp2.0.1) and 1.6J (ocpp1.6), not {}",
                    offered.join(", ")
                )
            }));
        }
    };
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::Rejected(
            rejection.status(),
            format!("{}: connect with a WebSocket client", rejection.body_text()),
        )
    })?;
    let credentials = basic_credentials(&headers);
    let transport = match transport(&state, peer, peer_tls.as_deref(), &headers) {
        Ok(transport) => transport,
        Err(message) => {
            tracing::warn!(charge_point = %charge_point_id, %message, "charge point refused");
            return Ok(unauthorized(message));
        }
    };
    let connected = state
        .monitor
        .ocpp()
        .connect(
            &charge_point_id,
            credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
            &transport,
        )
        .await;
    let admitted = match connected {
        Ok(admitted) => admitted,
        Err(csm_core::MonitorError::Unauthorized(message)) => {
            tracing::warn!(charge_point = %charge_point_id, %message, "charge point refused");
            return Ok(unauthorized(message));
        }
        Err(error) => return Err(error.into()),
    };
    // Small buffers: thousands of chargers stay connected, each sending a few hundred bytes
    // at a time (the buffers grow for a larger frame, up to the limits).
    let upgrade = upgrade
        .read_buffer_size(BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES);
    let upgrade = match token {
        Some(token) => upgrade.protocols([token]),
        None => upgrade,
    };
    Ok(upgrade
        .on_upgrade(move |socket| attach(state, admitted, version, socket))
        .into_response())
}

/// Serves a charger's socket: a known charge point at once; one not registered yet once its
/// BootNotification registered it. A socket that sends nothing (or no BootNotification, when
/// that is what is awaited) within `CSM_OCPP_FIRST_FRAME_SECS` is closed.
async fn attach(state: AppState, admitted: Admitted, version: Version, mut socket: WebSocket) {
    let monitor = Arc::clone(&state.monitor);
    let _open = monitor.ocpp().socket_opened();
    let grace = Duration::from_secs(u64::from(monitor.settings().ocpp.first_frame_secs));
    let (station, boot) = match admitted {
        Admitted::Known(station) => (station, None),
        Admitted::Unregistered(id) => {
            let booted = tokio::select! {
                () = state.shutdown.cancelled() => None,
                booted = tokio::time::timeout(grace, await_boot(&monitor, &id, version, &mut socket)) => {
                    booted.unwrap_or_else(|_| {
                        tracing::info!(charge_point = %id, ?grace, "an unregistered charger sent no BootNotification in time: closing");
                        metrics::counter!("csm_ocpp_connections_closed_total", "reason" => "no_boot").increment(1);
                        None
                    })
                }
            };
            let Some((station, boot)) = booted else {
                let _ = socket.send(Message::Close(None)).await;
                return;
            };
            (station, Some(boot))
        }
    };
    let (connection, frames) = match monitor.ocpp().attach(&station, version).await {
        Ok(attached) => attached,
        Err(error) => {
            tracing::error!(station = %station.id, %error, "cannot attach a charge point");
            return;
        }
    };
    tracing::info!(station = %station.id, connection, %version, "charge point connected");
    let link = Link {
        station,
        connection,
        version,
    };
    serve(state, link, frames, boot, socket).await;
}

/// Reads an unregistered charger's frames until its BootNotification registers it: the station
/// and the boot's frame (answered by [`serve`]). `None` when the charger left or was refused.
async fn await_boot(
    monitor: &csm_core::Monitor,
    id: &csm_core::model::StationId,
    version: Version,
    socket: &mut WebSocket,
) -> Option<(Arc<Station>, String)> {
    loop {
        let text = match socket.recv().await? {
            Ok(Message::Text(text)) => text,
            Ok(Message::Binary(_)) => {
                socket
                    .send(Message::Text(binary_refused(version).into()))
                    .await
                    .ok()?;
                continue;
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        };
        match monitor.ocpp().before_boot(id, version, text.as_str()).await {
            BeforeBoot::Registered(station) => return Some((station, text.to_string())),
            BeforeBoot::Reply(reply) => socket.send(Message::Text(reply.into())).await.ok()?,
            BeforeBoot::Rejected(reply) => {
                let _ = socket.send(Message::Text(reply.into())).await;
                return None;
            }
            BeforeBoot::Ignore => {}
        }
    }
}

/// The user and password of `Authorization: Basic …`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// 401 with the Basic challenge, and no socket.
fn unauthorized(message: String) -> Response {
    (
        axum::http::StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"csm OCPP\", charset=\"UTF-8\"",
        )],
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

/// A charger's connection: its station, its number, the version it speaks.
struct Link {
    station: Arc<Station>,
    connection: u64,
    version: Version,
}

/// The answer to a binary message: OCPP-J frames are text.
fn binary_refused(version: Version) -> String {
    csm_core::ocpp::frame::error(
        version,
        "-1",
        csm_core::ocpp::frame::ErrorCode::FormationViolation,
        "OCPP-J frames are text messages",
    )
}

/// Answers a charger's frames until it leaves, a newer connection replaces this one, or the
/// server stops.
async fn serve(
    state: AppState,
    link: Link,
    mut calls: tokio::sync::mpsc::Receiver<String>,
    mut boot: Option<String>,
    mut socket: WebSocket,
) {
    let Link {
        station,
        connection,
        version,
    } = link;
    let monitor = Arc::clone(&state.monitor);
    // Changes are refreshed beside the connection, so its next frame is read at once; a change
    // arriving during a refresh gets one more refresh after it (the latest state is recorded).
    // The first refresh shows the station connected again: at its first report, or after
    // FIRST_REFRESH if it reports nothing (a charger that boots reports at once, and a
    // thousand chargers connecting together then cost one refresh each, not two).
    let changed = Arc::new(tokio::sync::Notify::new());
    let refresher = tokio::spawn({
        let (monitor, station, changed) = (
            Arc::clone(&monitor),
            Arc::clone(&station),
            Arc::clone(&changed),
        );
        async move {
            let _ = tokio::time::timeout(FIRST_REFRESH, changed.notified()).await;
            loop {
                monitor.refresh().one(Arc::clone(&station)).await;
                changed.notified().await;
            }
        }
    });
    let asking = tokio::spawn({
        let (monitor, station) = (Arc::clone(&monitor), Arc::clone(&station));
        async move { monitor.ocpp().ask_if_quiet(&station, connection).await }
    });
    // However the connection ends, its helpers end with it.
    let helpers = AbortOnDrop([refresher, asking]);
    let every = monitor.settings().ocpp.ping_secs;
    let mut pings = tokio::time::interval(std::time::Duration::from_secs(u64::from(every.max(1))));
    pings.reset();
    // A charger silent past its liveness window is refreshed at once (it counts as offline),
    // not at the scheduler's next turn. (A moment after the window: the frame's receive time is
    // taken a little after the timer is set.)
    let liveness = monitor.ocpp().liveness() + std::time::Duration::from_millis(250);
    let silence = tokio::time::sleep(liveness);
    tokio::pin!(silence);
    // A socket that says nothing at all is closed after a grace (a registered charger that
    // only reconnected is asked for its status before, and answers).
    let grace = Duration::from_secs(u64::from(monitor.settings().ocpp.first_frame_secs));
    let first_frame = tokio::time::sleep(grace);
    tokio::pin!(first_frame);
    let mut heard = boot.is_some();
    loop {
        if let Some(text) = boot.take() {
            // The BootNotification that registered the charger, answered like any frame.
            match answer(&monitor, &station, connection, &text, &changed, &mut socket).await {
                Some(()) => continue,
                None => break,
            }
        }
        let message = tokio::select! {
            // csm stops, not the charger: its ports are not recorded offline (the registry
            // records the disconnection).
            () = state.shutdown.cancelled() => return,
            () = &mut first_frame, if !heard => {
                tracing::info!(station = %station.id, connection, ?grace, "a charge point sent nothing after connecting: closing");
                metrics::counter!("csm_ocpp_connections_closed_total", "reason" => "silent").increment(1);
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            () = &mut silence => {
                changed.notify_one();
                silence.as_mut().reset(tokio::time::Instant::now() + liveness);
                continue;
            }
            _ = pings.tick(), if every > 0 => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
                continue;
            }
            call = calls.recv() => {
                let Some(call) = call else {
                    if state.shutdown.is_cancelled() {
                        return;
                    }
                    // A newer connection of the charger took over, here or on another
                    // instance: this one closes at once.
                    tracing::info!(station = %station.id, connection, "a newer connection of the charge point took over");
                    metrics::counter!("csm_ocpp_connections_closed_total", "reason" => "replaced").increment(1);
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                };
                if socket.send(Message::Text(call.into())).await.is_err() {
                    break;
                }
                continue;
            }
            message = socket.recv() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => {
                heard = true;
                silence
                    .as_mut()
                    .reset(tokio::time::Instant::now() + liveness);
                text
            }
            Some(Ok(Message::Binary(_))) => {
                if socket
                    .send(Message::Text(binary_refused(version).into()))
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            // Pings are answered by the WebSocket layer.
            Some(Ok(_)) => continue,
        };
        if answer(
            &monitor,
            &station,
            connection,
            text.as_str(),
            &changed,
            &mut socket,
        )
        .await
        .is_none()
        {
            break;
        }
    }
    drop(helpers);
    if monitor.ocpp().disconnect(&station, connection).await {
        tracing::info!(station = %station.id, connection, "charge point disconnected");
        monitor.refresh().one(station).await;
    }
}

/// Answers one frame of a charger's connection; `None` when the connection is to end (the
/// socket failed, or a newer connection took over: then it is closed here).
async fn answer(
    monitor: &Arc<csm_core::Monitor>,
    station: &Arc<Station>,
    connection: u64,
    text: &str,
    changed: &tokio::sync::Notify,
    socket: &mut WebSocket,
) -> Option<()> {
    let answer = monitor.ocpp().frame(station, connection, text).ok()?;
    if answer.superseded {
        tracing::info!(station = %station.id, connection, "a newer connection of the charge point took over");
        let _ = socket.send(Message::Close(None)).await;
        return None;
    }
    if let Some(reply) = answer.reply {
        socket.send(Message::Text(reply.into())).await.ok()?;
    }
    if answer.changed {
        changed.notify_one();
    }
    if answer.booted {
        let (monitor, station) = (Arc::clone(monitor), Arc::clone(station));
        tokio::spawn(async move { monitor.ocpp().configure(&station).await });
    }
    Some(())
}

/// Aborts its tasks when dropped.
struct AbortOnDrop<const N: usize>([tokio::task::JoinHandle<()>; N]);

impl<const N: usize> Drop for AbortOnDrop<N> {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
