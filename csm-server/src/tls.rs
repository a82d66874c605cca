//! TLS in the server: with `CSM_TLS_CERT` and `CSM_TLS_KEY` (PEM files) the server's one port
//! speaks HTTPS and `wss://` (rustls); the certificate is read again on SIGHUP, or when either
//! file changes, and new handshakes use it while open connections keep theirs. With
//! `CSM_TLS_CLIENT_CA`, the server asks each client for a certificate and verifies one it
//! sends against that CA (OCPP security profile 3); a client may send none (browsers, API
//! clients, chargers of profile 1 and 2), and what a certificate is good for is decided where
//! it is used ([`crate::api::ocpp`]).
//!
//! Behind a proxy that terminates TLS, the proxy may pass the client's certificate in a
//! header (`CSM_TLS_CLIENT_CERT_HEADER`, as nginx's `$ssl_client_escaped_cert`), believed only
//! from `CSM_TRUSTED_PROXIES` ([`certificate_of_header`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

/// How often the certificate's files are looked at for a change.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Where the server's certificate, its key and the CA of client certificates are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM), the server's first.
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CA (PEM, one or more certificates) that client certificates are verified against.
    pub client_ca: Option<PathBuf>,
}

/// The client certificate a TLS connection presented (and the verifier accepted), put in
/// each of its requests' extensions; a connection over TLS without one gets `None`.
#[derive(Clone, Debug)]
pub struct PeerTls {
    /// The client's certificate.
    pub certificate: Option<CertificateDer<'static>>,
}

/// The server's TLS: its acceptor, the certificate it reloads, the verifier of clients.
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    certificate: Arc<Reloading>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.certificate.files)
            .finish()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl Tls {
    /// Reads the files; an error names the file and what is wrong with it.
    pub fn load(files: &TlsFiles) -> anyhow::Result<Self> {
        let provider = provider();
        let certificate = Arc::new(Reloading {
            current: RwLock::new(Arc::new(certified_key(files, &provider)?)),
            stamp: Mutex::new(stamp(files)),
            files: files.clone(),
            provider: Arc::clone(&provider),
        });
        let verifier = match &files.client_ca {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in pem_certificates(path, "CSM_TLS_CLIENT_CA")? {
                    roots.add(cert).with_context(|| {
                        format!(
                            "CSM_TLS_CLIENT_CA {}: a certificate csm cannot use as a CA",
                            path.display()
                        )
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .allow_unauthenticated()
                .build()
                .with_context(|| format!("CSM_TLS_CLIENT_CA {}", path.display()))?;
                Some(verifier)
            }
            None => None,
        };
        let builder = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("the TLS versions")?;
        let builder = match &verifier {
            Some(verifier) => builder.with_client_cert_verifier(Arc::clone(verifier)),
            None => builder.with_no_client_auth(),
        };
        let mut config =
            builder.with_cert_resolver(Arc::clone(&certificate) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            certificate,
            verifier,
        })
    }

    /// The acceptor of new connections.
    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Whether client certificates are verified (`CSM_TLS_CLIENT_CA`).
    pub fn verifies_clients(&self) -> bool {
        self.verifier.is_some()
    }

    /// Verifies a client certificate against `CSM_TLS_CLIENT_CA` (one a proxy passed on).
    pub fn verify_client(&self, certificate: &CertificateDer<'_>) -> Result<(), String> {
        let Some(verifier) = &self.verifier else {
            return Ok(());
        };
        verifier
            .verify_client_cert(certificate, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Reads the certificate again on SIGHUP, or when its files change, until `shutdown`.
    /// A certificate that cannot be read is logged and the one in use kept.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        #[cfg(unix)]
        let mut hangups =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut every = tokio::time::interval(WATCH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hangups.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<()>();
            let forced = tokio::select! {
                () = shutdown.cancelled() => return,
                () = hangup => true,
                _ = every.tick() => false,
            };
            self.certificate.reload(forced);
        }
    }
}

/// The server's certificate, read again when asked or when its files changed.
struct Reloading {
    files: TlsFiles,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// When the files were last changed, as of the last read.
    stamp: Mutex<Option<(SystemTime, SystemTime)>>,
}

impl std::fmt::Debug for Reloading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("files", &self.files)
            .finish()
    }
}

impl Reloading {
    /// Reads the files again if `forced` or they changed since the last read.
    fn reload(&self, forced: bool) {
        let now = stamp(&self.files);
        {
            let mut last = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
            if !forced && *last == now {
                return;
            }
            *last = now;
        }
        match certified_key(&self.files, &self.provider) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
                metrics::counter!("csm_tls_reloads_total", "outcome" => "ok").increment(1);
                tracing::info!(cert = %self.files.cert.display(), "the TLS certificate was read again; new connections use it");
            }
            Err(error) => {
                metrics::counter!("csm_tls_reloads_total", "outcome" => "failed").increment(1);
                tracing::error!(
                    error = format!("{error:#}"),
                    "the TLS certificate could not be read again; keeping the one in use"
                );
            }
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

/// When the certificate and key files were last modified (`None` when either cannot be read).
fn stamp(files: &TlsFiles) -> Option<(SystemTime, SystemTime)> {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    Some((modified(&files.cert)?, modified(&files.key)?))
}

fn pem_certificates(path: &Path, setting: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("{setting} {}: cannot read it", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{setting} {}: not a PEM certificate file", path.display()))?;
    if certificates.is_empty() {
        anyhow::bail!(
            "{setting} {}: holds no certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(certificates)
}

fn certified_key(
    files: &TlsFiles,
    provider: &rustls::crypto::CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    let chain = pem_certificates(&files.cert, "CSM_TLS_CERT")?;
    let key = PrivateKeyDer::from_pem_file(&files.key).with_context(|| {
        format!(
            "CSM_TLS_KEY {}: cannot read a PEM private key from it",
            files.key.display()
        )
    })?;
    CertifiedKey::from_der(chain, key, provider).with_context(|| {
        format!(
            "CSM_TLS_KEY {} does not fit CSM_TLS_CERT {}",
            files.key.display(),
            files.cert.display()
        )
    })
}

/// The certificate a proxy passed in a header, as nginx's `$ssl_client_escaped_cert` writes
/// it (a URL-escaped PEM certificate); `Err` says what is wrong with it.
pub fn certificate_of_header(value: &str) -> Result<CertificateDer<'static>, String> {
    let pem = percent_decoded(value).ok_or("it is not URL-escaped text")?;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("not a PEM certificate: {e}"))
}

fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The subject common name (CN) of a DER certificate: the charge point id an OCPP client
/// certificate names. `None` when it has none or cannot be read.
pub fn common_name(certificate: &[u8]) -> Option<String> {
    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let (tag, certificate, _) = der(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, tbs, _) = der(certificate)?;
    // version [0] (optional), serialNumber, signature, issuer, validity, subject
    let mut rest = tbs;
    let (tag, _, after) = der(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..4 {
        rest = der(rest)?.2;
    }
    let (tag, mut names, _) = der(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut found = None;
    while !names.is_empty() {
        let (tag, mut set, after) = der(names)?;
        names = after;
        if tag != SET {
            return None;
        }
        while !set.is_empty() {
            let (_, pair, after) = der(set)?;
            set = after;
            let (_, oid, value) = der(pair)?;
            if oid == CN {
                let (tag, text, _) = der(value)?;
                // UTF8String, PrintableString, IA5String (T61String read as Latin-1 is not
                // a charge point id).
                if matches!(tag, 0x0c | 0x13 | 0x16) {
                    found = Some(String::from_utf8(text.to_vec()).ok()?);
                }
            }
        }
    }
    found
}

/// One DER element: its tag, its content and what follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let (bytes, after) = rest.split_at(octets);
        rest = after;
        bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b))
    };
    if rest.len() < length {
        return None;
    }
    let (content, after) = rest.split_at(length);
    Some((tag, content, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escaped_header_and_broken_der_are_read_without_panicking() {
        assert_eq!(percent_decoded("a%20b%0A").as_deref(), Some("a b\n"));
        assert_eq!(percent_decoded("%zz"), None);
        assert_eq!(percent_decoded("%2"), None);
        assert!(certificate_of_header("not a certificate").is_err());
        assert_eq!(common_name(&[]), None);
        assert_eq!(common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(common_name(&[0x30, 0x03, 0x30, 0x01]), None);
    }
}
