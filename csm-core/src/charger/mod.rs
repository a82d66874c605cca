//! Where snapshots come from: the `ChargerApi` trait, its errors (which say whether a retry may
//! help), and the registry of sources by vendor name.
//!
//! - [`HttpChargerApi`]: any vendor's HTTP API, read through a [`VendorProfile`] (TOML).
//! - [`Simulator`]: the built-in `simulator` vendor, a seeded e-bike fleet in process.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::model::{Snapshot, Station};
use crate::settings::Settings;

mod client;
mod http;
pub mod profile;
pub mod simulator;

pub use self::client::{BuildError, VendorClient};
pub use self::http::HttpChargerApi;
pub use self::profile::{ProfileError, VendorProfile};
pub use self::simulator::Simulator;

/// Name of the built-in simulated vendor.
pub const SIMULATOR_VENDOR: &str = "simulator";
/// Name of the built-in profile of csm's native contract.
pub const NATIVE_VENDOR: &str = "csm";

/// Why a source could not deliver a snapshot.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ChargerError {
    /// The vendor did not answer within the timeout.
    #[error("{vendor}: {url} did not answer within {after_ms} ms")]
    Timeout {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// The request URL (secrets not filled in).
        url: String,
        /// The timeout.
        after_ms: u64,
    },
    /// No connection could be made, or it broke during the exchange.
    #[error("{vendor}: cannot talk to {url}: {message}")]
    Connect {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// The request URL (secrets not filled in).
        url: String,
        /// What the network layer said.
        message: String,
    },
    /// The vendor answered with an HTTP error status.
    #[error("{vendor}: {url} answered HTTP {status}{}", excerpt(body))]
    Status {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// The request URL (secrets not filled in).
        url: String,
        /// HTTP status code.
        status: u16,
        /// What `Retry-After` asked for.
        retry_after: Option<Duration>,
        /// The start of the response body.
        body: String,
    },
    /// The response is larger than `CSM_HTTP_MAX_BODY_BYTES`.
    #[error(
        "{vendor}: the response of {url} is larger than {limit} bytes (CSM_HTTP_MAX_BODY_BYTES)"
    )]
    TooLarge {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// The request URL (secrets not filled in).
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The response is not JSON.
    #[error("{vendor}: the response of {url} is not JSON ({message})")]
    NotJson {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// The request URL (secrets not filled in).
        url: String,
        /// The parser's complaint.
        message: String,
    },
    /// The response nests arrays and objects deeper than csm reads ([`profile::MAX_DEPTH`]):
    /// a broken or hostile answer, refused before it is parsed.
    #[error(
        "{vendor}: the response of {url} nests deeper than {limit} levels at {pointer}; csm reads answers at most {limit} levels deep"
    )]
    TooDeep {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// The request URL (secrets not filled in).
        url: String,
        /// The deepest nesting read.
        limit: usize,
        /// JSON Pointer where the answer went too deep (its first segments).
        pointer: String,
    },
    /// The response is JSON but does not have the shape the profile describes.
    #[error(
        "{vendor}: the response does not fit the profile: at {pointer} expected {expected}, found {found}"
    )]
    Mismatch {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// JSON Pointer of the offending value.
        pointer: String,
        /// What the profile expects there.
        expected: String,
        /// What was there.
        found: String,
    },
    /// The answer has no success flag where the profile looks for one, or something there that
    /// is not a flag like the one the profile expects: the profile does not match the answer
    /// (whatever message the answer carries).
    #[error(
        "{vendor}: {pointer} is {found}: the profile's success.pointer does not match this answer (it expects a flag like {equals} there)"
    )]
    NoSuccessFlag {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// The profile's `success.pointer`.
        pointer: String,
        /// What is there (`missing`, `the object …`).
        found: String,
        /// The profile's `success.equals`.
        equals: String,
    },
    /// The vendor said the request failed (`success=false` and its message).
    #[error("{vendor} refused the request: {message}")]
    Vendor {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// The vendor's message.
        message: String,
    },
    /// The profile cannot be used as configured (missing base URL or secret).
    #[error("{vendor}: {message}")]
    Config {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// What is missing and how to set it.
        message: String,
    },
    /// The station names a vendor csm has no profile for.
    #[error("no vendor profile named {vendor:?}; known vendors: {known}")]
    UnknownVendor {
        /// The missing profile.
        vendor: String,
        /// The profiles that exist.
        known: String,
    },
    /// The source does not know the station.
    #[error("{vendor}: station {station} is not known to this source")]
    UnknownStation {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// The station's id (for OCPP: the charge point id).
        station: String,
    },
    /// A charger that pushes its state (OCPP) has no connection to csm now.
    #[error("{vendor}: charge point {station} is not connected to csm")]
    Disconnected {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// The station's id (for OCPP: the charge point id).
        station: String,
    },
    /// A connected charger has sent nothing for two heartbeat intervals and a grace.
    #[error(
        "{vendor}: charge point {station} has sent nothing since {since} (two heartbeat intervals and a grace)"
    )]
    Silent {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// The station's id (for OCPP: the charge point id).
        station: String,
        /// When csm last heard from it.
        since: chrono::DateTime<chrono::Utc>,
    },
    /// A charger that pushes its state (OCPP) has not connected since csm started; csm gives it
    /// two heartbeat intervals and a grace before it counts as offline.
    #[error("{vendor}: charge point {station} has not connected since csm started at {since}")]
    NotConnectedYet {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// The station's id (for OCPP: the charge point id).
        station: String,
        /// When csm started.
        since: chrono::DateTime<chrono::Utc>,
    },
    /// A charger is connected but has not said yet what its connectors are doing (csm asks
    /// it with TriggerMessage).
    #[error(
        "{vendor}: charge point {station} is connected but has not reported its connectors' status yet"
    )]
    NotReported {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// The station's id (for OCPP: the charge point id).
        station: String,
    },
    /// The vendor's requests keep failing, so csm does not ask it for a while (its circuit
    /// breaker is open: see `refresh::breaker`).
    #[error(
        "{vendor}: csm is not asking this vendor for {cool_down_secs} s: {failures} requests in a row failed, the last with: {last_error}"
    )]
    VendorPaused {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// Requests that failed in a row.
        failures: u32,
        /// How long csm waits before it asks again.
        cool_down_secs: u64,
        /// The last failure.
        last_error: String,
    },
    /// The source cannot do what was asked (for example list its stations).
    #[error("{vendor}: {message}")]
    Unsupported {
        /// The name of the vendor profile that asked (it begins the message).
        vendor: String,
        /// What it cannot do.
        message: String,
    },
}

/// What an error answer says, shortly: its first line of text (an HTML page's title or first
/// text, not its markup), at most 200 characters.
fn excerpt(body: &str) -> String {
    let text = first_text(body);
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// The first line of text of a body: for HTML, the text of its `<title>` or else the first text
/// between tags; whitespace runs become one space.
pub(crate) fn first_text(body: &str) -> String {
    let lower = body.to_ascii_lowercase();
    let markup = lower.trim_start().starts_with('<');
    let text: String = if markup {
        let title = lower.find("<title").and_then(|start| {
            let open = start + lower[start..].find('>')? + 1;
            let close = open + lower[open..].find("</title")?;
            Some(body[open..close].to_owned())
        });
        title.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| {
            // The first run of text outside tags (scripts and styles skipped).
            let mut text = String::new();
            let mut rest = body;
            while let Some(open) = rest.find('<') {
                let between = rest[..open].trim();
                if !between.is_empty() {
                    text = between.to_owned();
                    break;
                }
                let tag = rest[open..].to_ascii_lowercase();
                let skip_to = ["script", "style"]
                    .iter()
                    .find(|name| tag.starts_with(&format!("<{name}")))
                    .and_then(|name| tag.find(&format!("</{name}")))
                    .unwrap_or(0);
                match rest[open + skip_to..].find('>') {
                    Some(close) => rest = &rest[open + skip_to + close + 1..],
                    None => break,
                }
            }
            text
        })
    } else {
        body.lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or_default()
            .to_owned()
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = text
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ");
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text
    }
}

impl ChargerError {
    /// Whether a retry may succeed: timeouts, connection errors, HTTP 5xx, 408 and 429.
    /// Other client errors, answers that do not fit the profile and vendor refusals repeat.
    pub fn is_transient(&self) -> bool {
        match self {
            ChargerError::Timeout { .. } | ChargerError::Connect { .. } => true,
            ChargerError::Status { status, .. } => {
                *status >= 500 || *status == 429 || *status == 408
            }
            _ => false,
        }
    }

    /// Whether the failure says that the station itself is offline (a charger that pushes its
    /// state lost its connection, or went silent), not only that csm could not ask it: its
    /// ports are then offline.
    pub fn station_offline(&self) -> bool {
        matches!(
            self,
            ChargerError::Disconnected { .. } | ChargerError::Silent { .. }
        )
    }

    /// Whether the source is only waiting for the station to speak (an OCPP charger that has
    /// not connected since csm started, or not reported its connectors yet): a passing state,
    /// not a fault.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            ChargerError::NotConnectedYet { .. } | ChargerError::NotReported { .. }
        )
    }

    /// The wait the vendor asked for with `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ChargerError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short label of the kind of failure, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ChargerError::Timeout { .. } => "timeout",
            ChargerError::Connect { .. } => "connect",
            ChargerError::Status { .. } => "status",
            ChargerError::TooLarge { .. } => "too_large",
            ChargerError::NotJson { .. } => "not_json",
            ChargerError::TooDeep { .. } => "too_deep",
            ChargerError::Mismatch { .. } => "mismatch",
            ChargerError::NoSuccessFlag { .. } => "no_success_flag",
            ChargerError::Vendor { .. } => "vendor",
            ChargerError::Config { .. } => "config",
            ChargerError::UnknownVendor { .. } => "unknown_vendor",
            ChargerError::UnknownStation { .. } => "unknown_station",
            ChargerError::Disconnected { .. } => "disconnected",
            ChargerError::Silent { .. } => "silent",
            ChargerError::NotConnectedYet { .. } => "not_connected_yet",
            ChargerError::NotReported { .. } => "not_reported",
            ChargerError::Unsupported { .. } => "unsupported",
            ChargerError::VendorPaused { .. } => "vendor_paused",
        }
    }
}

/// A source of snapshots for the stations of one vendor.
#[async_trait]
pub trait ChargerApi: Send + Sync + fmt::Debug {
    /// The vendor profile name.
    fn vendor(&self) -> &str;

    /// Where the source is (base URL), for `test-connection`; `None` when it is in process or
    /// has no base URL configured.
    fn endpoint(&self) -> Option<String>;

    /// One attempt at reading every port of `station`. Retries are the caller's decision.
    async fn fetch(&self, station: &Station) -> Result<Snapshot, ChargerError>;

    /// The vendor's list of stations, where the vendor offers one.
    async fn list_stations(&self) -> Result<Vec<Station>, ChargerError>;

    /// Asks once for a station's ports and says what each pointer of the vendor's profile
    /// found in the answer (sources read through a profile; the others cannot say).
    async fn inspect(&self, station_id: &str) -> Result<Checked, ChargerError> {
        let _ = station_id;
        Err(ChargerError::Unsupported {
            vendor: self.vendor().to_owned(),
            message: "is not read through a vendor profile, so it has no pointers to check".into(),
        })
    }

    /// Checks that the source can be reached (any HTTP answer counts).
    async fn probe(&self) -> Result<(), ChargerError>;
}

/// One answer of a vendor read through its profile by hand.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The request's URL (secrets not filled in).
    pub url: String,
    /// The answer's size.
    pub bytes: usize,
    /// What the profile's pointers found in it.
    pub inspection: profile::Inspection,
}

/// Why the sources of the settings cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    /// A vendor profile is broken.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The HTTP client for vendor APIs cannot be built (its TLS set-up failed).
    #[error("cannot build the HTTP client for vendor APIs: {0}")]
    HttpClient(#[source] BuildError),
}

/// Every source csm knows, by vendor name.
#[derive(Clone, Default)]
pub struct Chargers {
    by_vendor: BTreeMap<String, Arc<dyn ChargerApi>>,
    simulator: Option<Arc<Simulator>>,
}

impl fmt::Debug for Chargers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_vendor.keys()).finish()
    }
}

impl Chargers {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a source under its vendor name.
    pub fn insert(&mut self, api: Arc<dyn ChargerApi>) {
        self.by_vendor.insert(api.vendor().to_owned(), api);
    }

    /// Adds the simulator, kept also as itself (for a simulated past it continues).
    pub fn insert_simulator(&mut self, simulator: Arc<Simulator>) {
        self.simulator = Some(Arc::clone(&simulator));
        self.insert(simulator);
    }

    /// The built-in simulator, when it was added with [`Chargers::insert_simulator`].
    pub fn simulator(&self) -> Option<&Arc<Simulator>> {
        self.simulator.as_ref()
    }

    /// The source of `vendor`.
    pub fn get(&self, vendor: &str) -> Result<&Arc<dyn ChargerApi>, ChargerError> {
        self.by_vendor
            .get(vendor)
            .ok_or_else(|| ChargerError::UnknownVendor {
                vendor: vendor.to_owned(),
                known: self.names().join(", "),
            })
    }

    /// Vendor names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.by_vendor.keys().cloned().collect()
    }

    /// Every source.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn ChargerApi>> {
        self.by_vendor.values()
    }

    /// The registry described by the settings: the simulator, the built-in `csm` profile and
    /// every `*.toml` profile in the vendors folder (OCPP chargers are added by the monitor,
    /// which feeds them their connections) (a missing folder is fine; a broken profile
    /// is an error naming the file).
    pub fn from_settings(settings: &Settings) -> Result<Self, SourcesError> {
        let client = VendorClient::new(&settings.vendors, settings.engine.concurrency)
            .map_err(SourcesError::HttpClient)?;
        let mut chargers = Chargers::new();
        let mut simulator = Simulator::new(settings.simulator.seed, settings.simulator.speed);
        simulator = simulator.in_zone(settings.history.timezone);
        if settings.seeds_demo() {
            // The demo begins with a simulated past that the live simulation continues.
            let (past, _) = simulator::past_span(settings.simulator.speed);
            simulator = simulator.starting_at(crate::model::now() - past);
        }
        chargers.insert_simulator(Arc::new(simulator));
        let mut profiles = vec![VendorProfile::native()];
        profiles.extend(VendorProfile::load_dir(&settings.vendors.dir)?);
        for profile in profiles {
            let base_url = settings.vendors.base_url(&profile.name).map(str::to_owned);
            let api = HttpChargerApi::new(profile, base_url, client.clone(), &settings.vendors);
            chargers.insert(Arc::new(api));
        }
        Ok(chargers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_page_is_named_by_its_first_line_of_text() {
        let status = |body: &str| ChargerError::Status {
            vendor: "v".into(),
            url: "https://api.example/x".into(),
            status: 502,
            retry_after: None,
            body: body.into(),
        };
        let page = "<!DOCTYPE html>\n<html>\n<head>\n  <title>502 Bad Gateway</title>\n  <style>body { color: red }</style>\n</head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>";
        assert_eq!(
            status(page).to_string(),
            "v: https://api.example/x answered HTTP 502: 502 Bad Gateway"
        );
        let untitled = "<html><head><script>var a = '<b>';</script></head><body>\n  <p>Service &amp; API   down</p></body></html>";
        assert_eq!(
            status(untitled).to_string(),
            "v: https://api.example/x answered HTTP 502: Service & API down"
        );
        assert_eq!(
            status("\n  upstream timed out\nsecond line").to_string(),
            "v: https://api.example/x answered HTTP 502: upstream timed out"
        );
        assert_eq!(
            status(r#"{"error":"bad key"}"#).to_string(),
            r#"v: https://api.example/x answered HTTP 502: {"error":"bad key"}"#
        );
        assert_eq!(
            status("  ").to_string(),
            "v: https://api.example/x answered HTTP 502"
        );
    }
}
