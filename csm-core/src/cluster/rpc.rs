//! Requests from one instance to another over Redis pub/sub (sharded on a Redis Cluster): each instance listens on its own
//! channel (`{<prefix>cluster}:inbox:<id>`); a request carries a number and the asker's id, and
//! its answer comes back on the asker's channel. A request to an instance nobody listens for
//! (it is gone) fails at once; one that gets no answer fails after its timeout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::redis_link::RedisLink;

/// Why a request got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// No instance of that id listens (it is gone), or Redis cannot be reached.
    #[error("instance {instance} cannot be reached: {reason}")]
    Unreachable {
        /// The instance asked.
        instance: String,
        /// Why.
        reason: String,
    },
    /// It did not answer in time.
    #[error("instance {instance} did not answer within {secs} s")]
    TimedOut {
        /// The instance asked.
        instance: String,
        /// The wait.
        secs: u64,
    },
}

/// What travels on the channels.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// `true` for an answer, `false` for a request.
    answer: bool,
    /// The request's number, given by the asker.
    n: u64,
    /// The asker.
    from: String,
    body: Value,
}

/// Handles a request; its answer goes back to the asker.
pub type Handler = Box<dyn Fn(Value) -> BoxFuture<'static, Value> + Send + Sync>;

/// This instance's end of the channels.
pub struct Rpc {
    redis: RedisLink,
    /// `{<prefix>cluster}:inbox:`.
    channels: String,
    me: String,
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc")
            .field("channels", &self.channels)
            .field("me", &self.me)
            .finish()
    }
}

impl Rpc {
    /// The channels of instance `me` on `redis`, under hash tag `tag`.
    pub fn new(redis: RedisLink, tag: &str, me: &str) -> Self {
        Self {
            redis,
            channels: format!("{tag}:inbox:"),
            me: me.to_owned(),
            next: AtomicU64::new(1),
            waiting: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Value>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn publish(&self, to: &str, envelope: &Envelope) -> Result<(), RpcError> {
        let unreachable = |reason: String| RpcError::Unreachable {
            instance: to.to_owned(),
            reason,
        };
        let text = serde_json::to_string(envelope).map_err(|e| unreachable(e.to_string()))?;
        let listeners = self
            .redis
            .publish(&format!("{}{to}", self.channels), &text)
            .await
            .map_err(|e| unreachable(format!("Redis: {e}")))?;
        if listeners == 0 {
            return Err(unreachable("it does not listen (it has stopped)".into()));
        }
        Ok(())
    }

    /// Asks instance `to` and waits at most `timeout` for its answer.
    pub async fn ask(&self, to: &str, body: Value, timeout: Duration) -> Result<Value, RpcError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        self.lock().insert(n, answer);
        let sent = self
            .publish(
                to,
                &Envelope {
                    answer: false,
                    n,
                    from: self.me.clone(),
                    body,
                },
            )
            .await;
        if let Err(error) = sent {
            self.lock().remove(&n);
            return Err(error);
        }
        let outcome = tokio::time::timeout(timeout, answered).await;
        self.lock().remove(&n);
        match outcome {
            Ok(Ok(value)) => Ok(value),
            _ => Err(RpcError::TimedOut {
                instance: to.to_owned(),
                secs: timeout.as_secs().max(1),
            }),
        }
    }

    /// Listens on this instance's channel until `cancel` fires, answering requests with
    /// `handler` and handing answers to the requests waiting for them. Reconnects when Redis
    /// goes away.
    pub async fn serve(&self, handler: Handler, cancel: CancellationToken) {
        let channel = format!("{}{}", self.channels, self.me);
        let mut failing = false;
        loop {
            let listened = tokio::select! {
                () = cancel.cancelled() => return,
                listened = self.listen(&channel, &handler) => listened,
            };
            if let Err(error) = listened
                && !failing
            {
                tracing::warn!(%error, "cannot listen for the other instances' requests; trying again");
                failing = true;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    async fn listen(&self, channel: &str, handler: &Handler) -> redis::RedisResult<()> {
        let mut messages = self.redis.listen(channel).await?;
        while let Some(text) = messages.next().await {
            let Ok(envelope) = serde_json::from_str::<Envelope>(&text) else {
                continue;
            };
            if envelope.answer {
                if let Some(waiting) = self.lock().remove(&envelope.n) {
                    let _ = waiting.send(envelope.body);
                }
                continue;
            }
            let answer = handler(envelope.body);
            let me = self.me.clone();
            let reply = Envelope {
                answer: true,
                n: envelope.n,
                from: me,
                body: Value::Null,
            };
            let to = envelope.from;
            let redis = self.redis.clone();
            let channels = self.channels.clone();
            // Answered beside the listener, so a slow request does not hold up the others.
            tokio::spawn(async move {
                let body = answer.await;
                let reply = Envelope { body, ..reply };
                let Ok(text) = serde_json::to_string(&reply) else {
                    return;
                };
                let sent = redis.publish(&format!("{channels}{to}"), &text).await;
                if let Err(error) = sent {
                    tracing::debug!(%error, "cannot answer another instance's request");
                }
            });
        }
        Ok(())
    }
}
