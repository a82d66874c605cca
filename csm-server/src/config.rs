//! What the server adds to the core's settings: where it listens, who may write, which origins
//! may call it, and the limits that keep one client from taking it down.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Defaults of the server's own settings, written once (flags and `Default` read them).
pub mod defaults {
    /// Address the server listens on.
    pub const BIND: &str = "0.0.0.0:5000";
    /// Seconds a client may take to send a request's headers.
    pub const HEADER_TIMEOUT_SECS: u64 = 10;
    /// Seconds an idle keep-alive connection is kept open.
    pub const KEEPALIVE_SECS: u64 = 60;
    /// Connections served at once.
    pub const MAX_CONNECTIONS: usize = 20_000;
    /// Live event streams (`/api/events`) at once.
    pub const MAX_SSE_CLIENTS: usize = 5_000;
    /// Live event streams one client address may hold at once: generous, since riders on a
    /// campus share one NAT address by the thousand, yet a fifth of all.
    pub const MAX_SSE_PER_ADDRESS: usize = 1_000;
    /// Seconds a connection's writes may stay blocked (its client does not read) before it is
    /// closed.
    pub const WRITE_STALL_SECS: u64 = 30;
}

/// The server's settings.
#[derive(Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// The bootstrap admin token (beside the tokens of `csm-cli tokens`); with neither, every
    /// write is refused (403).
    pub admin_token: Option<csm_core::secret::Secret>,
    /// Whether the API's reads need a token (of any role) too.
    pub read_requires_token: bool,
    /// Origins allowed by CORS; empty: none.
    pub cors_origins: Vec<String>,
    /// Connection limits.
    pub limits: Limits,
    /// Benchmarks only: serve `GET /bench/ceiling`, a fixed JSON body of this many bytes.
    pub bench_ceiling_bytes: Option<usize>,
    /// Proxies whose `X-Forwarded-For` names the client (for per-client limits), and whose
    /// client certificate header is believed.
    pub trusted_proxies: crate::client::TrustedProxies,
    /// TLS in the server: its certificate, key and clients' CA (none: plain HTTP).
    pub tls: Option<crate::tls::TlsFiles>,
    /// The header in which a trusted proxy that terminated TLS passes the client's
    /// certificate (as nginx's `$ssl_client_escaped_cert`); none: not read.
    pub client_cert_header: Option<axum::http::HeaderName>,
}

/// What one client may hold of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest a client may take to send a request's headers, from its first byte.
    pub header_timeout: Duration,
    /// Longest a keep-alive connection may sit idle between requests.
    pub keepalive_timeout: Duration,
    /// Connections served at once. Past it, the connection idle the longest (waiting for
    /// headers or between requests) is closed to make room; when none is idle the newcomer
    /// gets 503.
    pub max_connections: usize,
    /// Live event streams at once; past it `/api/events` answers 503.
    pub max_sse_clients: usize,
    /// Live event streams one client address may hold; past it `/api/events` answers 429.
    pub max_sse_per_address: usize,
    /// Longest a connection's writes may stay blocked before it is closed: a client that
    /// stopped reading (an event stream whose send buffer stayed full).
    pub write_stall_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(defaults::HEADER_TIMEOUT_SECS),
            keepalive_timeout: Duration::from_secs(defaults::KEEPALIVE_SECS),
            max_connections: defaults::MAX_CONNECTIONS,
            max_sse_clients: defaults::MAX_SSE_CLIENTS,
            max_sse_per_address: defaults::MAX_SSE_PER_ADDRESS,
            write_stall_timeout: Duration::from_secs(defaults::WRITE_STALL_SECS),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: defaults::BIND
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 5000))),
            admin_token: None,
            read_requires_token: false,
            cors_origins: Vec::new(),
            limits: Limits::default(),
            bench_ceiling_bytes: None,
            trusted_proxies: crate::client::TrustedProxies::default(),
            tls: None,
            client_cert_header: None,
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("bind", &self.bind)
            .field("admin_token", &self.admin_token)
            .field("read_requires_token", &self.read_requires_token)
            .field("cors_origins", &self.cors_origins)
            .field("limits", &self.limits)
            .field("bench_ceiling_bytes", &self.bench_ceiling_bytes)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("tls", &self.tls)
            .field("client_cert_header", &self.client_cert_header)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_admin_token() {
        let config = ServerConfig {
            admin_token: Some("admin-token-value".into()),
            ..ServerConfig::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("admin-token-value"), "{debug}");
        assert!(debug.contains("0.0.0.0:5000"));
    }
}
