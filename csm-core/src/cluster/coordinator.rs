//! The cluster's state in Redis, read and changed by one script call at a time.
//!
//! Every key shares one hash tag (`{<prefix>cluster}`), so every script also runs on a Redis
//! Cluster, where a script may only touch keys of one hash slot.
//!
//! - `…:members`: a sorted set of instance ids, scored by their last heartbeat in Redis's own
//!   milliseconds (so instances' clocks never disagree about who is alive);
//! - `…:joined`: a hash of instance id → when it joined;
//! - `…:instance:<id>`: what the instance says of itself (JSON), expiring with its heartbeat;
//! - `…:slot:<n>`: the lease of slot n, whose value is the holder's token, set only when absent
//!   and renewed or released only by a script that compares the token first;
//! - `…:charger:<id>`: the instance whose connection serves OCPP charger `id` and the
//!   generation of that connection (`<instance> <generation>`; `…:charger-gen:<id>` counts
//!   them): the newest connection always takes it, and only its holder removes it.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;

use super::Member;
use crate::redis_link::{RedisLink, Timeouts};

/// What a Redis command failed with, as text (the caller keeps its slots meanwhile).
pub type RedisFailure = String;

/// The outcome of renewing one held lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Still ours, for another lease.
    Renewed,
    /// The key is gone (Redis lost it, or it lapsed); it may be taken again.
    Missing,
    /// Another instance holds it now.
    Lost,
}

/// The scripts and keys of one cluster (one prefix) on one Redis.
#[derive(Clone)]
pub struct Coordinator {
    connection: RedisLink,
    /// `{<prefix>cluster}`: the hash tag every key starts with, so that every script's keys
    /// share one slot of a Redis Cluster.
    tag: String,
    /// The key of each slot's lease, written once (every beat names the held ones).
    slot_keys: Arc<[String]>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("target", &self.target())
            .field("tag", &self.tag)
            .finish()
    }
}

/// One heartbeat: refreshes this instance's entry and answers the live members with when each
/// joined, and Redis's time. Members whose heartbeat lapsed are removed here, by whoever beats
/// first.
static BEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[3], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSETNX', KEYS[2], ARGV[1], now)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
for _, id in ipairs(gone) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {now}
for _, id in ipairs(live) do
  table.insert(out, id)
  table.insert(out, redis.call('HGET', KEYS[2], id) or now)
end
return out
",
    )
});

/// The live members, read without changing anything.
static LIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')
",
    )
});

/// A connection of charger KEYS[1] on instance ARGV[1] takes it over: answers its generation
/// and the holder before (if any).
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local generation = redis.call('INCR', KEYS[2])
local before = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. generation)
return {generation, before or ''}
",
    )
});

/// After Redis lost its data: records again that connection ARGV[1] (`<instance>
/// <generation>`, generation ARGV[2]) holds charger KEYS[1], unless a newer connection claimed
/// it meanwhile; the generation counter KEYS[2] is brought back to at least ARGV[2], so a later
/// connection cannot get a generation already in use. Answers 1 when recorded.
static REASSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local counted = tonumber(redis.call('GET', KEYS[2]) or '0')
if counted < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[2])
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  return 1
end
return 0
",
    )
});

/// Removes charger KEYS[1]'s holder if it is still ARGV[1].
static UNCLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// A token bucket shared by every instance (KEYS[1]: `tokens`, `at`), on Redis's clock:
/// ARGV[1] tokens at most, refilled at ARGV[2] a second; with ARGV[3] = 1 one is taken.
/// Answers the tokens left and, when none could be taken, the milliseconds until one can.
static BUCKET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or capacity
local at = tonumber(held[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if ARGV[3] == '1' then
  if tokens >= 1 then
    tokens = tokens - 1
  else
    wait = math.ceil((1 - tokens) * 1000 / rate)
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 60000)
return {tostring(tokens), wait}
",
    )
});

/// Leaving: the entry, the join time and the heartbeat go at once.
static LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return 1
",
    )
});

/// Renews the leases in KEYS held with token ARGV[1] for ARGV[2] ms: a character for each key,
/// `1` (renewed), `0` (missing) or `-` (another's). (One string, not a number a key: the
/// client reads a reply's values one by one, each costing as much as a short string.)
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = '1'
  elseif holder then
    out[i] = '-'
  else
    out[i] = '0'
  end
end
return table.concat(out)
",
    )
});

/// Takes the leases in KEYS that nobody holds, with token ARGV[1] for ARGV[2] ms: a character
/// for each key, `1` (taken) or `0` (held by someone).
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    out[i] = '1'
  else
    out[i] = '0'
  end
end
return table.concat(out)
",
    )
});

/// Releases the leases in KEYS still held with token ARGV[1].
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
",
    )
});

impl Coordinator {
    /// A coordinator on the Redis at `url` for the cluster of `prefix`. Nothing is connected
    /// until the first call.
    pub fn new(url: &str, prefix: &str) -> Result<Self, String> {
        let connection = RedisLink::open(url, Timeouts::SHORT)?;
        let tag = format!("{{{prefix}cluster}}");
        Ok(Self {
            slot_keys: (0..super::SLOTS)
                .map(|slot| format!("{tag}:slot:{slot}"))
                .collect(),
            tag,
            connection,
        })
    }

    /// Where Redis is (`host:port`).
    pub fn target(&self) -> &str {
        self.connection.target()
    }

    fn members_key(&self) -> String {
        format!("{}:members", self.tag)
    }

    fn joined_key(&self) -> String {
        format!("{}:joined", self.tag)
    }

    fn instance_key(&self, id: &str) -> String {
        format!("{}:instance:{id}", self.tag)
    }

    fn slot_key(&self, slot: u16) -> &str {
        &self.slot_keys[usize::from(slot)]
    }

    fn charger_key(&self, id: &str) -> String {
        format!("{}:charger:{id}", self.tag)
    }

    fn fail(&self, doing: &str, error: redis::RedisError) -> RedisFailure {
        format!("Redis at {} while {doing}: {error}", self.target())
    }

    /// Beats for instance `id` (what it says of itself in `info`, kept `ttl`): answers Redis's
    /// time in ms and the live members with when each joined.
    pub async fn beat(
        &self,
        id: &str,
        info: &str,
        ttl: Duration,
    ) -> Result<(u64, Vec<(String, u64)>), RedisFailure> {
        let mut connection = self.connection.clone();
        let answer: Vec<redis::Value> = BEAT
            .key(self.members_key())
            .key(self.joined_key())
            .key(self.instance_key(id))
            .arg(id)
            .arg(info)
            .arg(ttl.as_millis() as u64)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.fail("beating", e))?;
        let number = |value: &redis::Value| -> u64 {
            redis::from_redis_value_ref::<u64>(value)
                .or_else(|_| {
                    redis::from_redis_value_ref::<String>(value)
                        .map(|s| s.parse::<f64>().unwrap_or(0.0) as u64)
                })
                .unwrap_or(0)
        };
        let now = answer.first().map_or(0, number);
        let members = answer[1.min(answer.len())..]
            .chunks(2)
            .filter_map(|pair| match pair {
                [id, joined] => Some((
                    redis::from_redis_value_ref::<String>(id).ok()?,
                    number(joined),
                )),
                _ => None,
            })
            .collect();
        Ok((now, members))
    }

    /// The ids of the members that beat within `ttl`.
    pub async fn live(&self, ttl: Duration) -> Result<Vec<String>, RedisFailure> {
        let mut connection = self.connection.clone();
        LIVE.key(self.members_key())
            .arg(ttl.as_millis() as u64)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.fail("reading the members", e))
    }

    /// The requests of instance `me` to the others, and theirs to it.
    pub fn rpc(&self, me: &str) -> super::rpc::Rpc {
        super::rpc::Rpc::new(self.connection.clone(), &self.tag, me)
    }

    /// A connection of charger `id` on instance `me` takes it over: its value in the registry
    /// (`<me> <generation>`) and the holder's before.
    pub async fn claim_charger(
        &self,
        id: &str,
        me: &str,
    ) -> Result<(String, Option<String>), RedisFailure> {
        let mut connection = self.connection.clone();
        let (generation, before): (u64, String) = CLAIM
            .key(self.charger_key(id))
            .key(format!("{}:charger-gen:{id}", self.tag))
            .arg(me)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.fail("recording a charger's connection", e))?;
        Ok((
            format!("{me} {generation}"),
            Some(before).filter(|b| !b.is_empty()),
        ))
    }

    /// Records again that `held` (what [`Self::claim_charger`] gave) holds charger `id`, unless
    /// another connection claimed it since Redis lost its data: whether it was recorded.
    pub async fn reassert_charger(&self, id: &str, held: &str) -> Result<bool, RedisFailure> {
        let generation = held
            .rsplit(' ')
            .next()
            .and_then(|g| g.parse::<u64>().ok())
            .unwrap_or(0);
        let mut connection = self.connection.clone();
        let recorded: i64 = REASSERT
            .key(self.charger_key(id))
            .key(format!("{}:charger-gen:{id}", self.tag))
            .arg(held)
            .arg(generation)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.fail("recording a charger's connection again", e))?;
        Ok(recorded == 1)
    }

    /// Removes charger `id` from the registry if `held` (what [`Self::claim_charger`] gave)
    /// still holds it.
    pub async fn unclaim_charger(&self, id: &str, held: &str) -> Result<(), RedisFailure> {
        let mut connection = self.connection.clone();
        let _: i64 = UNCLAIM
            .key(self.charger_key(id))
            .arg(held)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.fail("recording a charger's disconnection", e))?;
        Ok(())
    }

    /// The instances holding chargers `ids` (`None`: none).
    pub async fn charger_holders(
        &self,
        ids: &[String],
    ) -> Result<Vec<Option<String>>, RedisFailure> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.charger_key(id)).collect();
        let mut connection = self.connection.clone();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut connection)
            .await
            .map_err(|e| self.fail("reading which instance holds chargers", e))?;
        Ok(values
            .into_iter()
            .map(|v| v.and_then(|v| v.split(' ').next().map(str::to_owned)))
            .collect())
    }

    /// The shared token bucket `key` (under the cluster's tag) of `capacity` tokens refilled at
    /// `per_sec`: the tokens left, and (when `take` found none) how long until one comes.
    pub async fn bucket(
        &self,
        key: &str,
        capacity: f64,
        per_sec: f64,
        take: bool,
    ) -> Result<(f64, Option<Duration>), RedisFailure> {
        let mut connection = self.connection.clone();
        let (tokens, wait): (String, u64) = BUCKET
            .key(format!("{}:bucket:{key}", self.tag))
            .arg(capacity)
            .arg(per_sec)
            .arg(u8::from(take))
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.fail("counting a shared allowance", e))?;
        let tokens = tokens.parse().unwrap_or(0.0);
        Ok((tokens, (wait > 0).then(|| Duration::from_millis(wait))))
    }

    /// Sets `key` (under the cluster's tag) for `ttl` if nobody set it: whether this call did.
    pub async fn mark(&self, key: &str, ttl: Duration) -> Result<bool, RedisFailure> {
        let mut connection = self.connection.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{}:{key}", self.tag))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut connection)
            .await
            .map_err(|e| self.fail("marking", e))?;
        Ok(set.is_some())
    }

    /// Removes instance `id` from the members at once.
    pub async fn leave(&self, id: &str) -> Result<(), RedisFailure> {
        let mut connection = self.connection.clone();
        let _: i64 = LEAVE
            .key(self.members_key())
            .key(self.joined_key())
            .key(self.instance_key(id))
            .arg(id)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.fail("leaving the cluster", e))?;
        Ok(())
    }

    /// What each of `ids` says of itself (`None` where its entry lapsed).
    pub async fn infos(&self, ids: &[String]) -> Result<Vec<Option<Member>>, RedisFailure> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.instance_key(id)).collect();
        let mut connection = self.connection.clone();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut connection)
            .await
            .map_err(|e| self.fail("reading the members", e))?;
        Ok(values
            .into_iter()
            .map(|value| value.and_then(|json| serde_json::from_str(&json).ok()))
            .collect())
    }

    /// Runs a script over the leases of `slots`: its answer, a character for each.
    async fn per_slot(
        &self,
        script: &Script,
        doing: &str,
        slots: &[u16],
        token: &str,
        lease: Duration,
    ) -> Result<Vec<u8>, RedisFailure> {
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = script.prepare_invoke();
        for slot in slots {
            invocation.key(self.slot_key(*slot));
        }
        invocation.arg(token).arg(lease.as_millis() as u64);
        let mut connection = self.connection.clone();
        let answer: Vec<u8> = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.fail(doing, e))?;
        if answer.len() != slots.len() {
            return Err(format!(
                "Redis at {} while {doing}: {} answers for {} leases",
                self.target(),
                answer.len(),
                slots.len()
            ));
        }
        Ok(answer)
    }

    /// Renews the leases of `slots` held with `token`.
    pub async fn renew(
        &self,
        slots: &[u16],
        token: &str,
        lease: Duration,
    ) -> Result<Vec<Renewal>, RedisFailure> {
        let answers = self
            .per_slot(&RENEW, "renewing leases", slots, token, lease)
            .await?;
        Ok(answers
            .into_iter()
            .map(|answer| match answer {
                b'1' => Renewal::Renewed,
                b'0' => Renewal::Missing,
                _ => Renewal::Lost,
            })
            .collect())
    }

    /// Takes the leases of `slots` that nobody holds; answers which were taken.
    pub async fn acquire(
        &self,
        slots: &[u16],
        token: &str,
        lease: Duration,
    ) -> Result<Vec<bool>, RedisFailure> {
        let answers = self
            .per_slot(&ACQUIRE, "taking leases", slots, token, lease)
            .await?;
        Ok(answers.into_iter().map(|answer| answer == b'1').collect())
    }

    /// Releases the leases of `slots` still held with `token`.
    pub async fn release(&self, slots: &[u16], token: &str) -> Result<(), RedisFailure> {
        if slots.is_empty() {
            return Ok(());
        }
        let mut invocation = RELEASE.prepare_invoke();
        for slot in slots {
            invocation.key(self.slot_key(*slot));
        }
        invocation.arg(token);
        let mut connection = self.connection.clone();
        let _: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.fail("releasing leases", e))?;
        Ok(())
    }
}
