//! The one way to Redis of the cache, the change feed and the cluster: a single server (one
//! multiplexed connection that reconnects on its own) or a Redis Cluster (named by several seed
//! URLs; its slots followed as they move), behind one [`ConnectionLike`].
//!
//! `CSM_REDIS_URL` names a Redis Cluster with two or more URLs separated by commas
//! (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`), or with one seed under the scheme
//! `redis+cluster://` (`rediss+cluster://` with TLS). On a cluster, the keys a script or a
//! command touches together share a hash tag (the cluster's own keys sit under
//! `{<prefix>cluster}`), and a pipeline whose keys lie in several slots is sent as one command
//! per key instead ([`RedisLink::is_cluster`]). Messages between instances use sharded pub/sub
//! there (`SPUBLISH`/`SSUBSCRIBE`: the channel's shard counts its listeners exactly), and plain
//! pub/sub on one server.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, PushKind, RedisFuture, Value};
use tokio::sync::{OnceCell, mpsc};

use crate::secret::redact_url;

/// How long a connection may take to open, and a command to be answered.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Opening a connection.
    pub connect: Duration,
    /// Waiting for an answer.
    pub response: Duration,
}

impl Timeouts {
    /// One second each: what the cache and the cluster's calls wait before failing fast.
    pub const SHORT: Self = Self {
        connect: Duration::from_secs(1),
        response: Duration::from_secs(1),
    };
}

/// A connection to Redis, cheap to clone (clones share it). Nothing is connected until the
/// first command.
#[derive(Clone)]
pub struct RedisLink {
    kind: Kind,
    target: Arc<str>,
}

#[derive(Clone)]
enum Kind {
    Single {
        connection: ConnectionManager,
        /// For subscriptions, which need a connection of their own.
        client: redis::Client,
    },
    Cluster(Arc<LazyCluster>),
}

/// A cluster connection made by the first command that needs it (and tried again by the next
/// one while it cannot be made).
struct LazyCluster {
    client: ClusterClient,
    connection: OnceCell<ClusterConnection>,
    /// The seed nodes (a subscription opens a connection of its own).
    seeds: Vec<String>,
    timeouts: Timeouts,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("target", &self.target)
            .finish()
    }
}

const CLUSTER_SCHEMES: [(&str, &str); 2] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
];

/// Whether `url` names a Redis Cluster (several seeds, or a `+cluster` scheme).
pub fn names_a_cluster(url: &str) -> bool {
    url.contains(',')
        || CLUSTER_SCHEMES
            .iter()
            .any(|(scheme, _)| url.trim().starts_with(scheme))
}

impl RedisLink {
    /// A link to the Redis (or Redis Cluster) at `url`, with `timeouts`.
    pub fn open(url: &str, timeouts: Timeouts) -> Result<Self, String> {
        let refused = |e: &dyn std::fmt::Display| {
            format!(
                "{:?} is not a Redis URL csm can use ({e}); write redis://host:6379, or for a \
                 Redis Cluster its seed nodes separated by commas \
                 (redis://host1:6379,redis://host2:6379)",
                redact_url(url)
            )
        };
        if !names_a_cluster(url) {
            let client = redis::Client::open(url).map_err(|e| refused(&e))?;
            let target = address(&client);
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeouts.connect))
                .set_response_timeout(Some(timeouts.response))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)
                .map_err(|e| format!("cannot set up the Redis client for {target}: {e}"))?;
            return Ok(Self {
                kind: Kind::Single { connection, client },
                target: target.into(),
            });
        }
        let seeds: Vec<String> = url
            .split(',')
            .map(str::trim)
            .filter(|seed| !seed.is_empty())
            .map(|seed| {
                CLUSTER_SCHEMES
                    .iter()
                    .find_map(|(scheme, plain)| {
                        seed.strip_prefix(scheme)
                            .map(|rest| format!("{plain}{rest}"))
                    })
                    .unwrap_or_else(|| seed.to_owned())
            })
            .collect();
        let clients = seeds
            .iter()
            .map(|seed| redis::Client::open(seed.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| refused(&e))?;
        if clients.is_empty() {
            return Err(refused(&"no seed node"));
        }
        let target = format!(
            "cluster {}",
            clients.iter().map(address).collect::<Vec<_>>().join(",")
        );
        let client = ClusterClient::builder(seeds.clone())
            .connection_timeout(timeouts.connect)
            .response_timeout(timeouts.response)
            .retries(1)
            .build()
            .map_err(|e| refused(&e))?;
        Ok(Self {
            kind: Kind::Cluster(Arc::new(LazyCluster {
                client,
                connection: OnceCell::new(),
                seeds,
                timeouts,
            })),
            target: target.into(),
        })
    }

    /// Where Redis is (`host:port`, or `cluster host:port,…`), with no password.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether this is a Redis Cluster (where a pipeline must keep to one slot).
    pub fn is_cluster(&self) -> bool {
        matches!(self.kind, Kind::Cluster(_))
    }

    /// Publishes `message` on `channel`: answers how many listen (on a cluster, sharded:
    /// the listeners of the channel's shard, all there are).
    pub async fn publish(&self, channel: &str, message: &str) -> redis::RedisResult<i64> {
        let command = if self.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        redis::cmd(command)
            .arg(channel)
            .arg(message)
            .query_async(&mut self.clone())
            .await
    }

    /// The messages of `channel` from now on, on a connection of their own; the stream ends
    /// when that connection breaks (subscribe again then).
    pub async fn listen(&self, channel: &str) -> redis::RedisResult<BoxStream<'static, String>> {
        match &self.kind {
            Kind::Single { client, .. } => {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(channel).await?;
                Ok(pubsub
                    .into_on_message()
                    .filter_map(|message| async move { message.get_payload::<String>().ok() })
                    .boxed())
            }
            Kind::Cluster(cluster) => {
                let (pushed, received) = mpsc::unbounded_channel();
                let client = ClusterClient::builder(cluster.seeds.clone())
                    .connection_timeout(cluster.timeouts.connect)
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(pushed)
                    .build()?;
                let mut connection = client.get_async_connection().await?;
                connection.ssubscribe(channel).await?;
                // The connection lives as long as the stream; a disconnection ends both.
                let messages = futures_util::stream::unfold(
                    (received, connection),
                    |(mut received, connection)| async move {
                        loop {
                            let push = received.recv().await?;
                            match push.kind {
                                PushKind::SMessage | PushKind::Message => {
                                    let text = push
                                        .data
                                        .get(1)
                                        .and_then(|v| redis::from_redis_value_ref(v).ok());
                                    if let Some(text) = text {
                                        return Some((text, (received, connection)));
                                    }
                                }
                                PushKind::Disconnection => return None,
                                _ => {}
                            }
                        }
                    },
                );
                Ok(messages.boxed())
            }
        }
    }
}

/// `host:port` of a client's server.
fn address(client: &redis::Client) -> String {
    match client.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port)
        | redis::ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port}"),
        other => other.to_string(),
    }
}

impl LazyCluster {
    async fn connection(&self) -> redis::RedisResult<ClusterConnection> {
        self.connection
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }
}

impl ConnectionLike for RedisLink {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.kind {
            Kind::Single { connection, .. } => connection.req_packed_command(cmd),
            Kind::Cluster(cluster) => {
                let cluster = Arc::clone(cluster);
                Box::pin(async move {
                    let mut connection = cluster.connection().await?;
                    connection.req_packed_command(cmd).await
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.kind {
            Kind::Single { connection, .. } => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            Kind::Cluster(cluster) => {
                let cluster = Arc::clone(cluster);
                Box::pin(async move {
                    let mut connection = cluster.connection().await?;
                    connection
                        .req_packed_commands(pipeline, offset, count)
                        .await
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match &self.kind {
            Kind::Single { connection, .. } => connection.get_db(),
            Kind::Cluster(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn several_urls_or_a_cluster_scheme_name_a_cluster() {
        assert!(!names_a_cluster("redis://127.0.0.1:6379"));
        assert!(names_a_cluster("redis://a:7001,redis://b:7002"));
        assert!(names_a_cluster("redis+cluster://a:7001"));
        let link =
            RedisLink::open("redis://:pw@a:7001, redis://:pw@b:7002", Timeouts::SHORT).unwrap();
        assert!(link.is_cluster());
        assert_eq!(link.target(), "cluster a:7001,b:7002");
        let link = RedisLink::open("redis+cluster://a:7001", Timeouts::SHORT).unwrap();
        assert_eq!(link.target(), "cluster a:7001");
        let link = RedisLink::open("redis://127.0.0.1:6379", Timeouts::SHORT).unwrap();
        assert!(!link.is_cluster());
        assert_eq!(link.target(), "127.0.0.1:6379");
    }

    #[test]
    fn a_bad_seed_is_refused_without_its_password() {
        let error =
            RedisLink::open("redis://:hunter2@a:7001,http://b", Timeouts::SHORT).unwrap_err();
        assert!(error.contains("seed nodes separated by commas"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
