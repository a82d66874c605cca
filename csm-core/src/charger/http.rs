//! The HTTP charger adapter: one vendor profile over the shared [`VendorClient`] (its
//! connection pool is reused by every job), with a total timeout and a cap on the response
//! size. One call is one attempt; the refresh engine decides about retries.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use hyper::header::{self, HeaderName, HeaderValue};

use super::client::{self, Ask, ReadError, SendError, VendorClient};
use super::profile::{Method, VendorProfile};
use super::{ChargerApi, ChargerError, Checked};
use crate::model::{Snapshot, Station};
use crate::settings::{VendorSettings, vendor_env_name};

/// A vendor API read through a profile.
#[derive(Clone, Debug)]
pub struct HttpChargerApi {
    profile: Arc<VendorProfile>,
    base_url: Option<String>,
    client: VendorClient,
    max_body: usize,
    timeout: Duration,
}

impl HttpChargerApi {
    /// An adapter for `profile`; `base_url_override` (from `CSM_VENDOR_<NAME>_BASE_URL`) wins
    /// over the profile's own `base_url`.
    pub fn new(
        profile: VendorProfile,
        base_url_override: Option<String>,
        client: VendorClient,
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
        Self {
            profile: Arc::new(profile),
            base_url,
            client,
            max_body: settings.http_max_body_bytes,
            timeout,
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
            Method::Get => hyper::Method::GET,
            Method::Post => hyper::Method::POST,
        };
        let mut ask = Ask {
            method,
            url,
            headers: Vec::new(),
            json: None,
        };
        if headers {
            for (name, value) in &self.profile.request.headers {
                let field = format!("request.headers.{name}");
                let value = self.render(&field, value, station_id, true)?;
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    self.config_error(format!("{field}: {name:?} is not a header name"))
                })?;
                let value = HeaderValue::from_str(&value).map_err(|_| {
                    self.config_error(format!(
                        "{field}: its value holds a character a header cannot carry (a line break or a control character)"
                    ))
                })?;
                ask.headers.push((name, value));
            }
        }
        if let Some(body) = body_template {
            ask.json = Some(self.render("body", body, station_id, true)?);
        }
        let exchange = async {
            let response = self
                .client
                .send(ask)
                .await
                .map_err(|e| self.send_error(&shown, e))?;
            let status = response.status();
            if !status.is_success() {
                let retry_after = response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                // Enough of an error page to reach its title; only its first line of text is
                // kept.
                let body = client::read_body(response, 8192, true)
                    .await
                    .map(|bytes| super::first_text(&String::from_utf8_lossy(&bytes)))
                    .unwrap_or_default();
                return Err(ChargerError::Status {
                    vendor: self.profile.name.clone(),
                    url: shown.clone(),
                    status: status.as_u16(),
                    retry_after,
                    body,
                });
            }
            match client::read_body(response, self.max_body, false).await {
                Ok(bytes) => Ok(bytes),
                Err(ReadError::TooLarge) => Err(ChargerError::TooLarge {
                    vendor: self.profile.name.clone(),
                    url: shown.clone(),
                    limit: self.max_body,
                }),
                Err(ReadError::Broken(e)) => Err(self.send_error(&shown, e)),
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(bytes)) => Ok((shown, bytes)),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(self.timed_out(&shown, self.timeout)),
        }
    }

    fn timed_out(&self, url: &str, after: Duration) -> ChargerError {
        ChargerError::Timeout {
            vendor: self.profile.name.clone(),
            url: url.to_owned(),
            after_ms: after.as_millis() as u64,
        }
    }

    /// The error of a request that got no answer, with the URL as shown (secrets not filled
    /// in: the client's own text would carry them).
    fn send_error(&self, url: &str, error: SendError) -> ChargerError {
        match error {
            SendError::ConnectTimeout(after) => self.timed_out(url, after),
            SendError::BadUrl(reason) => {
                self.config_error(format!("the request URL {url} is not usable: {reason}"))
            }
            other => ChargerError::Connect {
                vendor: self.profile.name.clone(),
                url: url.to_owned(),
                message: other.to_string(),
            },
        }
    }
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
        let ask = Ask {
            method: hyper::Method::GET,
            url: &base,
            headers: Vec::new(),
            json: None,
        };
        match tokio::time::timeout(self.timeout, self.client.send(ask)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(self.send_error(&base, error)),
            Err(_) => Err(self.timed_out(&base, self.timeout)),
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
    fn templates_fill_the_base_url_the_station_and_secrets() {
        let settings = VendorSettings::default();
        let client = VendorClient::new(&settings, 8).unwrap();
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
