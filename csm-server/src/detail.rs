//! The answers of `GET /api/stations/{id}` and `GET /api/ports`, encoded once per state of a
//! station: a station's state changes once a refresh interval, while readers may ask for it
//! thousands of times a second. Only the answer's own `timestamp` is written per request.
//!
//! An answer younger than [`FRESH_FOR`] is served without asking the cache again, so a station
//! read by many clients at once costs one cache read per quarter second. Changes reach the
//! dashboard through the event stream at once regardless.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use csm_core::model::{Station, StationId};
use csm_core::monitor::StationView;

use crate::views::StationDetailJson;

/// How long an answer is served without checking the cache.
pub const FRESH_FOR: Duration = Duration::from_millis(250);

/// Stations whose answers are kept; past this the kept answers are dropped and rebuilt on
/// demand, so memory stays small however large the fleet.
const MAX_ENTRIES: usize = 2_000;

/// One encoded answer and what it was made from.
struct Entry {
    /// When the answer was last checked against the cache.
    checked: Mutex<Instant>,
    station: Arc<Station>,
    checked_at: Option<DateTime<Utc>>,
    observed_at: Option<DateTime<Utc>>,
    stale: bool,
    /// The JSON without its closing `}`.
    head: Bytes,
}

impl Entry {
    fn checked_within(&self, age: Duration) -> bool {
        self.checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
            < age
    }

    fn fits(&self, view: &StationView) -> bool {
        let state = view.state.as_deref();
        Arc::ptr_eq(&self.station, &view.station)
            && self.checked_at == state.map(|s| s.checked_at)
            && self.observed_at == state.and_then(|s| s.observed_at)
            && self.stale == view.stale
    }
}

/// Encoded station answers.
#[derive(Default)]
pub struct DetailCache {
    entries: RwLock<HashMap<StationId, Arc<Entry>>>,
}

impl std::fmt::Debug for DetailCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.entries.read().map(|e| e.len()).unwrap_or_default();
        f.debug_struct("DetailCache")
            .field("entries", &len)
            .finish()
    }
}

impl DetailCache {
    /// The answer for a station if one was checked against the cache less than
    /// [`FRESH_FOR`] ago.
    pub fn fresh(&self, id: &StationId) -> Option<Response> {
        let entry = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .filter(|entry| entry.checked_within(FRESH_FOR))
            .cloned()?;
        Some(answer(&entry))
    }

    /// Forgets a station's answer (the station was removed).
    pub fn forget(&self, id: &StationId) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// The JSON answer for a station view.
    pub fn response(&self, view: &StationView) -> Response {
        let kept = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&view.station.id)
            .filter(|entry| entry.fits(view))
            .cloned();
        if let Some(entry) = kept {
            // Same state: keep the encoding, note that it was checked now.
            *entry.checked.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
            return answer(&entry);
        }
        let entry = Arc::new(encode(view));
        {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(&view.station.id) {
                entries.clear();
            }
            entries.insert(view.station.id.clone(), Arc::clone(&entry));
        }
        answer(&entry)
    }
}

/// The answer of an entry with this moment's `timestamp`.
fn answer(entry: &Entry) -> Response {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    let mut body = Vec::with_capacity(entry.head.len() + now.len() + 16);
    body.extend_from_slice(&entry.head);
    body.extend_from_slice(b",\"timestamp\":\"");
    body.extend_from_slice(now.as_bytes());
    body.extend_from_slice(b"\"}");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn encode(view: &StationView) -> Entry {
    let state = view.state.as_deref();
    let mut json = serde_json::to_vec(&StationDetailJson::of(view)).unwrap_or_default();
    // `timestamp` is the last field: cut it, to be written per answer.
    if let Some(at) = json.windows(13).rposition(|w| w == b",\"timestamp\":") {
        json.truncate(at);
    }
    Entry {
        checked: Mutex::new(Instant::now()),
        station: Arc::clone(&view.station),
        checked_at: state.map(|s| s.checked_at),
        observed_at: state.and_then(|s| s.observed_at),
        stale: view.stale,
        head: Bytes::from(json),
    }
}
