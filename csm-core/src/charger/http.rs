//! The HTTP charger adapter: one vendor profile over one shared `reqwest::Client` (its
//! connection pool is reused by every job), with connect and total timeouts and a cap on the
//! response size. One call is one attempt; the refresh engine decides about retries.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use super::profile::{Method, VendorProfile};
use super::{ChargerApi, ChargerError, Checked};
use crate::model::{Snapshot, Station};
use crate::settings::{VendorSettings, vendor_env_name};

/// The shared HTTP client: connect and total timeouts from the settings, an idle pool per host
/// as large as the refresh concurrency.
pub fn build_client(
    settings: &VendorSettings,
    concurrency: usize,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(settings.http_connect_timeout())
        .timeout(settings.http_timeout())
        .pool_max_idle_per_host(concurrency)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .user_agent(concat!("csm/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A vendor API read through a profile.
#[derive(Clone, Debug)]
pub struct HttpChargerApi {
    profile: Arc<VendorProfile>,
    base_url: Option<String>,
    client: reqwest::Client,
    max_body: usize,
    timeout: Duration,
    /// The request URL up to the last `/` before the station id, as text and parsed once:
    /// a request's URL is then resolved from its own remainder, without parsing the host again.
    url_prefix: Option<(String, reqwest::Url)>,
}

impl HttpChargerApi {
    /// An adapter for `profile`; `base_url_override` (from `CSM_VENDOR_<NAME>_BASE_URL`) wins
    /// over the profile's own `base_url`.
    pub fn new(
        profile: VendorProfile,
        base_url_override: Option<String>,
        client: reqwest::Client,
        settings: &VendorSettings,
    ) -> Self {
        let timeout = profile
            .request
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or_else(|| settings.http_timeout());
        let base_url = base_url_override
            .or_else(|| profile.base_url.clone())
            .map(|url| url.trim_end_matches('/').to_owned());
        let mut api = Self {
            profile: Arc::new(profile),
            base_url,
            client,
            max_body: settings.http_max_body_bytes,
            timeout,
            url_prefix: None,
        };
        api.url_prefix = api.url_prefix();
        api
    }

    fn url_prefix(&self) -> Option<(String, reqwest::Url)> {
        let template = &self.profile.request.url;
        let cut = template[..template.find("{station_id}")?].rfind('/')? + 1;
        let prefix = self.render("url", &template[..cut], None, false).ok()?;
        if prefix.contains("${") {
            return None;
        }
        let url = reqwest::Url::parse(&prefix).ok()?;
        (url.as_str() == prefix && url.path().ends_with('/')).then_some((prefix, url))
    }

    /// `url` resolved against the parsed prefix: the same URL a full parse gives, for less.
    /// `None` when the prefix does not apply.
    fn resolve(&self, url: &str) -> Option<reqwest::Url> {
        let (prefix, base) = self.url_prefix.as_ref()?;
        let rest = url.strip_prefix(prefix.as_str())?;
        if rest.starts_with(['/', '\\']) {
            return None;
        }
        // A `:` in the first segment would read as a scheme: `./` keeps it a path.
        let first = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if first.contains(':') {
            base.join(&format!("./{rest}")).ok()
        } else {
            base.join(rest).ok()
        }
    }

    /// The profile in use.
    pub fn profile(&self) -> &VendorProfile {
        &self.profile
    }

    fn config_error(&self, message: String) -> ChargerError {
        ChargerError::Config {
            vendor: self.profile.name.clone(),
            message,
        }
    }

    /// Fills a template. With `secrets` false, `${VAR}` references stay as written, which is
    /// the form shown in logs and errors.
    fn render(
        &self,
        field: &str,
        template: &str,
        station_id: Option<&str>,
        secrets: bool,
    ) -> Result<String, ChargerError> {
        // One pass over the template (it runs for every request): `{base_url}` (its own
        // `{station_id}` filled too), then `{station_id}`.
        let mut out = String::with_capacity(template.len() + 64);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            if let Some(after) = tail.strip_prefix("{base_url}") {
                let base = self.base_url.as_deref().ok_or_else(|| {
                    self.config_error(format!(
                        "no base URL: set CSM_VENDOR_{}_BASE_URL or base_url in the profile",
                        vendor_env_name(&self.profile.name)
                    ))
                })?;
                match station_id {
                    Some(id) if base.contains("{station_id}") => {
                        out.push_str(&base.replace("{station_id}", id));
                    }
                    _ => out.push_str(base),
                }
                rest = after;
            } else if let (Some(id), Some(after)) = (station_id, tail.strip_prefix("{station_id}"))
            {
                out.push_str(id);
                rest = after;
            } else {
                out.push('{');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        if secrets {
            while let Some(start) = out.find("${") {
                let Some(len) = out[start..].find('}') else {
                    break;
                };
                let name = out[start + 2..start + len].to_owned();
                let value = std::env::var(&name).map_err(|_| {
                    self.config_error(format!(
                        "environment variable {name} (used by {field}) is not set"
                    ))
                })?;
                out.replace_range(start..start + len + 1, &value);
            }
        }
        Ok(out)
    }

    /// The profile's request for a station's ports: the URL as shown, and the answer's bytes.
    async fn ask_ports(&self, station_id: &str) -> Result<(String, Vec<u8>), ChargerError> {
        let request = &self.profile.request;
        self.call(
            request.method,
            &request.url,
            request.body.as_deref(),
            true,
            Some(station_id),
        )
        .await
    }

    async fn call(
        &self,
        method: Method,
        url_template: &str,
        body_template: Option<&str>,
        headers: bool,
        station_id: Option<&str>,
    ) -> Result<(String, Vec<u8>), ChargerError> {
        let shown = self.render("url", url_template, station_id, false)?;
        let with_secrets;
        let url = if url_template.contains("${") {
            with_secrets = self.render("url", url_template, station_id, true)?;
            &with_secrets
        } else {
            &shown
        };
        let method = match method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut request = match self.resolve(url) {
            Some(resolved) => self.client.request(method, resolved),
            None => self.client.request(method, url),
        }
        .timeout(self.timeout);
        if headers {
            for (name, value) in &self.profile.request.headers {
                let value =
                    self.render(&format!("request.headers.{name}"), value, station_id, true)?;
                request = request.header(name, value);
            }
        }
        if let Some(body) = body_template {
            let body = self.render("body", body, station_id, true)?;
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(&shown, &e))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            // Enough of an error page to reach its title; only its first line of text is kept.
            let body = read_capped(response, 8192, true)
                .await
                .map(|bytes| super::first_text(&String::from_utf8_lossy(&bytes)))
                .unwrap_or_default();
            return Err(ChargerError::Status {
                vendor: self.profile.name.clone(),
                url: shown,
                status: status.as_u16(),
                retry_after,
                body,
            });
        }
        match read_capped(response, self.max_body, false).await {
            Ok(bytes) => Ok((shown, bytes)),
            Err(ReadError::TooLarge) => Err(ChargerError::TooLarge {
                vendor: self.profile.name.clone(),
                url: shown,
                limit: self.max_body,
            }),
            Err(ReadError::Transport(e)) => Err(self.transport_error(&shown, &e)),
        }
    }

    fn transport_error(&self, url: &str, error: &reqwest::Error) -> ChargerError {
        if error.is_timeout() {
            return ChargerError::Timeout {
                vendor: self.profile.name.clone(),
                url: url.to_owned(),
                after_ms: self.timeout.as_millis() as u64,
            };
        }
        // The innermost cause says what happened ("Connection refused"); reqwest's own text
        // would repeat the URL with its secrets filled in.
        let mut cause: &dyn std::error::Error = error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        let message = if error.is_connect() {
            format!("connection failed: {cause}")
        } else if error.is_body() || error.is_decode() {
            format!("the response broke off: {cause}")
        } else {
            cause.to_string()
        };
        ChargerError::Connect {
            vendor: self.profile.name.clone(),
            url: url.to_owned(),
            message,
        }
    }
}

enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads a body of at most `limit` bytes (or its first `limit` bytes when `truncate`).
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
    truncate: bool,
) -> Result<Vec<u8>, ReadError> {
    if !truncate
        && response
            .content_length()
            .is_some_and(|len| len > limit as u64)
    {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::with_capacity(
        response
            .content_length()
            .map_or(8 * 1024, |len| len as usize)
            .min(limit),
    );
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
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

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&Utc) - Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[async_trait]
impl ChargerApi for HttpChargerApi {
    fn vendor(&self) -> &str {
        &self.profile.name
    }

    fn endpoint(&self) -> Option<String> {
        self.base_url.clone()
    }

    async fn fetch(&self, station: &Station) -> Result<Snapshot, ChargerError> {
        let (url, bytes) = self.ask_ports(station.id.as_str()).await?;
        let observed_at = crate::model::now();
        self.profile
            .parse_response(&station.id, &url, &bytes, observed_at)
    }

    async fn inspect(&self, station_id: &str) -> Result<Checked, ChargerError> {
        let (url, bytes) = self.ask_ports(station_id).await?;
        Ok(Checked {
            inspection: self.profile.inspect(&url, &bytes),
            bytes: bytes.len(),
            url,
        })
    }

    async fn list_stations(&self) -> Result<Vec<Station>, ChargerError> {
        let Some(spec) = &self.profile.stations else {
            return self.profile.read_stations(&super::profile::Document::new());
        };
        let (url, bytes) = self
            .call(spec.method, &spec.url, spec.body.as_deref(), true, None)
            .await?;
        let body =
            super::profile::read::parse(&bytes).map_err(|e| self.profile.not_json(&url, e))?;
        self.profile.read_stations(&body)
    }

    async fn probe(&self) -> Result<(), ChargerError> {
        let base = self.render("base_url", "{base_url}", None, false)?;
        match self.client.get(&base).timeout(self.timeout).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.transport_error(&base, &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn urls_resolved_from_the_prefix_equal_a_full_parse() {
        let settings = VendorSettings::default();
        let client = build_client(&settings, 8).unwrap();
        let templates = [
            "{base_url}/api/v1/stations/{station_id}/ports",
            "{base_url}/ports?station={station_id}&x=1",
            "{base_url}/v2/{station_id}",
        ];
        for template in templates {
            let mut profile = VendorProfile::native();
            profile.request.url = template.into();
            let base = Some("http://127.0.0.1:8080/root".to_owned());
            let api = HttpChargerApi::new(profile, base, client.clone(), &settings);
            assert!(api.url_prefix.is_some(), "{template}");
            for id in ["S0001", "a:b", "..", ".", "x.y:z", "_-", "S%41", "a b"] {
                let url = api.render("url", template, Some(id), false).unwrap();
                let full = reqwest::Url::parse(&url).unwrap();
                assert_eq!(api.resolve(&url).as_ref(), Some(&full), "{template} {id}");
            }
        }
        let mut profile = VendorProfile::native();
        profile.request.url = "${HOST}/{station_id}".into();
        let api = HttpChargerApi::new(profile, None, client, &settings);
        assert!(api.url_prefix.is_none());
    }

    #[test]
    fn templates_fill_the_base_url_the_station_and_secrets() {
        let settings = VendorSettings::default();
        let client = build_client(&settings, 8).unwrap();
        let base = Some("http://h/{station_id}".to_owned());
        let api = HttpChargerApi::new(VendorProfile::native(), base, client.clone(), &settings);
        let render = |template: &str, id: Option<&str>| api.render("url", template, id, false);
        assert_eq!(
            render("{base_url}/a/{station_id}?q={x}&{", Some("S1")).unwrap(),
            "http://h/S1/a/S1?q={x}&{"
        );
        assert_eq!(
            render("{base_url}/{station_id}", None).unwrap(),
            "http://h/{station_id}/{station_id}"
        );
        assert_eq!(render("{base_url", Some("S1")).unwrap(), "{base_url");
        // Secrets are filled only when asked for, after the placeholders.
        // (`PATH` stands for a secret: every test process has it.)
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            render("{base_url}?${PATH}", Some("S2")).unwrap(),
            "http://h/S2?${PATH}"
        );
        assert_eq!(
            api.render("url", "{base_url}?${PATH}", Some("S2"), true)
                .unwrap(),
            format!("http://h/S2?{path}")
        );
        let unset = "{base_url}?${CSM_TEST_RENDER_UNSET_7F3A}";
        let error = api.render("url", unset, None, true).unwrap_err();
        assert!(
            error.to_string().contains("CSM_TEST_RENDER_UNSET_7F3A"),
            "{error}"
        );
        let no_base = HttpChargerApi::new(VendorProfile::native(), None, client, &settings);
        let error = no_base
            .render("url", "{base_url}/x", None, false)
            .unwrap_err();
        assert!(error.to_string().contains("no base URL"), "{error}");
    }
}
