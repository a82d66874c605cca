//! The answers of `GET /api/stations/{id}` and `GET /api/ports`, each kept for [`FRESH_FOR`]:
//! a station read by many clients at once is then read from the cache and encoded a few times
//! a second instead of once per request. Changes reach the dashboard through the event stream
//! at once regardless.
//!
//! An answer made before a station of the fleet changed is not sent again (see
//! [`Changes`]).
//!
//! An answer is a whole JSON document as serde_json wrote it; its `timestamp` is when it was
//! made, at most [`FRESH_FOR`] before it is sent. Entries expire on their own (moka), at most
//! [`MAX_ENTRIES`] are kept, and a removed station's entry is dropped at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use csm_core::model::StationId;
use csm_core::monitor::StationView;
use csm_core::views::StationDetailJson;

use crate::changes::Changes;
use crate::conditional;

/// How long an answer is served before it is made again.
pub const FRESH_FOR: Duration = Duration::from_millis(250);

/// Most answers kept; the least used go first.
const MAX_ENTRIES: u64 = 10_000;

/// An encoded answer, its `Last-Modified`, and the fleet's change count when it was made.
type Kept = (Bytes, Option<HeaderValue>, u64);

/// Encoded station answers.
pub struct DetailCache {
    changes: Arc<Changes>,
    answers: moka::sync::Cache<StationId, Kept>,
}

impl DetailCache {
    /// No answers yet; those made later are out of date once `changes` moves.
    pub fn new(changes: Arc<Changes>) -> Self {
        Self {
            changes,
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
    /// The answer for a station made less than [`FRESH_FOR`] ago, when no station of the
    /// fleet changed since.
    pub fn fresh(&self, id: &StationId) -> Option<Response> {
        let now = self.changes.now();
        self.answers
            .get(id)
            .filter(|(_, _, made_at)| *made_at == now)
            .map(|(body, modified, _)| json(body, modified))
    }

    /// The answer for a station view, kept for the next requests.
    pub fn answer(&self, view: &StationView, changes: u64) -> Response {
        let body =
            Bytes::from(serde_json::to_vec(&StationDetailJson::of(view)).unwrap_or_default());
        let modified = view
            .state
            .as_ref()
            .and_then(|s| HeaderValue::from_str(&conditional::http_date(s.checked_at)).ok());
        self.answers.insert(
            view.station.id.clone(),
            (body.clone(), modified.clone(), changes),
        );
        json(body, modified)
    }

    /// Forgets a station's answer (the station was removed).
    pub fn forget(&self, id: &StationId) {
        self.answers.invalidate(id);
    }
}

/// The answer, with when the station was last checked as its `Last-Modified`.
fn json(body: Bytes, modified: Option<HeaderValue>) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(modified) = modified {
        response
            .headers_mut()
            .insert(header::LAST_MODIFIED, modified);
    }
    response
}
