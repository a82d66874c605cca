//! The answers of `GET /api/stations`, made once and sent to every client that asks the same
//! question, until the fleet changes.
//!
//! A list of 1,000 stations with 12 ports each is about 3 MB of JSON. Clients poll it (the
//! system csm replaces re-read it every 5 seconds from every open page), so its answer is kept,
//! one per question (filters, page, view), as bytes:
//!
//! - it is made again when a station's ports change (at once when this instance saw it, and
//!   as the feed brings it when another did), when the station list changes, or when it is
//!   [`FRESH_FOR`] old (a reading, a refresh time or a "free in" estimate may have moved
//!   without a status change); after a change, an answer younger than the time it took to
//!   make is still sent, so a fleet that changes all the time has its list made at most half
//!   the time (a few milliseconds late at 1,000 stations);
//! - while it is made, the clients asking wait for it; an answer that is merely old is sent once
//!   more while one request makes the next in the background;
//! - each station's part is kept between answers and encoded again only when that station's
//!   state, flags or estimates changed;
//! - its tag is the hash of its bytes without the answer's own `timestamp`, which is written per
//!   request after the kept bytes (`…,"timestamp":"` + now + `"}`);
//! - its gzip form is made once per answer, on the first request that accepts gzip; the time is
//!   appended to it as a stored deflate block, so every client still gets its own time.
//!
//! At most [`MAX_QUESTIONS`] answers and [`MAX_BYTES`] are kept; those not asked for in
//! [`IDLE_FOR`] go first.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::changes::Changes;
use crate::conditional;
use crate::error::ApiError;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use csm_core::Monitor;
use csm_core::catalog::Catalog;
use csm_core::history::estimate::FreeEstimate;
use csm_core::model::{Station, StationId, StationState};
use csm_core::monitor::{StationQuery, StationView};
use csm_core::views::{ListView, ListedStationJson, PortJson, StationJson};

/// An answer older than this is made again before it is sent (or, up to [`SERVE_OLD_FOR`],
/// while it is sent).
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// An answer of the fleet as it still is may be sent once more while the next is made, up to
/// this age.
const SERVE_OLD_FOR: Duration = Duration::from_secs(5);
/// Most questions whose answers are kept.
const MAX_QUESTIONS: usize = 64;
/// Most bytes of kept answers (each station's part, the answer, its gzip form).
const MAX_BYTES: usize = 256 << 20;
/// Answers not asked for this long are dropped.
const IDLE_FOR: Duration = Duration::from_secs(60);

/// The kept answers of the station list.
pub struct ListAnswers {
    changes: Arc<Changes>,
    questions: Mutex<HashMap<String, Arc<Question>>>,
}

impl std::fmt::Debug for ListAnswers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListAnswers")
            .field("changes", &self.changes.now())
            .finish_non_exhaustive()
    }
}

/// One question and its latest answer.
#[derive(Default)]
struct Question {
    answer: Mutex<Option<Arc<Answer>>>,
    /// Held while the answer is made.
    making: Arc<tokio::sync::Mutex<()>>,
    last_asked: Mutex<Option<Instant>>,
}

impl Question {
    fn answer(&self) -> Option<Arc<Answer>> {
        self.answer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A station's part of an answer, and what it was made of.
struct Part {
    station: Arc<Station>,
    state: Option<Arc<StationState>>,
    stale: bool,
    estimates: Vec<Option<FreeEstimate>>,
    json: Bytes,
}

impl Part {
    fn of(view: StationView, list: ListView) -> Self {
        let json = ListedStationJson {
            station: StationJson::of(&view),
            ports: (list == ListView::Full).then(|| PortJson::all_of(&view)),
        };
        Self {
            json: Bytes::from(serde_json::to_vec(&json).unwrap_or_default()),
            station: view.station,
            state: view.state,
            stale: view.stale,
            estimates: view.estimates,
        }
    }

    /// Whether this part still shows `view`.
    fn shows(&self, view: &StationView) -> bool {
        let same_state = match (&self.state, &view.state) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            (None, None) => true,
            _ => false,
        };
        same_state
            && self.stale == view.stale
            && self.estimates == view.estimates
            && (Arc::ptr_eq(&self.station, &view.station) || self.station == view.station)
    }
}

/// A list answer: everything but the time it is sent at.
struct Answer {
    generation: u64,
    catalog: Arc<Catalog>,
    made: Instant,
    /// How long it took to make.
    took: Duration,
    /// `{"stations":[…],"total":N,"timestamp":"`.
    head: Bytes,
    tag: String,
    last_modified: Option<DateTime<Utc>>,
    parts: Vec<Arc<Part>>,
    gzip: tokio::sync::OnceCell<Arc<GzipHead>>,
}

impl Answer {
    fn bytes(&self) -> usize {
        self.head.len()
            + self.parts.iter().map(|p| p.json.len()).sum::<usize>()
            + self.gzip.get().map_or(0, |g| g.bytes.len())
    }
}

/// The gzip form of an answer's head: a gzip header and the head's deflate stream, flushed to
/// a byte boundary and not finished, with the checksum so far.
struct GzipHead {
    bytes: Bytes,
    crc: crc32fast::Hasher,
    len: usize,
}

impl GzipHead {
    fn of(head: &[u8]) -> Result<Self, flate2::CompressError> {
        use flate2::{Compress, Compression, FlushCompress};
        // A gzip header: deflate, no name, no time, any OS.
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        out.reserve(head.len() / 6 + 1024);
        let mut deflate = Compress::new(Compression::fast(), false);
        loop {
            let done = usize::try_from(deflate.total_in()).unwrap_or(usize::MAX);
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity());
            }
            deflate.compress_vec(&head[done..], &mut out, FlushCompress::Sync)?;
            // A sync flush is complete when all input is taken and room was left over.
            if deflate.total_in() as usize == head.len() && out.capacity() - out.len() >= 1024 {
                break;
            }
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(head);
        Ok(Self {
            bytes: Bytes::from(out),
            crc,
            len: head.len(),
        })
    }

    /// The end of a gzip member that continues the head with `tail`: a final stored block of
    /// `tail`, the checksum and the length.
    fn finish(&self, tail: &[u8]) -> Bytes {
        let len = u16::try_from(tail.len()).expect("a tail is a few dozen bytes");
        let mut out = Vec::with_capacity(tail.len() + 13);
        out.push(1); // the final block, stored
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(tail);
        let mut crc = self.crc.clone();
        crc.update(tail);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&((self.len + tail.len()) as u32).to_le_bytes());
        Bytes::from(out)
    }
}

impl ListAnswers {
    /// No answers yet; those made later are out of date once `changes` moves.
    pub fn new(changes: Arc<Changes>) -> Self {
        Self {
            changes,
            questions: Mutex::default(),
        }
    }

    /// The answer to `query` for a client that sent `asked`.
    pub async fn answer(
        self: &Arc<Self>,
        monitor: &Arc<Monitor>,
        query: StationQuery,
        view: ListView,
        asked: &HeaderMap,
    ) -> Result<Response, ApiError> {
        let answer = self.current(monitor, query, view).await?;
        Ok(respond(&answer, asked).await)
    }

    async fn current(
        self: &Arc<Self>,
        monitor: &Arc<Monitor>,
        query: StationQuery,
        view: ListView,
    ) -> Result<Arc<Answer>, ApiError> {
        let generation = self.changes.now();
        let catalog = monitor.stations().catalog().await?;
        let question = self.question(key(&query, view));
        let of_now = |answer: &Answer| {
            Arc::ptr_eq(&answer.catalog, &catalog)
                && (answer.generation >= generation || answer.made.elapsed() < answer.took)
        };
        if let Some(answer) = question.answer()
            && of_now(&answer)
        {
            let age = answer.made.elapsed();
            if age < FRESH_FOR {
                return Ok(answer);
            }
            if age < SERVE_OLD_FOR {
                if let Ok(making) = Arc::clone(&question.making).try_lock_owned() {
                    let (lists, monitor) = (Arc::clone(self), Arc::clone(monitor));
                    let question = Arc::clone(&question);
                    tokio::spawn(async move {
                        if let Err(error) = lists.make(&monitor, &question, query, view).await {
                            tracing::debug!(%error, "the station list was not made again");
                        }
                        drop(making);
                    });
                }
                return Ok(answer);
            }
        }
        let asked_at = Instant::now();
        let _making = question.making.lock().await;
        // Made by another request while this one waited.
        if let Some(answer) = question.answer()
            && of_now(&answer)
            && answer.made >= asked_at
        {
            return Ok(answer);
        }
        self.make(monitor, &question, query, view).await
    }

    /// The question's entry, made if new; forgets questions not asked for a while and the
    /// least asked when too many bytes are kept.
    fn question(&self, key: String) -> Arc<Question> {
        let mut questions = self.questions.lock().unwrap_or_else(|e| e.into_inner());
        let question = match questions.get(&key) {
            Some(question) => Arc::clone(question),
            None => {
                forget_some(&mut questions);
                let question = Arc::new(Question::default());
                questions.insert(key, Arc::clone(&question));
                question
            }
        };
        *question
            .last_asked
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        question
    }

    /// Makes the answer of a question, reusing the parts of its last answer that still show
    /// their station.
    async fn make(
        &self,
        monitor: &Monitor,
        question: &Question,
        query: StationQuery,
        view: ListView,
    ) -> Result<Arc<Answer>, ApiError> {
        let started = Instant::now();
        let generation = self.changes.now();
        let catalog = monitor.stations().catalog().await?;
        let page = monitor.stations().list(&query).await?;
        let previous = question.answer();
        let old: HashMap<&StationId, &Arc<Part>> = previous
            .as_deref()
            .map(|a| a.parts.iter().map(|p| (&p.station.id, p)).collect())
            .unwrap_or_default();
        let mut parts = Vec::with_capacity(page.views.len());
        let mut last_modified: Option<DateTime<Utc>> = None;
        for station_view in page.views {
            if let Some(checked) = station_view.state.as_ref().map(|s| s.checked_at) {
                last_modified = Some(last_modified.map_or(checked, |l| l.max(checked)));
            }
            parts.push(match old.get(&station_view.station.id) {
                Some(part) if part.shows(&station_view) => Arc::clone(part),
                _ => Arc::new(Part::of(station_view, view)),
            });
        }
        let tail = format!("],\"total\":{},\"timestamp\":\"", page.total);
        let mut head = Vec::with_capacity(
            parts.iter().map(|p| p.json.len() + 1).sum::<usize>() + tail.len() + 16,
        );
        head.extend_from_slice(b"{\"stations\":[");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                head.push(b',');
            }
            head.extend_from_slice(&part.json);
        }
        head.extend_from_slice(tail.as_bytes());
        let tag = conditional::tag_of(&head);
        let gzip = tokio::sync::OnceCell::new();
        // The same bytes as before: their gzip form stays good.
        if let Some(previous) = previous.as_deref()
            && previous.tag == tag
            && let Some(kept) = previous.gzip.get()
        {
            let _ = gzip.set(Arc::clone(kept));
        }
        let answer = Arc::new(Answer {
            generation,
            catalog,
            made: Instant::now(),
            took: started.elapsed(),
            head: Bytes::from(head),
            tag,
            last_modified,
            parts,
            gzip,
        });
        *question.answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&answer));
        Ok(answer)
    }
}

/// The questions to forget before another is kept.
fn forget_some(questions: &mut HashMap<String, Arc<Question>>) {
    let now = Instant::now();
    let asked = |q: &Question| *q.last_asked.lock().unwrap_or_else(|e| e.into_inner());
    questions.retain(|_, q| asked(q).is_some_and(|at| now.duration_since(at) < IDLE_FOR));
    let bytes = |questions: &HashMap<String, Arc<Question>>| -> usize {
        questions
            .values()
            .filter_map(|q| q.answer())
            .map(|a| a.bytes())
            .sum()
    };
    while questions.len() >= MAX_QUESTIONS
        || (!questions.is_empty() && bytes(questions) > MAX_BYTES)
    {
        let Some(least) = questions
            .iter()
            .min_by_key(|(_, q)| asked(q))
            .map(|(key, _)| key.clone())
        else {
            break;
        };
        questions.remove(&least);
    }
}

/// A question in one string: the same filters, page and view give the same key.
fn key(query: &StationQuery, view: ListView) -> String {
    let mut ids: Vec<&str> = query.ids.iter().flatten().map(|id| id.as_str()).collect();
    ids.sort_unstable();
    format!(
        "{view:?}|{:?}|{:?}|{:?}|{}|{}|{:?}|{:?}|{}",
        query.search.as_deref().map(str::to_lowercase),
        query.status,
        query.vendor,
        query.ids.is_some(),
        ids.join(","),
        query.limit,
        query.offset,
        query.estimates,
    )
}

/// The response to a client: `304` when it has this answer, else the answer with the time now,
/// compressed when the client accepts gzip.
async fn respond(answer: &Answer, asked: &HeaderMap) -> Response {
    let gzip = accepts_gzip(asked);
    let tag = if gzip {
        conditional::coded_tag(&answer.tag, "gzip")
    } else {
        answer.tag.clone()
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, conditional::CACHE_CONTROL);
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(modified) = answer.last_modified
        && let Ok(value) = HeaderValue::from_str(&conditional::http_date(modified))
    {
        headers.insert(header::LAST_MODIFIED, value);
    }
    if conditional::matches(asked, &tag) {
        return conditional::not_modified(&tag, &headers);
    }
    let mut now = String::with_capacity(40);
    csm_core::time::write(&Utc::now(), &mut now);
    now.push_str("\"}");
    let body = if gzip {
        let head = answer
            .gzip
            .get_or_try_init(|| {
                let head = answer.head.clone();
                async move {
                    tokio::task::spawn_blocking(move || GzipHead::of(&head).map(Arc::new))
                        .await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())
                }
            })
            .await;
        match head {
            Ok(head) => {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                Chunks::new([head.bytes.clone(), head.finish(now.as_bytes())])
            }
            Err(error) => {
                tracing::warn!(%error, "cannot compress the station list; sending it plain");
                Chunks::new([answer.head.clone(), Bytes::from(now)])
            }
        }
    } else {
        Chunks::new([answer.head.clone(), Bytes::from(now)])
    };
    if let Ok(value) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (headers, Body::new(body)).into_response()
}

/// Whether the client accepts gzip (`Accept-Encoding: gzip`, not with `q=0`).
fn accepts_gzip(asked: &HeaderMap) -> bool {
    asked
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut fields = coding.split(';');
            let name = fields.next().unwrap_or("").trim();
            let refused = fields.any(|f| {
                f.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// A body of a few chunks sent one after the other, with its length known: the kept bytes of
/// an answer are sent without being copied.
struct Chunks {
    chunks: VecDeque<Bytes>,
    len: u64,
}

impl Chunks {
    fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let len = chunks.iter().map(|c| c.len() as u64).sum();
        Self { chunks, len }
    }
}

impl HttpBody for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let chunk = self.chunks.pop_front();
        if let Some(chunk) = &chunk {
            self.len -= chunk.len() as u64;
        }
        Poll::Ready(chunk.map(|c| Ok(http_body::Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.len)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_gzip_form_is_the_head_and_the_time() {
        let head: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{{\"port\":{i},\"status\":\"free\"}},").into_bytes())
            .collect();
        let gzip = GzipHead::of(&head).unwrap();
        let tail = b"2026-12-07T03:26:32.123Z\"}";
        let mut whole = gzip.bytes.to_vec();
        whole.extend_from_slice(&gzip.finish(tail));
        assert!(
            whole.len() < head.len() / 4,
            "compressed to {}",
            whole.len()
        );
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&whole[..])
            .read_to_end(&mut plain)
            .unwrap();
        let mut expected = head.clone();
        expected.extend_from_slice(tail);
        assert_eq!(plain, expected);
        // An empty head too.
        let empty = GzipHead::of(b"").unwrap();
        let mut whole = empty.bytes.to_vec();
        whole.extend_from_slice(&empty.finish(tail));
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&whole[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, tail);
    }

    #[test]
    fn gzip_is_accepted_unless_refused() {
        let asked = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
            headers
        };
        assert!(accepts_gzip(&asked("gzip, deflate, br")));
        assert!(accepts_gzip(&asked("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&asked("*")));
        assert!(!accepts_gzip(&asked("gzip;q=0, br")));
        assert!(!accepts_gzip(&asked("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn questions_are_keyed_by_everything_they_ask() {
        let base = StationQuery::default();
        let other_page = StationQuery {
            offset: 200,
            ..StationQuery::default()
        };
        let searched = StationQuery {
            search: Some("Campus".into()),
            ..StationQuery::default()
        };
        let searched_lower = StationQuery {
            search: Some("campus".into()),
            ..StationQuery::default()
        };
        assert_ne!(key(&base, ListView::Full), key(&other_page, ListView::Full));
        assert_ne!(key(&base, ListView::Full), key(&base, ListView::Summary));
        assert_eq!(
            key(&searched, ListView::Full),
            key(&searched_lower, ListView::Full)
        );
    }
}
