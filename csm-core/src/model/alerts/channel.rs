//! Alert channels: where a message goes (a signed webhook, the Feishu, DingTalk and WeCom group
//! bots), as given by a user, as kept and as answered.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::secret::{Secret, redact_target};

/// Where a channel's messages go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ChannelKind {
    /// A JSON POST signed with HMAC-SHA256.
    Webhook,
    /// A Feishu / Lark custom group bot.
    Feishu,
    /// A DingTalk custom group robot.
    Dingtalk,
    /// A WeCom group robot.
    Wecom,
}

impl ChannelKind {
    /// Every kind.
    pub const ALL: [ChannelKind; 4] = [
        ChannelKind::Webhook,
        ChannelKind::Feishu,
        ChannelKind::Dingtalk,
        ChannelKind::Wecom,
    ];

    /// The name used in JSON, the CLI and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Feishu => "feishu",
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Wecom => "wecom",
        }
    }

    /// The kind named `name`, or what is wrong with it.
    pub fn parse(name: &str) -> Result<Self, InvalidInput> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| {
                InvalidInput::new(
                    "kind",
                    format!(
                        "{name:?} is not a channel kind; use webhook, feishu, dingtalk or wecom"
                    ),
                )
            })
    }

    /// Messages a minute the platform accepts from one bot (the group bots allow about 20;
    /// a webhook receiver is a program, allowed ten a second); beyond it alerts are sent
    /// together as one digest.
    pub fn per_minute(self) -> u32 {
        match self {
            ChannelKind::Webhook => 600,
            ChannelKind::Feishu | ChannelKind::Dingtalk | ChannelKind::Wecom => 20,
        }
    }
}

/// The hosts alert channels may post to (`CSM_ALERT_HOSTS`); none named: any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedHosts(pub Vec<String>);

impl AllowedHosts {
    /// Whether a channel may post to `url`'s host.
    pub fn allows(&self, url: &str) -> bool {
        self.0.is_empty()
            || url::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                .is_some_and(|host| {
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    self.0.iter().any(|a| a.eq_ignore_ascii_case(host))
                })
    }
}

/// Where alerts are sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Channel {
    /// The channel's name (what rules name).
    pub name: String,
    /// What it is.
    pub kind: ChannelKind,
    /// Where messages are posted (bot URLs carry their token: shown only redacted).
    pub url: String,
    /// Webhook: the HMAC key; Feishu and DingTalk: the signing secret of the bot's
    /// signed-secret mode; WeCom: unused.
    pub secret: Option<Secret>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &redact_target(&self.url))
            .field("secret", &self.secret)
            .finish()
    }
}

/// A channel as given by a user: `{"name", "kind", "url", "secret"}`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelDraft {
    /// 1–64 letters, digits, `-` or `_`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$"))]
    pub name: String,
    /// `webhook`, `feishu`, `dingtalk` or `wecom`.
    #[cfg_attr(feature = "openapi", schema(value_type = ChannelKind))]
    pub kind: String,
    /// `http://` or `https://` URL to post to (a bot's webhook address with its token).
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 2000))]
    pub url: String,
    /// The signing secret: required for a webhook, the signed-secret mode of a Feishu or
    /// DingTalk bot (optional; never answered back).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 512))]
    pub secret: Option<String>,
}

impl fmt::Debug for ChannelDraft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelDraft")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &redact_target(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ChannelDraft {
    /// The channel, or what is wrong with the draft (`allowed`: where channels may post).
    pub fn validate(self, allowed: &AllowedHosts) -> Result<Channel, InvalidInput> {
        check_name(&self.name)?;
        let kind = ChannelKind::parse(&self.kind)?;
        let url = url::Url::parse(&self.url).map_err(|e| {
            InvalidInput::new(
                "url",
                format!(
                    "{:?} is not a URL ({e}); give the bot's or receiver's full http(s):// address",
                    redact_target(&self.url)
                ),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(InvalidInput::new(
                "url",
                format!(
                    "{:?} is not an http:// or https:// address with a host",
                    redact_target(&self.url)
                ),
            ));
        }
        if !allowed.allows(&self.url) {
            return Err(InvalidInput::new(
                "url",
                format!(
                    "{:?} is not on a host alerts may be sent to (CSM_ALERT_HOSTS: {})",
                    redact_target(&self.url),
                    allowed.0.join(", ")
                ),
            ));
        }
        let secret = match self.secret {
            Some(secret) if secret.is_empty() => None,
            Some(secret) if secret.len() > 512 => {
                return Err(InvalidInput::new("secret", "is longer than 512 bytes"));
            }
            other => other.map(Secret::new),
        };
        if kind == ChannelKind::Webhook && secret.is_none() {
            return Err(InvalidInput::new(
                "secret",
                "is required for a webhook channel: the receiver checks X-Csm-Signature with it",
            ));
        }
        Ok(Channel {
            name: self.name,
            kind,
            url: self.url,
            secret,
        })
    }
}

/// A channel as answered (`GET /api/alerts/channels`, `csm-cli alerts channels list`): the URL
/// redacted, the secret only said to be there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelJson {
    /// The channel's name.
    pub name: String,
    /// `webhook`, `feishu`, `dingtalk` or `wecom`.
    pub kind: ChannelKind,
    /// The URL with its tokens hidden.
    pub url: String,
    /// Whether a secret is set.
    pub has_secret: bool,
}

impl From<&Channel> for ChannelJson {
    fn from(channel: &Channel) -> Self {
        Self {
            name: channel.name.clone(),
            kind: channel.kind,
            url: redact_target(&channel.url),
            has_secret: channel.secret.is_some(),
        }
    }
}

/// Checks a channel's name: 1–64 letters, digits, `-` or `_`.
pub(crate) fn check_name(name: &str) -> Result<(), InvalidInput> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fine {
        Ok(())
    } else {
        Err(InvalidInput::new(
            "name",
            format!("{name:?} is not a channel name: use 1–64 letters, digits, '-' or '_'"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_show() {
        let channel = ChannelDraft {
            name: "ops".into(),
            kind: "dingtalk".into(),
            url: "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef0123".into(),
            secret: Some("SECabcdef".into()),
        }
        .validate(&AllowedHosts::default())
        .unwrap();
        let shown = format!("{channel:?} {:?}", ChannelJson::from(&channel));
        assert!(!shown.contains("0123456789abcdef0123"), "{shown}");
        assert!(!shown.contains("SECabcdef"), "{shown}");
        assert!(shown.contains("access_token=0123***"), "{shown}");
    }

    #[test]
    fn only_allowed_hosts_take_channels() {
        let allowed = AllowedHosts(vec!["oapi.dingtalk.com".into(), "::1".into()]);
        assert!(allowed.allows("https://OAPI.dingtalk.com/robot/send"));
        assert!(allowed.allows("http://[::1]:8080/hook"));
        assert!(!allowed.allows("https://evil.example/robot/send"));
        assert!(AllowedHosts::default().allows("https://anywhere.example/"));
    }
}
