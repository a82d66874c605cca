//! The answers of `GET /api/stations/{id}` and `GET /api/ports`, each kept for [`FRESH_FOR`]:
//! a station read by many clients at once is then read from the cache and encoded a few times
//! a second instead of once per request. Changes reach the dashboard through the event stream
//! at once regardless.
//!
//! An answer is a whole JSON document as serde_json wrote it; its `timestamp` is when it was
//! made, at most [`FRESH_FOR`] before it is sent. Entries expire on their own (moka), at most
//! [`MAX_ENTRIES`] are kept, and a removed station's entry is dropped at once.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use csm_core::model::StationId;
use csm_core::monitor::StationView;
use csm_core::views::StationDetailJson;

/// How long an answer is served before it is made again.
pub const FRESH_FOR: Duration = Duration::from_millis(250);

/// Most answers kept; the least used go first.
const MAX_ENTRIES: u64 = 10_000;

/// Encoded station answers.
pub struct DetailCache {
    answers: moka::sync::Cache<StationId, Bytes>,
}

impl Default for DetailCache {
    fn default() -> Self {
        Self {
            answers: moka::sync::Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(FRESH_FOR)
                .build(),
        }
    }
}

impl std::fmt::Debug for DetailCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetailCache")
            .field("entries", &self.answers.entry_count())
            .finish()
    }
}

impl DetailCache {
    /// The answer for a station made less than [`FRESH_FOR`] ago.
    pub fn fresh(&self, id: &StationId) -> Option<Response> {
        self.answers.get(id).map(json)
    }

    /// The answer for a station view, kept for the next requests.
    pub fn answer(&self, view: &StationView) -> Response {
        let body =
            Bytes::from(serde_json::to_vec(&StationDetailJson::of(view)).unwrap_or_default());
        self.answers.insert(view.station.id.clone(), body.clone());
        json(body)
    }

    /// Forgets a station's answer (the station was removed).
    pub fn forget(&self, id: &StationId) {
        self.answers.invalidate(id);
    }
}

fn json(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
