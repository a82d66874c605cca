//! Conditional requests: every successful `GET` answer carries a strong `ETag` made from its
//! content, and a client that sends the tag back in `If-None-Match` gets `304 Not Modified`
//! without a body for as long as the content is the same.
//!
//! The tag of a JSON document leaves out the document's own `timestamp` (when it was answered,
//! the last field of the station answers): an answer made a second later with the same stations
//! and ports has the same tag. A compressed answer's tag ends in the coding (`"…-gzip"`), as the
//! compressed bytes differ from the plain ones; a client's tag is matched with or without it.
//!
//! Answers may be reused only after asking (`Cache-Control: no-cache`): the state of a port can
//! change at any moment, and a `304` costs the server a few microseconds.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// How long a client may reuse an answer without asking: not at all, but it may ask with the
/// answer's tag.
pub const CACHE_CONTROL: HeaderValue = HeaderValue::from_static("no-cache");

/// The codings a tag may end in, as written in `Content-Encoding`.
const CODINGS: [&str; 3] = ["gzip", "br", "zstd"];

/// The strong tag of some content: 128 bits of its xxh3 hash.
pub fn tag_of(content: &[u8]) -> String {
    format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(content))
}

/// The tag of the same content compressed with `coding`.
pub fn coded_tag(tag: &str, coding: &str) -> String {
    format!("{}-{coding}\"", tag.trim_end_matches('"'))
}

/// A JSON document without its own trailing `"timestamp":"…"` field: the part its tag is made
/// of. Other documents are returned whole.
pub fn content_of(body: &[u8]) -> &[u8] {
    const FIELD: &[u8] = b"\"timestamp\":\"";
    // `"timestamp":"` + at most 35 characters of an RFC 3339 time + `"}`.
    let window = body.len().saturating_sub(FIELD.len() + 37);
    if !body.ends_with(b"\"}") {
        return body;
    }
    match body[window..]
        .windows(FIELD.len())
        .rposition(|w| w == FIELD)
    {
        Some(at) => &body[..window + at],
        None => body,
    }
}

/// What an answer's tag is made of, when not all of its bytes: set by a handler whose document
/// echoes a range that ends now (`"to"`), which is the question, not the content.
#[derive(Clone, Debug)]
pub struct TagContent(pub String);

/// The [`TagContent`] of a document without some of its top-level fields.
pub fn content_without(document: &impl serde::Serialize, fields: &[&str]) -> TagContent {
    let mut value = serde_json::to_value(document).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        for field in fields {
            object.remove(*field);
        }
    }
    TagContent(value.to_string())
}

/// A JSON answer tagged by `document` without the range it echoes (`from` and `to`, derived
/// from the question and the time now).
pub fn json_without_range(document: &impl serde::Serialize) -> Response {
    let content = content_without(document, &["from", "to"]);
    let mut response = axum::Json(document).into_response();
    response.extensions_mut().insert(content);
    response
}

/// A time as HTTP writes it (`Sun, 06 Nov 1994 08:49:37 GMT`), for `Last-Modified`: when
/// the stations of an answer were last checked. It is informative; `If-Modified-Since` is not
/// answered with `304`, as an answer can change without a new check (a reading grows stale).
pub fn http_date(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Whether the request's `If-None-Match` names `tag` (or `*`), compared weakly as RFC 9110
/// asks of this header: `W/` and a coding at the end are ignored.
pub fn matches(request: &HeaderMap, tag: &str) -> bool {
    let bare = |t: &str| -> String {
        let t = t.trim().trim_start_matches("W/").trim_matches('"');
        let coded = CODINGS.iter().find_map(|coding| {
            t.strip_suffix(coding)
                .and_then(|rest| rest.strip_suffix('-'))
        });
        coded.unwrap_or(t).to_owned()
    };
    let wanted = bare(tag);
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|candidate| candidate.trim() == "*" || bare(candidate) == wanted)
}

/// `304 Not Modified` for `tag`, with the headers a `200` would have had that describe it.
pub fn not_modified(tag: &str, answered: &HeaderMap) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    let headers = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, tag);
    }
    for name in [header::CACHE_CONTROL, header::VARY, header::LAST_MODIFIED] {
        for value in answered.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    response
}

/// Tags every successful `GET` answer held in memory (not the event stream), and answers
/// `304` when the client has it already. Runs inside compression, on the plain bytes; answers
/// that carry their own tag pass through.
pub async fn tag_answers(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    // Only the client's tags are needed afterwards, not all its headers.
    let mut asked = HeaderMap::new();
    for tag in request.headers().get_all(header::IF_NONE_MATCH) {
        asked.append(header::IF_NONE_MATCH, tag.clone());
    }
    let response = next.run(request).await;
    if !(method == Method::GET || method == Method::HEAD)
        || response.status() != StatusCode::OK
        || response.headers().contains_key(header::ETAG)
        || response.headers().contains_key(header::CONTENT_ENCODING)
        || response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"))
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(%error, "an answer's body failed while it was read for its tag");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let tag = match parts.extensions.get::<TagContent>() {
        Some(TagContent(content)) => tag_of(content.as_bytes()),
        None => tag_of(content_of(&bytes)),
    };
    parts
        .headers
        .entry(header::CACHE_CONTROL)
        .or_insert(CACHE_CONTROL);
    if matches(&asked, &tag) {
        return not_modified(&tag, &parts.headers);
    }
    if let Ok(value) = HeaderValue::from_str(&tag) {
        parts.headers.insert(header::ETAG, value);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Makes the tag of an answer compressed on its way out name the coding (runs outside
/// compression).
pub async fn tag_codings(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let (Some(coding), Some(tag)) = (
        headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok()),
        headers.get(header::ETAG).and_then(|v| v.to_str().ok()),
    ) else {
        return response;
    };
    if tag.starts_with("W/") || tag.ends_with(&format!("-{coding}\"")) {
        return response;
    }
    if let Ok(value) = HeaderValue::from_str(&coded_tag(tag, coding)) {
        headers.insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answers_own_time_is_not_content() {
        let at = br#"{"station_id":"S1","timestamp":"2026-12-07T03:26:32.123Z","ports":[],"timestamp":"2026-12-07T03:26:32.123456789Z"}"#;
        let later = br#"{"station_id":"S1","timestamp":"2026-12-07T03:26:32.123Z","ports":[],"timestamp":"2026-12-07T03:27:00Z"}"#;
        assert_eq!(tag_of(content_of(at)), tag_of(content_of(later)));
        // A port's own timestamp in the middle is content.
        let port_later = br#"{"station_id":"S1","timestamp":"2026-12-07T03:26:33Z","ports":[],"timestamp":"2026-12-07T03:27:00Z"}"#;
        assert_ne!(tag_of(content_of(at)), tag_of(content_of(port_later)));
        // Without a trailing timestamp, all of it counts.
        assert_eq!(content_of(b"[1,2]"), b"[1,2]");
        assert_eq!(content_of(br#"{"a":"b"}"#), br#"{"a":"b"}"#);
    }

    #[test]
    fn tags_match_weakly_with_or_without_the_coding() {
        let tag = tag_of(b"x");
        let asked = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert!(matches(&asked(&tag), &tag));
        assert!(matches(&asked(&coded_tag(&tag, "gzip")), &tag));
        assert!(matches(&asked(&format!("W/{tag}")), &tag));
        assert!(matches(&asked(&format!("\"other\", {tag}")), &tag));
        assert!(matches(&asked("*"), &tag));
        assert!(!matches(&asked(&tag_of(b"y")), &tag));
        assert!(!matches(&HeaderMap::new(), &tag));
        assert_eq!(coded_tag("\"ab\"", "gzip"), "\"ab-gzip\"");
    }
}
