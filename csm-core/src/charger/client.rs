//! The HTTP client of vendor APIs: hyper's pooled client (one, shared by every job) over TCP
//! or TLS (rustls, certificates checked against the system's roots as the operating system
//! does, and those of `CSM_VENDOR_CA_FILE`), following redirects like a browser.
//!
//! It is hyper's client with nothing between: a request is a parsed URI, a few headers and a
//! body, and an answer is read as it comes, up to a limit. What a general-purpose client adds
//! on every request (a redirect layer that parses each URL again, proxy matching, retries) cost
//! a steady refresh about a fifth of its instructions, for things a vendor request does not
//! need or the refresh engine does itself. Requests go to the vendor directly: proxy settings
//! of the environment (`HTTP_PROXY`, `HTTPS_PROXY`) are not read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls_platform_verifier::Verifier;

use crate::settings::VendorSettings;

/// Redirects followed for one request, as browsers and curl allow.
const MAX_REDIRECTS: usize = 10;

/// Headers not sent on to another origin after a redirect: they carry credentials.
const CREDENTIALS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
    header::WWW_AUTHENTICATE,
];

/// The vendor client. Cheap to clone: clones share the connection pool.
#[derive(Clone, Debug)]
pub struct VendorClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    connect_timeout: Duration,
}

/// Why the vendor client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// TLS could not be set up (the system's certificates could not be read).
    #[error("cannot set up TLS for vendor APIs: {0}")]
    Tls(#[from] rustls::Error),
    /// The file of extra certificate authorities cannot be read.
    #[error("CSM_VENDOR_CA_FILE {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The URL is not one an HTTP request can go to: what is wrong with it (the URL itself is
    /// not kept, as it may carry secrets; the caller names its own form).
    #[error("not an http:// or https:// URL: {0}")]
    BadUrl(String),
    /// No connection could be made within the connect timeout.
    #[error("no connection within {} ms", .0.as_millis())]
    ConnectTimeout(Duration),
    /// No connection could be made (refused, no such host, TLS refused).
    #[error("connection failed: {0}")]
    Connect(String),
    /// The connection broke before the answer's head arrived.
    #[error("{0}")]
    Exchange(String),
    /// The answer's body broke off.
    #[error("the response broke off: {0}")]
    Body(String),
    /// Redirects that lead nowhere: too many, or to something that is not a URL.
    #[error("{0}")]
    Redirect(String),
}

/// What a request asks.
#[derive(Debug)]
pub struct Ask<'a> {
    /// GET or POST.
    pub method: Method,
    /// The URL, secrets filled in.
    pub url: &'a str,
    /// The profile's headers (`User-Agent` and, with a body, `Content-Type` are added when
    /// they are not among them).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A JSON body.
    pub json: Option<String>,
}

impl VendorClient {
    /// A client with the connect timeout of `settings` and an idle pool per host as large as
    /// the refresh concurrency.
    pub fn new(settings: &VendorSettings, concurrency: usize) -> Result<Self, BuildError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let extra = match &settings.http_ca_file {
            Some(path) => authorities(path)?,
            None => Vec::new(),
        };
        let verifier = Verifier::new_with_extra_roots(extra, Arc::clone(&provider))?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let connect_timeout = settings.http_connect_timeout();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(concurrency)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            client,
            connect_timeout,
        })
    }

    /// Sends `ask`, following redirects, and returns the answer once its head arrived (its
    /// body is read with [`read_body`]). The caller bounds the whole exchange in time.
    pub async fn send(&self, ask: Ask<'_>) -> Result<Response<Incoming>, SendError> {
        let mut uri = parse_uri(ask.url)?;
        let mut method = ask.method;
        let mut headers = ask.headers;
        let mut body = ask.json.map(Bytes::from);
        for _ in 0..=MAX_REDIRECTS {
            let mut request = Request::builder().method(method.clone()).uri(uri.clone());
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            // csm's own, unless the profile gives its own.
            let given = |wanted: &HeaderName| headers.iter().any(|(name, _)| name == wanted);
            if !given(&header::USER_AGENT) {
                request = request.header(header::USER_AGENT, USER_AGENT);
            }
            if body.is_some() && !given(&header::CONTENT_TYPE) {
                request = request.header(header::CONTENT_TYPE, "application/json");
            }
            let request = request
                .body(Full::new(body.clone().unwrap_or_default()))
                .map_err(|e| SendError::BadUrl(e.to_string()))?;
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| self.send_error(&e))?;
            let status = response.status();
            if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
                return Ok(response);
            }
            let Some(location) = response.headers().get(header::LOCATION) else {
                return Ok(response);
            };
            let next = follow(&uri, location)?;
            // As browsers do: 303, and 301/302 of anything but GET and HEAD, go on as a GET
            // without the body; 307 and 308 repeat the request as it was.
            if status == StatusCode::SEE_OTHER
                || (matches!(status.as_u16(), 301 | 302) && method != Method::HEAD)
            {
                method = Method::GET;
                body = None;
            }
            if next.scheme() != uri.scheme() || next.authority() != uri.authority() {
                headers.retain(|(name, _)| !CREDENTIALS.contains(name));
            }
            uri = next;
        }
        Err(SendError::Redirect(format!(
            "more than {MAX_REDIRECTS} redirects, the last to {}",
            shown(&uri)
        )))
    }

    fn send_error(&self, error: &hyper_util::client::legacy::Error) -> SendError {
        let cause = innermost(error);
        if error.is_connect() {
            if timed_out(error) {
                return SendError::ConnectTimeout(self.connect_timeout);
            }
            return SendError::Connect(cause);
        }
        SendError::Exchange(cause)
    }
}

/// The certificates of a PEM file, at least one.
fn authorities(path: &Path) -> Result<Vec<CertificateDer<'static>>, BuildError> {
    let refused = |reason: String| BuildError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| refused(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refused(e.to_string()))?;
    if certificates.is_empty() {
        return Err(refused(
            "holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)".into(),
        ));
    }
    Ok(certificates)
}

const USER_AGENT: &str = concat!("csm/", env!("CARGO_PKG_VERSION"));

/// `url` as a URI. The common URL is read as written; one with characters a request line
/// cannot carry (a space, non-ASCII) is read as a browser would, escaping them.
fn parse_uri(url: &str) -> Result<Uri, SendError> {
    let uri = url.parse::<Uri>().or_else(|_| {
        let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
        parsed.as_str().parse::<Uri>().map_err(|e| e.to_string())
    });
    let bad = SendError::BadUrl;
    let uri = uri.map_err(bad)?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(uri),
        Some("http" | "https") => Err(bad("it names no host".into())),
        _ => Err(bad("it does not begin with http:// or https://".into())),
    }
}

/// `uri` without its query, which may carry secrets (the caller shows its own form of the
/// request's URL).
fn shown(uri: &Uri) -> String {
    format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or_default(),
        uri.authority().map(|a| a.as_str()).unwrap_or_default(),
        uri.path()
    )
}

/// Where a redirect from `from` to `location` leads.
fn follow(from: &Uri, location: &HeaderValue) -> Result<Uri, SendError> {
    let bad = |reason: &str| {
        let location = String::from_utf8_lossy(location.as_bytes());
        let location = location.split('?').next().unwrap_or_default();
        SendError::Redirect(format!("redirected to {location:?}, {reason}"))
    };
    let location = location.to_str().map_err(|_| bad("which is not text"))?;
    let base = url::Url::parse(&from.to_string()).map_err(|_| bad("from a URL csm cannot read"))?;
    let next = base.join(location).map_err(|_| bad("which is not a URL"))?;
    parse_uri(next.as_str()).map_err(|_| bad("which is not an http:// or https:// URL"))
}

/// The innermost cause of `error`: what happened ("Connection refused"), without the layers
/// that only say where.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// Whether an I/O timeout is among the causes of `error`.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Why a body could not be read whole.
#[derive(Debug)]
pub enum ReadError {
    /// It is longer than the limit.
    TooLarge,
    /// It broke off.
    Broken(SendError),
}

/// Reads a body of at most `limit` bytes (or, with `truncate`, its first `limit` bytes).
pub async fn read_body(
    response: Response<Incoming>,
    limit: usize,
    truncate: bool,
) -> Result<Vec<u8>, ReadError> {
    let length = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if !truncate && length.is_some_and(|len| len > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::with_capacity(length.map_or(8 * 1024, |len| len as usize).min(limit));
    let mut incoming = response.into_body();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| ReadError::Broken(SendError::Body(innermost(&e))))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if body.len() + chunk.len() > limit {
            if truncate {
                body.extend_from_slice(&chunk[..limit - body.len()]);
                return Ok(body);
            }
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_as_written_and_escaped_when_they_must_be() {
        let uri = parse_uri("http://127.0.0.1:8080/api/v1/stations/S1/ports?x=1").unwrap();
        assert_eq!(
            uri.path_and_query().unwrap().as_str(),
            "/api/v1/stations/S1/ports?x=1"
        );
        let uri = parse_uri("http://h/a b/é").unwrap();
        assert_eq!(uri.path(), "/a%20b/%C3%A9");
        for (url, reason) in [
            ("ftp://h/x", "does not begin with http"),
            ("/relative", "does not begin with http"),
            ("http://", "empty host"),
        ] {
            let error = parse_uri(url).unwrap_err().to_string();
            assert!(error.contains(reason), "{url}: {error}");
        }
    }

    #[test]
    fn redirects_resolve_against_the_request() {
        let from: Uri = "https://api.example.com/v1/stations/S1".parse().unwrap();
        let to = |location: &str| follow(&from, &HeaderValue::from_str(location).unwrap());
        assert_eq!(
            to("/v2/stations/S1").unwrap().to_string(),
            "https://api.example.com/v2/stations/S1"
        );
        assert_eq!(
            to("ports").unwrap().to_string(),
            "https://api.example.com/v1/stations/ports"
        );
        assert_eq!(
            to("http://other.example/x").unwrap().to_string(),
            "http://other.example/x"
        );
        let error = to("ftp://h/x?key=S3CRET").unwrap_err().to_string();
        assert!(error.contains("not an http:// or https:// URL"), "{error}");
        assert!(!error.contains("S3CRET"), "a query is not shown: {error}");
        let with_query: Uri = "https://h:8443/p/q?key=S3CRET".parse().unwrap();
        assert_eq!(shown(&with_query), "https://h:8443/p/q");
    }
}
