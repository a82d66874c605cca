//! The change feed: every change of every station of the fleet, each once, in order for each
//! station, with an id a client can resume from, and the announcements that another instance
//! changed the station list or the alert rules.
//!
//! Alone, the feed is this process's own changes, numbered as they come. In a cluster each
//! instance appends the changes of the stations it refreshes to one Redis stream (capped near
//! [`WINDOW_CHANGES`] entries), and every instance reads that stream: what its live clients
//! see is the whole fleet's, in the stream's one order, with the stream's ids. While Redis is
//! away, an instance's own changes still reach its own clients, with ids of its own.
//!
//! Each instance keeps the last [`WINDOW_CHANGES`] changes (no older than [`WINDOW_AGE`]), so a
//! client that reconnects with the id of the last change it saw gets what it missed; past
//! that window it is told to reload ([`Resume::Reset`]).

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::cache::{decode, encode};
use crate::model::StatusEvent;
use crate::redis_link::{RedisLink, Timeouts};
use crate::refresh::StationUpdate;

/// Changes kept for clients that reconnect.
pub const WINDOW_CHANGES: usize = 10_000;
/// The oldest change kept for clients that reconnect.
pub const WINDOW_AGE: Duration = Duration::from_secs(300);

/// How long one read of the stream waits for new entries.
const READ_BLOCK: Duration = Duration::from_millis(500);
/// Most entries taken in one read.
const READ_COUNT: usize = 1000;
/// How long the reader lets entries gather after a read that brought some: a read costs an
/// instance about as much as the few entries it carries, and every instance reads every
/// change of the fleet, so a change that follows another within this pause reaches clients
/// up to this much later, in one read with the others.
const READ_PAUSE: Duration = Duration::from_millis(25);

/// The id of a change: milliseconds and a sequence number within them, written `ms-seq` (a
/// Redis stream id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    /// Milliseconds since the Unix epoch.
    pub ms: u64,
    /// Order within the millisecond.
    pub seq: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for EventId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (ms, seq) = text.split_once('-').unwrap_or((text, "0"));
        // Digits only, at most 19 of them (any such number fits 64 bits).
        let number = |part: &str| {
            (!part.is_empty() && part.len() <= 19 && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u64>().ok())
                .flatten()
        };
        match (number(ms), number(seq)) {
            (Some(ms), Some(seq)) => Ok(Self { ms, seq }),
            _ => Err(format!(
                "{text:?} is not an event id: the id of an event of this stream is two numbers of at most 19 digits joined by '-'"
            )),
        }
    }
}

/// One change of the fleet.
#[derive(Clone, Debug)]
pub struct Change {
    /// Its id.
    pub id: EventId,
    body: Body,
}

/// What changed: an instance's own change as made, another's as read from the stream, worked
/// out when first asked for (every instance reads every change, most often only to count it).
#[derive(Clone, Debug)]
enum Body {
    Made(Arc<StationUpdate>),
    Packed {
        bytes: Box<[u8]>,
        read: OnceLock<Option<Arc<StationUpdate>>>,
    },
}

impl Change {
    /// A change and its id.
    pub fn new(id: EventId, update: Arc<StationUpdate>) -> Self {
        Self {
            id,
            body: Body::Made(update),
        }
    }

    /// What changed; `None` when the stream's entry cannot be read (damaged, or written by a
    /// version of csm that packs changes otherwise).
    pub fn update(&self) -> Option<&Arc<StationUpdate>> {
        match &self.body {
            Body::Made(update) => Some(update),
            Body::Packed { bytes, read } => {
                read.get_or_init(|| unpack(bytes).map(Arc::new)).as_ref()
            }
        }
    }
}

/// Something changed that every instance must read again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// The station list (stations added, changed or removed).
    Catalog,
    /// The alert rules.
    Rules,
}

impl Announcement {
    fn as_str(self) -> &'static str {
        match self {
            Announcement::Catalog => "catalog",
            Announcement::Rules => "rules",
        }
    }
}

/// What a client that reconnects gets.
#[derive(Debug)]
pub enum Resume {
    /// The changes after the one it saw, oldest first.
    Changes(Vec<Arc<Change>>),
    /// Its change is out of the window (or unknown): it must read everything again.
    Reset(String),
}

/// The Redis side of a shared feed: one connection that appends, one that reads (a blocking
/// read holds its connection).
struct Shared {
    appender: RedisLink,
    reader: RedisLink,
    key: String,
    target: String,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("key", &self.key)
            .field("target", &self.target)
            .finish()
    }
}

#[derive(Debug)]
struct Inner {
    shared: Option<Shared>,
    changes: broadcast::Sender<Arc<Change>>,
    announcements: broadcast::Sender<Announcement>,
    /// The last changes, oldest first.
    window: Mutex<VecDeque<Arc<Change>>>,
    /// The last id this instance gave a change of its own.
    last_own: Mutex<EventId>,
    published: AtomicU64,
    /// Whether the stream is read (alone: always).
    reading: tokio::sync::watch::Sender<bool>,
}

/// The change feed. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Feed {
    inner: Arc<Inner>,
}

/// Whether an engine update is a change clients see (not an observation made only for alert
/// rules that watch every reading).
fn shows(update: &StationUpdate) -> bool {
    !update.events.is_empty() || update.health_changed
}

impl Feed {
    fn with(shared: Option<Shared>) -> Self {
        let alone = shared.is_none();
        Self {
            inner: Arc::new(Inner {
                shared,
                changes: broadcast::channel(4096).0,
                announcements: broadcast::channel(64).0,
                window: Mutex::new(VecDeque::new()),
                last_own: Mutex::new(EventId { ms: 0, seq: 0 }),
                published: AtomicU64::new(0),
                reading: tokio::sync::watch::Sender::new(alone),
            }),
        }
    }

    /// This process's own changes only.
    pub fn local() -> Self {
        Self::with(None)
    }

    /// The changes of every instance on the Redis at `url` with cache prefix `prefix`. Nothing
    /// is connected until the first use.
    pub fn shared(url: &str, prefix: &str) -> Result<Self, String> {
        let timeouts = Timeouts {
            response: READ_BLOCK + Duration::from_secs(1),
            ..Timeouts::SHORT
        };
        let appender = RedisLink::open(url, timeouts)?;
        let reader = RedisLink::open(url, timeouts)?;
        let target = appender.target().to_owned();
        Ok(Self::with(Some(Shared {
            appender,
            reader,
            key: format!("{prefix}changes"),
            target,
        })))
    }

    /// Changes as they come.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.inner.changes.subscribe()
    }

    /// Announcements as they come (also this instance's own).
    pub fn announcements(&self) -> broadcast::Receiver<Announcement> {
        self.inner.announcements.subscribe()
    }

    /// Waits until the stream is read: every change appended from then on reaches this
    /// instance's subscribers (alone: at once).
    pub async fn reading(&self) {
        let _ = self.inner.reading.subscribe().wait_for(|r| *r).await;
    }

    /// Changes this instance appended (or, alone, made) since start.
    pub fn published(&self) -> u64 {
        self.inner.published.load(Ordering::Relaxed)
    }

    /// Tells every instance (this one too) that `what` changed.
    pub async fn announce(&self, what: Announcement) {
        if let Some(shared) = &self.inner.shared {
            let mut connection = shared.appender.clone();
            let appended: redis::RedisResult<String> = redis::cmd("XADD")
                .arg(&shared.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(WINDOW_CHANGES)
                .arg("*")
                .arg("a")
                .arg(what.as_str())
                .query_async(&mut connection)
                .await;
            match appended {
                // Every instance hears it from the stream, this one too.
                Ok(_) => return,
                Err(error) => tracing::warn!(
                    %error,
                    announcement = what.as_str(),
                    "cannot tell the other instances; they see the change at their next check"
                ),
            }
        }
        let _ = self.inner.announcements.send(what);
    }

    /// The changes after `after`, or a reset when they are no longer all known.
    pub async fn since(&self, after: EventId) -> Resume {
        let oldest = now_ms().saturating_sub(WINDOW_AGE.as_millis() as u64);
        if after.ms < oldest {
            return Resume::Reset(format!(
                "event {after} is older than the {} s this stream keeps",
                WINDOW_AGE.as_secs()
            ));
        }
        {
            let window = self.inner.window.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(at) = window.iter().position(|c| c.id == after) {
                return Resume::Changes(window.iter().skip(at + 1).cloned().collect());
            }
            if window.front().is_some_and(|first| first.id < after)
                && window.back().is_some_and(|last| last.id >= after)
            {
                // Inside the window but not one of its ids: not an event of this stream.
                return Resume::Reset(format!("event {after} is not one this stream sent"));
            }
        }
        match &self.inner.shared {
            Some(shared) => shared.range_after(after).await,
            None => Resume::Reset(format!(
                "event {after} is not among the last {WINDOW_CHANGES} this server keeps"
            )),
        }
    }

    /// Feeds the changes of `updates` (this instance's engine) into the feed, and in a
    /// cluster reads every instance's, until `cancel` fires.
    pub async fn run(
        &self,
        mut updates: broadcast::Receiver<Arc<StationUpdate>>,
        cancel: CancellationToken,
    ) {
        let reading = self.inner.shared.as_ref().map(|_| {
            let (feed, cancel) = (self.clone(), cancel.clone());
            tokio::spawn(async move { feed.read_stream(cancel).await })
        });
        loop {
            let update = tokio::select! {
                () = cancel.cancelled() => break,
                update = updates.recv() => update,
            };
            match update {
                Ok(update) if shows(&update) => self.publish(update).await,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "the change feed fell behind the refresh engine");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        if let Some(reading) = reading {
            let _ = reading.await;
        }
    }

    /// Appends one of this instance's changes (to the stream, or to its own clients).
    async fn publish(&self, update: Arc<StationUpdate>) {
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        if let Some(shared) = &self.inner.shared {
            match shared.append(&update).await {
                Ok(()) => return,
                Err(error) => tracing::debug!(
                    %error,
                    "cannot append a change to the feed; telling this instance's clients only"
                ),
            }
        }
        let id = self.own_id();
        self.deliver(Arc::new(Change::new(id, update)));
    }

    /// A new id for a change of this instance's own: after every id it gave before.
    fn own_id(&self) -> EventId {
        let mut last = self
            .inner
            .last_own
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let ms = now_ms();
        *last = if ms > last.ms {
            EventId { ms, seq: 0 }
        } else {
            EventId {
                ms: last.ms,
                seq: last.seq + 1,
            }
        };
        *last
    }

    /// Keeps a change in the window and hands it to the subscribers.
    fn deliver(&self, change: Arc<Change>) {
        {
            let mut window = self.inner.window.lock().unwrap_or_else(|p| p.into_inner());
            window.push_back(Arc::clone(&change));
            let oldest = now_ms().saturating_sub(WINDOW_AGE.as_millis() as u64);
            while window.len() > WINDOW_CHANGES
                || window.front().is_some_and(|first| first.id.ms < oldest)
            {
                window.pop_front();
            }
        }
        let _ = self.inner.changes.send(change);
    }

    /// Reads the stream from now on until `cancel` fires, through Redis's absences.
    async fn read_stream(&self, cancel: CancellationToken) {
        let Some(shared) = &self.inner.shared else {
            return;
        };
        // From the stream's last entry at start: what is appended later is read, whenever the
        // first read comes.
        let mut last: Option<String> = None;
        let mut failing = false;
        loop {
            let read = tokio::select! {
                () = cancel.cancelled() => return,
                read = async {
                    if last.is_none() {
                        last = Some(shared.last_id().await?);
                        self.inner.reading.send_replace(true);
                    }
                    shared.read_after(last.as_deref()).await
                } => read,
            };
            match read {
                Ok(entries) => {
                    if failing {
                        tracing::info!("the change feed reads Redis again");
                        failing = false;
                    }
                    let gather = !entries.is_empty() && entries.len() < READ_COUNT;
                    for (id, entry) in entries {
                        last = Some(id.clone());
                        match entry {
                            Entry::Change(body) => {
                                let Ok(id) = id.parse() else { continue };
                                self.deliver(Arc::new(Change { id, body }));
                            }
                            Entry::Announcement(what) => {
                                let _ = self.inner.announcements.send(what);
                            }
                            Entry::Unreadable => {}
                        }
                    }
                    if gather {
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            () = tokio::time::sleep(READ_PAUSE) => {}
                        }
                    }
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "cannot read the change feed; this instance's clients see its own changes meanwhile");
                        failing = true;
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(READ_BLOCK) => {}
                    }
                }
            }
        }
    }
}

/// One entry of the stream.
enum Entry {
    Change(Body),
    Announcement(Announcement),
    /// Written by a version of csm that wrote something else.
    Unreadable,
}

impl Shared {
    async fn append(&self, update: &StationUpdate) -> Result<(), redis::RedisError> {
        let mut connection = self.appender.clone();
        let _: String = redis::cmd("XADD")
            .arg(&self.key)
            .arg("MAXLEN")
            .arg("~")
            .arg(WINDOW_CHANGES)
            .arg("*")
            .arg("c")
            .arg(pack(update))
            .query_async(&mut connection)
            .await?;
        Ok(())
    }

    /// The id of the stream's last entry (`0-0` when it has none).
    async fn last_id(&self) -> Result<String, String> {
        let mut connection = self.reader.clone();
        let reply: redis::RedisResult<redis::Value> = redis::cmd("XREVRANGE")
            .arg(&self.key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut connection)
            .await;
        let reply = reply.map_err(|e| format!("Redis at {}: {e}", self.target))?;
        Ok(entries_of_range(reply)
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |(id, _)| id))
    }

    /// The entries after `last` (`None`: from now on), waiting up to [`READ_BLOCK`] for some.
    async fn read_after(&self, last: Option<&str>) -> Result<Vec<(String, Entry)>, String> {
        let mut connection = self.reader.clone();
        let reply: redis::RedisResult<redis::Value> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(last.unwrap_or("$"))
            .query_async(&mut connection)
            .await;
        let reply = reply.map_err(|e| format!("Redis at {}: {e}", self.target))?;
        Ok(entries_of_read(reply))
    }

    /// The changes after `after` still in the stream, or a reset when some may be gone.
    async fn range_after(&self, after: EventId) -> Resume {
        let mut connection = self.appender.clone();
        let first: redis::RedisResult<redis::Value> = redis::cmd("XRANGE")
            .arg(&self.key)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut connection)
            .await;
        let first = match first {
            Ok(value) => entries_of_range(value),
            Err(error) => return Resume::Reset(format!("the change feed cannot be read: {error}")),
        };
        match first.first().and_then(|(id, _)| id.parse::<EventId>().ok()) {
            Some(first) if first <= after => {}
            _ => {
                return Resume::Reset(format!(
                    "event {after} is no longer among the changes this stream keeps"
                ));
            }
        }
        let range: redis::RedisResult<redis::Value> = redis::cmd("XRANGE")
            .arg(&self.key)
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(WINDOW_CHANGES + 1)
            .query_async(&mut connection)
            .await;
        match range {
            Ok(value) => Resume::Changes(
                entries_of_range(value)
                    .into_iter()
                    .filter_map(|(id, entry)| match entry {
                        Entry::Change(body) => Some(Arc::new(Change {
                            id: id.parse().ok()?,
                            body,
                        })),
                        _ => None,
                    })
                    .collect(),
            ),
            Err(error) => Resume::Reset(format!("the change feed cannot be read: {error}")),
        }
    }
}

/// The entries of an `XREAD` reply of one stream.
fn entries_of_read(reply: redis::Value) -> Vec<(String, Entry)> {
    // [[key, [[id, [field, value, …]], …]]], or nil when nothing came.
    let streams = match reply {
        redis::Value::Array(streams) => streams,
        redis::Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
        _ => return Vec::new(),
    };
    streams
        .into_iter()
        .flat_map(|stream| match stream {
            redis::Value::Array(mut pair) if pair.len() == 2 => entries_of_range(pair.remove(1)),
            other => entries_of_range(other),
        })
        .collect()
}

/// The entries of an `XRANGE` reply: `[[id, [field, value, …]], …]`.
fn entries_of_range(reply: redis::Value) -> Vec<(String, Entry)> {
    let redis::Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let redis::Value::Array(mut parts) = entry else {
                return None;
            };
            if parts.len() != 2 {
                return None;
            }
            let fields = parts.pop()?;
            let id: String = redis::from_redis_value(parts.pop()?).ok()?;
            let fields: Vec<Vec<u8>> = redis::from_redis_value(fields).ok()?;
            Some((id, entry_of(&fields)))
        })
        .collect()
}

/// An entry from its fields.
fn entry_of(fields: &[Vec<u8>]) -> Entry {
    let field = |name: &[u8]| {
        fields
            .chunks(2)
            .find(|pair| pair.first().map(Vec::as_slice) == Some(name))
            .and_then(|pair| pair.get(1))
    };
    if let Some(what) = field(b"a") {
        return match what.as_slice() {
            b"catalog" => Entry::Announcement(Announcement::Catalog),
            b"rules" => Entry::Announcement(Announcement::Rules),
            _ => Entry::Unreadable,
        };
    }
    if let Some(packed) = field(b"c") {
        return Entry::Change(Body::Packed {
            bytes: packed.as_slice().into(),
            read: OnceLock::new(),
        });
    }
    // Fields apart, as an earlier version wrote them (read during a rolling upgrade).
    let state = field(b"s").and_then(|bytes| decode(bytes));
    let events =
        field(b"e").and_then(|bytes| serde_json::from_slice::<Vec<StatusEvent>>(bytes).ok());
    match (state, events) {
        (Some(state), Some(events)) => Entry::Change(Body::Made(Arc::new(StationUpdate {
            state: Arc::new(state),
            events,
            health_changed: field(b"h").is_some_and(|h| h.as_slice() == b"1"),
        }))),
        _ => Entry::Unreadable,
    }
}

/// A change as one value of its stream entry: whether the station's health changed (a byte),
/// the state's length (u32, little-endian), the state ([`encode`]), then the events (JSON).
/// Every instance reads every entry, and Redis's client spends far more on each value of a
/// reply than on its bytes: one value, not three fields, keeps that reading cheap.
fn pack(update: &StationUpdate) -> Vec<u8> {
    let state = encode(&update.state);
    let mut packed = Vec::with_capacity(5 + state.len() + 64 * update.events.len());
    packed.push(u8::from(update.health_changed));
    packed.extend_from_slice(&(state.len() as u32).to_le_bytes());
    packed.extend_from_slice(&state);
    // Writing plain data to a Vec does not fail.
    let _ = serde_json::to_writer(&mut packed, &update.events);
    packed
}

/// The change [`pack`] wrote, or `None` when `packed` is not one.
fn unpack(packed: &[u8]) -> Option<StationUpdate> {
    let (&health, rest) = packed.split_first()?;
    let (length, rest) = rest.split_first_chunk::<4>()?;
    let (state, events) = rest.split_at_checked(u32::from_le_bytes(*length) as usize)?;
    Some(StationUpdate {
        state: Arc::new(decode(state)?),
        events: serde_json::from_slice(events).ok()?,
        health_changed: match health {
            0 => false,
            1 => true,
            _ => return None,
        },
    })
}

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_read_back_and_order_as_the_stream_does() {
        let id: EventId = "1733500000000-7".parse().unwrap();
        assert_eq!(id.to_string(), "1733500000000-7");
        assert!(id < "1733500000000-8".parse().unwrap());
        assert!(id < "1733500000001-0".parse().unwrap());
        assert_eq!("1733500000000".parse::<EventId>().unwrap().seq, 0);
        assert!("x-1".parse::<EventId>().is_err());
        assert!("".parse::<EventId>().is_err());
        // At most 19 digits a number (what the API's schema says), no sign.
        assert!(
            "9999999999999999999-9999999999999999999"
                .parse::<EventId>()
                .is_ok()
        );
        assert!("87860-42772024046608090632".parse::<EventId>().is_err());
        assert!("00000000000000000000-1".parse::<EventId>().is_err());
        assert!("+5-1".parse::<EventId>().is_err());
    }

    fn update(id: &str) -> Arc<StationUpdate> {
        let state = crate::model::StationState {
            station_id: crate::model::StationId::parse(id).unwrap(),
            observed_at: None,
            checked_at: chrono::Utc::now(),
            last_error: Some("unreachable".into()),
            failures: 1,
            ports: Vec::new(),
            counted_from: None,
        };
        Arc::new(StationUpdate {
            state: Arc::new(state),
            events: Vec::new(),
            health_changed: true,
        })
    }

    #[test]
    fn a_change_reads_back_from_its_entry_and_a_damaged_one_is_unreadable() {
        use crate::model::{PortReading, PortState, PortStatus, StatusEvent};
        let at = chrono::DateTime::from_timestamp_micros(1_765_000_000_123_456).unwrap();
        let mut state = (*update("S1").state).clone();
        state.checked_at = at;
        state.ports = vec![PortState {
            reading: PortReading {
                voltage: Some(219.5),
                raw_code: Some("充电中".into()),
                ..PortReading::status_only(1, PortStatus::Occupied)
            },
            since: at,
        }];
        let events = vec![StatusEvent {
            station_id: state.station_id.clone(),
            port: 1,
            old: Some(PortStatus::Free),
            new: PortStatus::Occupied,
            at,
        }];
        let change = StationUpdate {
            state: Arc::new(state),
            events,
            health_changed: false,
        };
        let packed = pack(&change);
        let read_back = |value: &[u8]| {
            let Entry::Change(body) = entry_of(&[b"c".to_vec(), value.to_vec()]) else {
                panic!("a packed change is a change");
            };
            let change = Change {
                id: EventId { ms: 1, seq: 0 },
                body,
            };
            change.update().cloned()
        };
        let read = read_back(&packed).expect("a packed change reads back");
        assert_eq!(read.state, change.state);
        assert_eq!(read.events, change.events);
        assert!(!read.health_changed);
        for damaged in [
            &packed[..3],
            &packed[..packed.len() - 1],
            &[9, 0, 0, 0, 0][..],
        ] {
            assert!(read_back(damaged).is_none());
        }
        // The fields of an earlier version still read.
        let earlier = vec![
            b"s".to_vec(),
            encode(&change.state),
            b"e".to_vec(),
            serde_json::to_vec(&change.events).unwrap(),
            b"h".to_vec(),
            b"1".to_vec(),
        ];
        let Entry::Change(Body::Made(read)) = entry_of(&earlier) else {
            panic!("an earlier entry reads");
        };
        assert_eq!(
            (read.state.as_ref(), read.health_changed),
            (change.state.as_ref(), true)
        );
    }

    #[tokio::test]
    async fn alone_a_client_resumes_after_the_change_it_saw_and_is_reset_outside_the_window() {
        let feed = Feed::local();
        for station in ["A", "B", "C"] {
            feed.publish(update(station)).await;
        }
        let window: Vec<EventId> = feed
            .inner
            .window
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect();
        assert!(window.windows(2).all(|w| w[0] < w[1]), "{window:?}");
        match feed.since(window[0]).await {
            Resume::Changes(changes) => {
                let ids: Vec<&str> = changes
                    .iter()
                    .map(|c| c.update().unwrap().state.station_id.as_str())
                    .collect();
                assert_eq!(ids, ["B", "C"]);
            }
            Resume::Reset(why) => panic!("reset: {why}"),
        }
        match feed.since(window[2]).await {
            Resume::Changes(changes) => assert!(changes.is_empty()),
            Resume::Reset(why) => panic!("reset: {why}"),
        }
        assert!(matches!(
            feed.since(EventId { ms: 1, seq: 0 }).await,
            Resume::Reset(_)
        ));
    }
}
