//! TLS in the server and OCPP security profiles 2 and 3, with a throwaway CA and certificates
//! made by `openssl` for each test: HTTPS and `wss://` on the server's one port, a charger's
//! client certificate verified and matched to its charge point id, a certificate of another
//! id, none, or of another CA refused, plain `ws://` refused for a profile-2 station, the
//! certificate a trusted proxy passes in a header, and the server's certificate read again
//! when its file changes while open connections stay; and an HTTPS vendor API, trusted through
//! `CSM_VENDOR_CA_FILE`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{Backend, CacheKind, TestApp, spawn_app_with};

/// A CA, the server's certificate for `localhost` and 127.0.0.1, and client certificates.
struct Pki {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let done = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (the test command installs it)");
    assert!(
        done.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&done.stderr)
    );
}

impl Pki {
    fn new() -> Self {
        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        pki.ca("ca");
        pki.ca("rogue-ca");
        pki.issue("ca", "server", "localhost", "serverAuth");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ca(&self, name: &str) {
        openssl(
            self.dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/O=csm tests/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
    }

    /// A certificate `name`.pem (and its key) for subject CN `cn`, issued by `ca`.
    fn issue(&self, ca: &str, name: &str, cn: &str, usage: &str) {
        let dir = self.dir.path();
        let san = if usage == "serverAuth" {
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        } else {
            ""
        };
        std::fs::write(
            dir.join(format!("{name}.ext")),
            format!("basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n{san}"),
        )
        .unwrap();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/O=csm tests/CN={cn}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }

    fn files(&self) -> csm::server::tls::TlsFiles {
        csm::server::tls::TlsFiles {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: Some(self.path("ca.pem")),
        }
    }

    /// A TLS client trusting the CA, presenting client certificate `client` if named.
    fn connector(&self, client: Option<&str>) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(self.path("ca.pem")).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match client {
            Some(name) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_file(self.path(&format!("{name}.pem"))).unwrap()],
                    PrivateKeyDer::from_pem_file(self.path(&format!("{name}.key"))).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

type Secure =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// A `wss://` connection of charger `id` presenting client certificate `client` (and Basic
/// auth with `password`); `Err` holds the HTTP status of a refusal, or 0 when the TLS
/// handshake failed.
async fn wss(
    app: &TestApp,
    pki: &Pki,
    id: &str,
    client: Option<&str>,
    password: Option<&str>,
) -> Result<Secure, u16> {
    let tcp = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let Ok(tls) = pki.connector(client).connect(name, tcp).await else {
        return Err(0);
    };
    let mut request = format!("wss://localhost:{}/ocpp/{id}", app.address.port())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "ocpp2.0.1".parse().unwrap());
    if let Some(password) = password {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{password}"));
        request
            .headers_mut()
            .insert("Authorization", format!("Basic {token}").parse().unwrap());
    }
    match tokio_tungstenite::client_async(request, tls).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        // A client certificate refused during the handshake shows when the first bytes are read.
        Err(_) => Err(0),
    }
}

/// The certificate a new TLS connection to the app is served.
async fn served_certificate(app: &TestApp, pki: &Pki) -> Vec<u8> {
    let tcp = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = pki.connector(None).connect(name, tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .as_ref()
        .to_vec()
}

/// Sends a frame and reads the answer.
async fn ask(socket: &mut Secure, frame: &str) -> serde_json::Value {
    use futures_util::StreamExt;
    socket.send(Message::Text(frame.into())).await.unwrap();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("an answer within 5 s")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

const BOOT: &str = include_str!("../fixtures/ocpp201/boot.json");
const HEARTBEAT: &str = r#"[2,"h-1","Heartbeat",{}]"#;
const PASSWORD: &str = "a-profile-2-password";

async fn tls_app(pki: &Pki, tweak: impl FnOnce(&mut csm::server::ServerConfig)) -> TestApp {
    let files = pki.files();
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm_core::settings::Registration::Known);
        c.server.tls = Some(files);
        tweak(&mut c.server);
    })
    .await;
    for (id, password, profile) in [
        ("CP-TLS3", None, 3),
        ("CP-TLS2", Some(PASSWORD), 2),
        ("CP-TLS1", None, 1),
    ] {
        app.monitor
            .ocpp()
            .add_charge_point(&crate::helpers::station(id, "ocpp", 1), password, profile)
            .await
            .unwrap();
    }
    app
}

#[tokio::test]
async fn chargers_are_admitted_by_their_client_certificate_and_security_profile() {
    let pki = Pki::new();
    pki.issue("ca", "cp-tls3", "CP-TLS3", "clientAuth");
    pki.issue("ca", "cp-other", "CP-OTHER", "clientAuth");
    pki.issue("rogue-ca", "cp-rogue", "CP-TLS3", "clientAuth");
    let app = tls_app(&pki, |_| {}).await;

    // The API over HTTPS, on the same port.
    let https = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(pki.path("ca.pem")).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let health = https
        .get(format!("https://localhost:{}/healthz", app.address.port()))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success(), "{}", health.status());
    let plain = app.client.get(app.url("/healthz")).send().await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP is not served"
    );

    // Profile 3: its own certificate is enough; another id's, none, or another CA's are not.
    let mut socket = wss(&app, &pki, "CP-TLS3", Some("cp-tls3"), None)
        .await
        .expect("the right certificate is accepted");
    let boot = ask(&mut socket, BOOT).await;
    assert_eq!(boot[2]["status"], "Accepted", "{boot}");
    assert_eq!(
        wss(&app, &pki, "CP-TLS3", Some("cp-other"), None)
            .await
            .err(),
        Some(401),
        "a certificate of another charge point id"
    );
    assert_eq!(
        wss(&app, &pki, "CP-TLS1", Some("cp-other"), None)
            .await
            .err(),
        Some(401),
        "a certificate of another id, even where profile 1 would do"
    );
    assert_eq!(
        wss(&app, &pki, "CP-TLS3", None, None).await.err(),
        Some(401),
        "no certificate where profile 3 is required"
    );
    assert_eq!(
        wss(&app, &pki, "CP-TLS3", Some("cp-rogue"), None)
            .await
            .err(),
        Some(0),
        "a certificate of another CA fails the handshake"
    );

    // Profile 2: TLS with its password; profile 1: TLS alone will do.
    assert!(
        wss(&app, &pki, "CP-TLS2", None, Some(PASSWORD))
            .await
            .is_ok()
    );
    assert_eq!(
        wss(&app, &pki, "CP-TLS2", None, Some("not-the-password-at-all"))
            .await
            .err(),
        Some(401)
    );
    assert!(wss(&app, &pki, "CP-TLS1", None, None).await.is_ok());
    // The first charger is still served.
    assert_eq!(ask(&mut socket, HEARTBEAT).await[0], 3);
    app.stop().await;
}

#[tokio::test]
async fn the_certificate_is_read_again_when_its_file_changes_and_open_connections_stay() {
    let pki = Pki::new();
    pki.issue("ca", "cp-tls3", "CP-TLS3", "clientAuth");
    let app = tls_app(&pki, |_| {}).await;
    let mut socket = wss(&app, &pki, "CP-TLS3", Some("cp-tls3"), None)
        .await
        .unwrap();
    ask(&mut socket, BOOT).await;
    let served = || served_certificate(&app, &pki);
    let before = served().await;
    // A renewed certificate (a new key and serial), written in place.
    pki.issue("ca", "renewed", "localhost", "serverAuth");
    std::fs::copy(pki.path("renewed.key"), pki.path("server.key")).unwrap();
    std::fs::copy(pki.path("renewed.pem"), pki.path("server.pem")).unwrap();
    let mut after = before.clone();
    for _ in 0..50 {
        after = served().await;
        if after != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_ne!(after, before, "new handshakes get the renewed certificate");
    assert_eq!(
        after,
        CertificateDer::from_pem_file(pki.path("renewed.pem"))
            .unwrap()
            .as_ref(),
    );
    assert_eq!(
        ask(&mut socket, HEARTBEAT).await[0],
        3,
        "the connection opened before is still served"
    );
    app.stop().await;
}

#[tokio::test]
async fn sighup_reads_the_certificate_again_even_when_its_files_look_unchanged() {
    // This process handles SIGHUP before it is sent (a server's watcher handles it too).
    let mut hangups =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let pki = Pki::new();
    let app = tls_app(&pki, |_| {}).await;
    let served = || served_certificate(&app, &pki);
    let before = served().await;
    // Renewed in place with the old files' times, so only the signal tells the server.
    let times = |path: &Path| std::fs::metadata(path).unwrap().modified().unwrap();
    let (cert_time, key_time) = (
        times(&pki.path("server.pem")),
        times(&pki.path("server.key")),
    );
    pki.issue("ca", "renewed", "localhost", "serverAuth");
    std::fs::copy(pki.path("renewed.key"), pki.path("server.key")).unwrap();
    std::fs::copy(pki.path("renewed.pem"), pki.path("server.pem")).unwrap();
    for (name, time) in [("server.pem", cert_time), ("server.key", key_time)] {
        std::fs::File::options()
            .write(true)
            .open(pki.path(name))
            .unwrap()
            .set_modified(time)
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        served().await,
        before,
        "files that look unchanged are not read again"
    );
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    hangups.recv().await;
    let renewed = CertificateDer::from_pem_file(pki.path("renewed.pem")).unwrap();
    let mut after = before.clone();
    for _ in 0..50 {
        after = served().await;
        if after == renewed.as_ref() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        after,
        renewed.as_ref(),
        "SIGHUP read the renewed certificate"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_plain_connection_is_refused_for_profile_2_and_a_trusted_proxy_may_vouch() {
    let pki = Pki::new();
    pki.issue("ca", "cp-tls3", "CP-TLS3", "clientAuth");
    pki.issue("ca", "cp-other", "CP-OTHER", "clientAuth");
    // A server behind a proxy that terminates TLS: it speaks plain HTTP itself.
    let app = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm_core::settings::Registration::Known);
        c.server.client_cert_header = Some("x-ssl-client-cert".parse().unwrap());
        c.server.trusted_proxies =
            csm::server::client::TrustedProxies::new(vec!["127.0.0.1".parse().unwrap()]);
    })
    .await;
    for (id, password, profile) in [("CP-TLS3", None, 3), ("CP-TLS2", Some(PASSWORD), 2)] {
        app.monitor
            .ocpp()
            .add_charge_point(&crate::helpers::station(id, "ocpp", 1), password, profile)
            .await
            .unwrap();
    }
    let escaped = |name: &str| -> String {
        std::fs::read_to_string(pki.path(&format!("{name}.pem")))
            .unwrap()
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect()
    };
    let connect = |id: &str, headers: Vec<(&'static str, String)>| {
        let mut request = format!("ws://{}/ocpp/{id}", app.address)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "ocpp2.0.1".parse().unwrap());
        for (name, value) in headers {
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        async move {
            match tokio_tungstenite::connect_async(request).await {
                Ok(_) => 101,
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    response.status().as_u16()
                }
                Err(other) => panic!("{other}"),
            }
        }
    };
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("CP-TLS2:{PASSWORD}"))
    );
    assert_eq!(
        connect("CP-TLS2", vec![("authorization", basic.clone())]).await,
        401,
        "plain ws:// to a profile-2 station"
    );
    assert_eq!(
        connect(
            "CP-TLS2",
            vec![
                ("authorization", basic),
                ("x-forwarded-proto", "https".into())
            ]
        )
        .await,
        101,
        "the trusted proxy says it came over TLS"
    );
    assert_eq!(connect("CP-TLS3", vec![]).await, 401);
    assert_eq!(
        connect("CP-TLS3", vec![("x-ssl-client-cert", escaped("cp-tls3"))]).await,
        101,
        "the proxy passed its verified certificate"
    );
    assert_eq!(
        connect("CP-TLS3", vec![("x-ssl-client-cert", escaped("cp-other"))]).await,
        401,
        "the proxy passed another charge point's certificate"
    );
    assert_eq!(
        connect("CP-TLS3", vec![("x-ssl-client-cert", "garbage".into())]).await,
        401
    );
    app.stop().await;

    // From an address that is not a trusted proxy, the header means nothing.
    let direct = spawn_app_with(Backend::Sqlite, CacheKind::Memory, |c| {
        c.core.ocpp.registration = Some(csm_core::settings::Registration::Known);
        c.server.client_cert_header = Some("x-ssl-client-cert".parse().unwrap());
    })
    .await;
    direct
        .monitor
        .ocpp()
        .add_charge_point(&crate::helpers::station("CP-TLS3", "ocpp", 1), None, 3)
        .await
        .unwrap();
    let mut request = format!("ws://{}/ocpp/CP-TLS3", direct.address)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", "ocpp2.0.1".parse().unwrap());
    headers.insert("x-ssl-client-cert", escaped("cp-tls3").parse().unwrap());
    headers.insert("x-forwarded-proto", "https".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(request).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "{refused:?}"
    );
    direct.stop().await;
}

#[test]
fn the_charge_point_id_is_read_from_a_certificates_subject() {
    let pki = Pki::new();
    pki.issue("ca", "cp", "CP-0042", "clientAuth");
    let der = CertificateDer::from_pem_file(pki.path("cp.pem")).unwrap();
    assert_eq!(
        csm::server::tls::common_name(der.as_ref()).as_deref(),
        Some("CP-0042")
    );
    let server = CertificateDer::from_pem_file(pki.path("server.pem")).unwrap();
    assert_eq!(
        csm::server::tls::common_name(server.as_ref()).as_deref(),
        Some("localhost")
    );
}

/// An HTTPS vendor answering every request with `body`, with the server certificate of `pki`.
async fn https_vendor(pki: &Pki, body: &'static str) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_file(pki.path("server.pem")).unwrap()],
            PrivateKeyDer::from_pem_file(pki.path("server.key")).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    address
}

#[tokio::test]
async fn an_https_vendor_is_read_when_its_ca_is_trusted_and_refused_when_not() {
    use csm::core::charger::{ChargerApi, ChargerError, HttpChargerApi, VendorClient};
    let pki = Pki::new();
    let address = https_vendor(&pki, r#"{"ports": [{"s": "busy"}, {"s": "free"}]}"#).await;
    let profile = csm::core::charger::VendorProfile::from_toml(
        "[request]\nurl = \"{base_url}/s/{station_id}\"\n[ports]\npointer = \"/ports\"\n[ports.fields]\nstatus = \"/s\"\n[status.codes]\nfree = \"free\"\nbusy = \"occupied\"\n",
        "tlsvendor",
    )
    .unwrap();
    let api = |ca: Option<PathBuf>| {
        let mut settings = crate::helpers::test_settings();
        settings.vendors.http_ca_file = ca;
        HttpChargerApi::new(
            profile.clone(),
            Some(format!("https://localhost:{}", address.port())),
            VendorClient::new(&settings.vendors, 4).unwrap(),
            &settings.vendors,
        )
    };
    let station = crate::helpers::station("S1", "tlsvendor", 2);
    let snapshot = api(Some(pki.path("ca.pem"))).fetch(&station).await.unwrap();
    use csm::core::model::PortStatus;
    assert_eq!(
        snapshot.ports.iter().map(|p| p.status).collect::<Vec<_>>(),
        [PortStatus::Occupied, PortStatus::Free]
    );
    // The system's authorities alone do not know the test CA.
    let refused = api(None).fetch(&station).await.unwrap_err();
    assert!(
        matches!(&refused, ChargerError::Connect { message, .. } if message.contains("certificate")),
        "{refused}"
    );
    // A file without a certificate is refused when the client is built, naming the file.
    let mut settings = crate::helpers::test_settings();
    settings.vendors.http_ca_file = Some(pki.path("server.key"));
    let error = VendorClient::new(&settings.vendors, 4)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("CSM_VENDOR_CA_FILE") && error.contains("server.key"),
        "{error}"
    );
}
