//! The answers of `GET /api/stations/{id}` and `GET /api/ports`, encoded once per state of a
//! station: a station's state changes once a refresh interval, while readers may ask for it
//! thousands of times a second. Only the answer's own `timestamp` is written per request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use csm_core::model::{Station, StationId};
use csm_core::monitor::StationView;

use crate::views::StationDetailJson;

/// Stations whose answers are kept; past this the kept answers are dropped and rebuilt on
/// demand, so memory stays small however large the fleet.
const MAX_ENTRIES: usize = 2_000;

/// One encoded answer and what it was made from.
struct Entry {
    station: Arc<Station>,
    checked_at: Option<DateTime<Utc>>,
    observed_at: Option<DateTime<Utc>>,
    stale: bool,
    /// The JSON without its closing `}`.
    head: Bytes,
}

impl Entry {
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
    /// The JSON answer for a station view.
    pub fn response(&self, view: &StationView) -> Response {
        let kept = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&view.station.id)
            .filter(|entry| entry.fits(view))
            .cloned();
        let entry = match kept {
            Some(entry) => entry,
            None => {
                let entry = Arc::new(encode(view));
                let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
                entries.insert(view.station.id.clone(), Arc::clone(&entry));
                entry
            }
        };
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        let mut body = Vec::with_capacity(entry.head.len() + now.len() + 16);
        body.extend_from_slice(&entry.head);
        body.extend_from_slice(b",\"timestamp\":\"");
        body.extend_from_slice(now.as_bytes());
        body.extend_from_slice(b"\"}");
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

fn encode(view: &StationView) -> Entry {
    let state = view.state.as_deref();
    let mut json = serde_json::to_vec(&StationDetailJson::of(view)).unwrap_or_default();
    // `timestamp` is the last field: cut it, to be written per answer.
    if let Some(at) = json.windows(13).rposition(|w| w == b",\"timestamp\":") {
        json.truncate(at);
    }
    Entry {
        station: Arc::clone(&view.station),
        checked_at: state.map(|s| s.checked_at),
        observed_at: state.and_then(|s| s.observed_at),
        stale: view.stale,
        head: Bytes::from(json),
    }
}
