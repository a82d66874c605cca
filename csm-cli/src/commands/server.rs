//! Commands that act through a running server rather than on the database: what only the
//! instance holding a charger's connection can do (a command to it, its message log). Any
//! instance of a cluster forwards them to that one.

use clap::Args;
use serde::de::DeserializeOwned;

/// Which server to ask, and the token it wants.
#[derive(Debug, Clone, Args)]
pub struct ServerFlags {
    /// The csm server to ask (any instance of a cluster).
    #[arg(
        long = "server",
        env = "CSM_SERVER_URL",
        default_value = "http://127.0.0.1:5000",
        global = true
    )]
    pub url: String,
    /// The admin token, sent as `Authorization: Bearer …`.
    #[arg(long, env = "CSM_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

impl ServerFlags {
    /// The server's answer to `request` (a path under the server), read as `T`; a refusal
    /// says the server's status and its reason.
    pub async fn ask<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(40))
            .build()?;
        let mut request = client.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the csm server at {}: {e} (set --server or CSM_SERVER_URL)",
                self.url
            )
        })?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            let reason = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or(text);
            let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
                " (give the token with --token or CSM_ADMIN_TOKEN)"
            } else {
                ""
            };
            anyhow::bail!("the server answered {status}: {reason}{hint}");
        }
        serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!("the server at {url} sent an answer csm-cli cannot read: {e}")
        })
    }
}
