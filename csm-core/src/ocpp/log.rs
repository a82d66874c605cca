//! Each charger's message log: the last frames in both directions, with csm's time, the
//! direction, the action and the frame, bounded in count and in bytes. Id tags and the
//! secret configuration key are masked as a frame is kept, so the log never holds them.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::command::{SECRET_KEY, SECRET_VARIABLE};

/// Frames kept per charger.
pub const MAX_FRAMES: usize = 200;
/// Bytes of frames kept per charger.
pub const MAX_BYTES: usize = 256 * 1024;
/// A longer frame is kept cut to this many bytes.
const MAX_FRAME_BYTES: usize = 16 * 1024;

pub use crate::model::ocpp::Direction;

/// One kept frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logged {
    /// Its number in this charger's log (increasing; a reader asks for those after one).
    pub seq: u64,
    /// When csm received or sent it.
    pub at: DateTime<Utc>,
    /// Which way it went.
    pub direction: Direction,
    /// The connection it went over.
    pub connection: u64,
    /// Its action: a call's, or for an answer the action of the call it answers.
    pub action: Option<String>,
    /// The frame as it went, with id tags and secrets masked (then re-written) and cut at
    /// 16 KiB.
    pub frame: String,
}

/// Frames of one charger waiting to be written to the database at most (older ones are dropped
/// while the database is away).
pub const MAX_UNSAVED: usize = 2_000;

/// Drops the oldest frames waiting for the database past [`MAX_UNSAVED`], counting them.
fn drop_oldest_unsaved(unsaved: &mut VecDeque<Logged>) {
    while unsaved.len() > MAX_UNSAVED {
        unsaved.pop_front();
        metrics::counter!("csm_ocpp_messages_unsaved_dropped_total").increment(1);
    }
}

/// One charger's log.
#[derive(Debug, Default)]
pub struct MessageLog {
    frames: VecDeque<Logged>,
    bytes: usize,
    next: u64,
    /// Frames not written to the database yet (kept only when the log is stored there).
    unsaved: Option<VecDeque<Logged>>,
}

impl MessageLog {
    /// A log whose frames are also kept for the database when `stored`.
    pub fn new(stored: bool) -> Self {
        Self {
            unsaved: stored.then(VecDeque::new),
            ..Self::default()
        }
    }

    /// The frames not written to the database yet, taken (oldest first).
    pub fn take_unsaved(&mut self) -> Vec<Logged> {
        self.unsaved
            .as_mut()
            .map(|unsaved| unsaved.drain(..).collect())
            .unwrap_or_default()
    }

    /// Puts back frames the database did not take, before any newer ones.
    pub fn put_back(&mut self, frames: Vec<Logged>) {
        if let Some(unsaved) = self.unsaved.as_mut() {
            for frame in frames.into_iter().rev() {
                unsaved.push_front(frame);
            }
            drop_oldest_unsaved(unsaved);
        }
    }

    /// Keeps a frame, dropping the oldest past [`MAX_FRAMES`] or [`MAX_BYTES`].
    pub fn push(
        &mut self,
        at: DateTime<Utc>,
        direction: Direction,
        connection: u64,
        action: Option<&str>,
        frame: &str,
    ) {
        let frame = if direction == Direction::Note {
            frame.to_owned()
        } else {
            masked(frame)
        };
        self.next += 1;
        self.bytes += frame.len();
        let logged = Logged {
            seq: self.next,
            at,
            direction,
            connection,
            action: action.map(str::to_owned),
            frame,
        };
        if let Some(unsaved) = self.unsaved.as_mut() {
            unsaved.push_back(logged.clone());
            drop_oldest_unsaved(unsaved);
        }
        self.frames.push_back(logged);
        while self.frames.len() > MAX_FRAMES || self.bytes > MAX_BYTES {
            let Some(old) = self.frames.pop_front() else {
                break;
            };
            self.bytes -= old.frame.len();
        }
    }

    /// The frames after number `after`, oldest first, at most `limit` (the newest ones).
    pub fn after(&self, after: u64, limit: usize) -> Vec<Logged> {
        let newer = self.frames.iter().filter(|f| f.seq > after);
        let count = newer.clone().count();
        newer.skip(count.saturating_sub(limit)).cloned().collect()
    }
}

/// The frame with id tags and the secret key masked, cut at [`MAX_FRAME_BYTES`].
fn masked(frame: &str) -> String {
    // Most frames hold nothing to mask: those are kept as they came, unparsed.
    let secret = [
        "idTag",
        "IdTag",
        "idToken",
        "uthorization",
        "UTHORIZATION",
        SECRET_VARIABLE,
    ]
    .iter()
    .any(|name| frame.contains(name));
    let reparsed = secret
        .then(|| serde_json::from_str::<Value>(frame).ok())
        .flatten()
        .and_then(|mut value| mask(&mut value, false).then(|| value.to_string()));
    let text = reparsed.unwrap_or_else(|| frame.to_owned());
    if text.len() <= MAX_FRAME_BYTES {
        return text;
    }
    let mut end = MAX_FRAME_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// Masks id tags (`idTag`, `parentIdTag`, 2.0.1's `idToken`), the value of 1.6's secret key
/// and of 2.0.1's secret variable wherever they are; `true` when something was masked.
fn mask(value: &mut Value, secret_here: bool) -> bool {
    match value {
        Value::Array(items) => items.iter_mut().fold(false, |m, v| mask(v, false) | m),
        Value::Object(fields) => {
            let secret = secret_here
                || fields
                    .get("key")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.eq_ignore_ascii_case(SECRET_KEY))
                || fields
                    .get("variable")
                    .and_then(|v| v.get("name"))
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case(SECRET_VARIABLE));
            let mut masked = false;
            for (name, field) in fields.iter_mut() {
                let tag = matches!(name.as_str(), "idTag" | "parentIdTag" | "idToken");
                let secret_value = secret && matches!(name.as_str(), "value" | "attributeValue");
                match field {
                    Value::String(text) if tag || secret_value => {
                        *text = if secret_value {
                            "…".into()
                        } else {
                            hidden(text)
                        };
                        masked = true;
                    }
                    _ => masked |= mask(field, false),
                }
            }
            masked
        }
        _ => false,
    }
}

/// What is shown of an id tag: the first two characters of a long one, then `…`.
fn hidden(text: &str) -> String {
    let shown: String = if text.chars().count() >= 8 {
        text.chars().take(2).collect()
    } else {
        String::new()
    };
    format!("{shown}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_tags_and_the_secret_key_are_never_kept_in_full() {
        let mut log = MessageLog::default();
        let at = Utc::now();
        log.push(
            at,
            Direction::In,
            1,
            Some("Authorize"),
            r#"[2,"1","Authorize",{"idTag":"RFID-04A1B2C3"}]"#,
        );
        log.push(
            at,
            Direction::Out,
            1,
            Some("ChangeConfiguration"),
            r#"[2,"c1","ChangeConfiguration",{"key":"AuthorizationKey","value":"0123456789abcdef"}]"#,
        );
        log.push(
            at,
            Direction::In,
            1,
            Some("StartTransaction"),
            r#"[3,"2",{"idTagInfo":{"status":"Accepted","parentIdTag":"TAG"}}]"#,
        );
        log.push(at, Direction::In, 1, None, "not json {idTag}");
        log.push(
            at,
            Direction::Out,
            1,
            Some("SetVariables"),
            r#"[2,"c2","SetVariables",{"setVariableData":[{"component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"},"attributeValue":"s3cret-of-twenty-chars"}]}]"#,
        );
        log.push(
            at,
            Direction::In,
            1,
            Some("TransactionEvent"),
            r#"[2,"t1","TransactionEvent",{"idToken":{"idToken":"RFID-99887766","type":"ISO14443"}}]"#,
        );
        let kept = log.after(0, 10);
        assert!(
            kept[4].frame.contains(r#""attributeValue":"…""#),
            "{}",
            kept[4].frame
        );
        assert!(
            kept[5].frame.contains(r#""idToken":"RF…""#),
            "{}",
            kept[5].frame
        );
        assert!(
            kept.iter()
                .all(|f| !f.frame.contains("twenty") && !f.frame.contains("99887766"))
        );
        assert_eq!(kept[0].frame, r#"[2,"1","Authorize",{"idTag":"RF…"}]"#);
        assert!(
            kept[1].frame.contains(r#""value":"…""#),
            "{}",
            kept[1].frame
        );
        assert!(
            kept[2].frame.contains(r#""parentIdTag":"…""#),
            "{}",
            kept[2].frame
        );
        assert_eq!(kept[3].frame, "not json {idTag}");
        assert!(
            kept.iter()
                .all(|f| !f.frame.contains("04A1B2C3") && !f.frame.contains("abcdef"))
        );
    }

    #[test]
    fn the_log_keeps_the_newest_frames_within_its_count_and_bytes() {
        let mut log = MessageLog::default();
        let at = Utc::now();
        for n in 0..MAX_FRAMES + 50 {
            log.push(
                at,
                Direction::In,
                1,
                Some("Heartbeat"),
                &format!(r#"[2,"{n}","Heartbeat",{{}}]"#),
            );
        }
        let kept = log.after(0, usize::MAX);
        assert_eq!(kept.len(), MAX_FRAMES);
        assert_eq!(kept.last().map(|f| f.seq), Some((MAX_FRAMES + 50) as u64));
        assert_eq!(log.after(kept[kept.len() - 3].seq, 10).len(), 2);
        assert_eq!(
            log.after(0, 5).first().map(|f| f.seq),
            Some((MAX_FRAMES + 46) as u64)
        );
        let big = format!(
            r#"[2,"x","DataTransfer",{{"data":"{}"}}]"#,
            "a".repeat(60_000)
        );
        for _ in 0..40 {
            log.push(at, Direction::In, 1, Some("DataTransfer"), &big);
        }
        assert!(log.bytes <= MAX_BYTES, "{} bytes kept", log.bytes);
        let last = log.after(0, 1).pop().unwrap();
        assert!(last.frame.len() < MAX_FRAME_BYTES + 32 && last.frame.ends_with(" bytes)"));
    }
}
