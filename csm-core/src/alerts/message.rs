//! What is sent to each kind of channel: the alert's text (Chinese), the request each platform
//! documents (body, signature) and how its answer is read.
//!
//! - webhook: the alert as JSON; `X-Csm-Delivery` (the alert's id), `X-Csm-Timestamp` (Unix
//!   seconds) and `X-Csm-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">` keyed
//!   with the channel's secret. A digest is `{"id", "kind": "digest", "count", "alerts",
//!   "text"}`.
//! - Feishu / Lark custom bot: `{"msg_type": "text", "content": {"text"}}`; in signed-secret
//!   mode also `timestamp` (seconds, as text) and `sign`: Base64 of HMAC-SHA256 keyed with
//!   `"{timestamp}\n{secret}"` over the empty message. Success is `code` 0.
//! - DingTalk custom robot: `{"msgtype": "text", "text": {"content"}}`; signed mode appends
//!   `&timestamp=<ms>&sign=<URL-encoded Base64 of HMAC-SHA256 keyed with the secret over
//!   "{timestamp}\n{secret}">` to the URL. Success is `errcode` 0.
//! - WeCom group robot: `{"msgtype": "text", "text": {"content"}}` (at most 2,048 bytes).
//!   Success is `errcode` 0.
//!
//! The bots answer errors with HTTP 200 and a code in the body: the body decides.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::model::alerts::{Alert, Channel, ChannelKind, RuleKind};

/// Most bytes of text one message carries on each platform (WeCom's text limit is 2,048 bytes,
/// Feishu's whole request 20 KB); a digest lists what fits and counts the rest.
pub fn text_limit(kind: ChannelKind) -> usize {
    match kind {
        ChannelKind::Wecom => 2_000,
        ChannelKind::Feishu | ChannelKind::Dingtalk => 15_000,
        ChannelKind::Webhook => 60_000,
    }
}

/// The text of an alert.
pub fn text(alert: &Alert, detail: Option<&str>) -> String {
    let station = if alert.station_name.is_empty() || alert.station_name == alert.station_id {
        alert.station_id.clone()
    } else {
        format!("{}（{}）", alert.station_name, alert.station_id)
    };
    let port = alert.port.map(|p| format!(" {p} 号口")).unwrap_or_default();
    let minutes = (alert.at - alert.since).num_minutes().max(0);
    let detail = detail.unwrap_or_default();
    if alert.resolved {
        let what = match alert.kind {
            RuleKind::PortFree => "已不再空闲",
            RuleKind::FreePorts => "空闲端口已不足",
            RuleKind::Fault => "故障已恢复",
            RuleKind::Offline => "已恢复在线",
            RuleKind::Voltage => "电压已恢复正常",
        };
        return format!("【已恢复】{station}{port}{what}（持续 {minutes} 分钟）");
    }
    match alert.kind {
        RuleKind::PortFree => format!("【空闲提醒】{station}{port}现在空闲，可以去充电了"),
        RuleKind::FreePorts => format!("【空闲提醒】{station} 现有 {detail} 个端口空闲"),
        RuleKind::Fault => format!("【故障】{station}{port}故障已持续 {minutes} 分钟"),
        RuleKind::Offline => format!("【离线】{station} 已离线 {minutes} 分钟{detail}"),
        RuleKind::Voltage => {
            format!("【电压异常】{station}{port}电压 {detail}，已持续 {minutes} 分钟")
        }
    }
}

/// The text of a digest: one line an alert, as many as fit in `limit` bytes, and a count of
/// the rest.
pub fn digest_text(alerts: &[Alert], limit: usize) -> String {
    let mut text = format!("【汇总】{} 条提醒", alerts.len());
    for (shown, alert) in alerts.iter().enumerate() {
        let rest = alerts.len() - shown;
        let line = format!("\n· {}", alert.text);
        let tail = format!("\n…… 另有 {rest} 条");
        if text.len() + line.len() + tail.len() > limit && rest > 0 {
            text.push_str(&format!("\n…… 另有 {rest} 条"));
            return text;
        }
        text.push_str(&line);
    }
    text
}

/// One HTTP request to make.
#[derive(Clone, Debug)]
pub struct Request {
    /// Where (with DingTalk's signature in the query).
    pub url: String,
    /// Headers besides `Content-Type: application/json`.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: String,
}

/// What is sent: one alert, or a digest of several under its own id.
#[derive(Clone, Copy, Debug)]
pub enum Message<'a> {
    /// One alert.
    One(&'a Alert),
    /// Several at once, as one message.
    Digest {
        /// The digest's id (`X-Csm-Delivery`).
        id: &'a str,
        /// The alerts.
        alerts: &'a [Alert],
    },
}

impl Message<'_> {
    /// The id the receiver sees.
    pub fn id(&self) -> &str {
        match self {
            Message::One(alert) => &alert.id,
            Message::Digest { id, .. } => id,
        }
    }
}

/// The request that sends `message` to `channel` at `now`.
pub fn request(channel: &Channel, message: Message<'_>, now: DateTime<Utc>) -> Request {
    let text = match message {
        Message::One(alert) => alert.text.clone(),
        Message::Digest { alerts, .. } => digest_text(alerts, text_limit(channel.kind)),
    };
    let secret = channel.secret.as_ref().map(|s| s.expose());
    match channel.kind {
        ChannelKind::Webhook => {
            let body = match message {
                Message::One(alert) => serde_json::to_string(alert),
                Message::Digest { id, alerts } => serde_json::to_string(&serde_json::json!({
                    "id": id,
                    "kind": "digest",
                    "count": alerts.len(),
                    "alerts": alerts,
                    "text": text,
                })),
            }
            .unwrap_or_default();
            let timestamp = now.timestamp().to_string();
            let mut headers = vec![
                ("X-Csm-Delivery", message.id().to_owned()),
                ("X-Csm-Timestamp", timestamp.clone()),
            ];
            if let Some(secret) = secret {
                headers.push((
                    "X-Csm-Signature",
                    format!("sha256={}", webhook_signature(secret, &timestamp, &body)),
                ));
            }
            Request {
                url: channel.url.clone(),
                headers,
                body,
            }
        }
        ChannelKind::Feishu => {
            let mut body = serde_json::json!({
                "msg_type": "text",
                "content": { "text": text },
            });
            if let Some(secret) = secret {
                let timestamp = now.timestamp();
                body["timestamp"] = timestamp.to_string().into();
                body["sign"] = feishu_sign(timestamp, secret).into();
            }
            Request {
                url: channel.url.clone(),
                headers: Vec::new(),
                body: body.to_string(),
            }
        }
        ChannelKind::Dingtalk => {
            let mut url = channel.url.clone();
            if let Some(secret) = secret {
                let timestamp = now.timestamp_millis();
                let sign = dingtalk_sign(timestamp, secret);
                let encoded: String =
                    url::form_urlencoded::byte_serialize(sign.as_bytes()).collect();
                let joiner = if url.contains('?') { '&' } else { '?' };
                url = format!("{url}{joiner}timestamp={timestamp}&sign={encoded}");
            }
            Request {
                url,
                headers: Vec::new(),
                body: serde_json::json!({"msgtype": "text", "text": {"content": text}}).to_string(),
            }
        }
        ChannelKind::Wecom => Request {
            url: channel.url.clone(),
            headers: Vec::new(),
            body: serde_json::json!({"msgtype": "text", "text": {"content": text}}).to_string(),
        },
    }
}

/// Hex HMAC-SHA256 of `"{timestamp}.{body}"` keyed with the secret (`X-Csm-Signature`).
pub fn webhook_signature(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = hmac_sha256(secret.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Feishu's `sign`: Base64 of HMAC-SHA256 keyed with `"{timestamp}\n{secret}"` over nothing.
pub fn feishu_sign(timestamp: i64, secret: &str) -> String {
    let mac = hmac_sha256(format!("{timestamp}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// DingTalk's `sign` before URL encoding: Base64 of HMAC-SHA256 keyed with the secret over
/// `"{timestamp}\n{secret}"` (timestamp in milliseconds).
pub fn dingtalk_sign(timestamp_ms: i64, secret: &str) -> String {
    let mut mac = hmac_sha256(secret.as_bytes());
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length")
}

/// How an answer reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Accepted.
    Accepted,
    /// Worth trying again (5xx, 429, a bot's "too fast"), after `retry_after` when it said.
    Retry {
        /// What the platform said.
        message: String,
        /// Its `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// Refused for good (4xx, a bot's error code): the platform's message.
    Refused(String),
}

/// Reads a platform's answer: its HTTP status, `Retry-After` and body.
pub fn read_answer(kind: ChannelKind, status: u16, retry_after: Option<u64>, body: &str) -> Answer {
    let short: String = body.chars().take(300).collect();
    if status == 429 || status >= 500 {
        return Answer::Retry {
            message: format!("HTTP {status}: {short}"),
            retry_after,
        };
    }
    if !(200..300).contains(&status) && kind == ChannelKind::Webhook {
        return Answer::Refused(format!("HTTP {status}: {short}"));
    }
    if kind == ChannelKind::Webhook {
        return Answer::Accepted;
    }
    let json: serde_json::Value = match serde_json::from_str(body) {
        Ok(json) => json,
        Err(_) if (200..300).contains(&status) => {
            return Answer::Refused(format!(
                "HTTP {status}, an answer that is not the bot's JSON: {short}"
            ));
        }
        Err(_) => return Answer::Refused(format!("HTTP {status}: {short}")),
    };
    let (code, message) = match kind {
        ChannelKind::Feishu => (
            json.get("code")
                .or_else(|| json.get("StatusCode"))
                .and_then(serde_json::Value::as_i64),
            json.get("msg")
                .or_else(|| json.get("StatusMessage"))
                .and_then(serde_json::Value::as_str),
        ),
        _ => (
            json.get("errcode").and_then(serde_json::Value::as_i64),
            json.get("errmsg").and_then(serde_json::Value::as_str),
        ),
    };
    let message = message.unwrap_or_default();
    match code {
        Some(0) if (200..300).contains(&status) => Answer::Accepted,
        // Too many messages: Feishu 11232 (and 9499 "too many request"), DingTalk 130101,
        // WeCom 45009.
        Some(11232 | 130101 | 45009) => Answer::Retry {
            message: format!(
                "{} {code:?}: {message}",
                kind.as_str(),
                code = code.unwrap_or_default()
            ),
            retry_after: retry_after.or(Some(60)),
        },
        Some(9499) if message.contains("too many") => Answer::Retry {
            message: format!("feishu 9499: {message}"),
            retry_after: retry_after.or(Some(60)),
        },
        Some(code) => Answer::Refused(format!("{} error {code}: {message}", kind.as_str())),
        None => Answer::Refused(format!(
            "HTTP {status}, an answer without the bot's code: {short}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    // Known answers computed from each platform's documented algorithm with Python's hmac and
    // checked with `openssl dgst -sha256 -hmac`; the Feishu one with the inputs of Feishu's own
    // sample code ("demo", 1599360473).
    #[test]
    fn signatures_match_the_platforms_documented_algorithms() {
        assert_eq!(
            feishu_sign(1599360473, "demo"),
            "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="
        );
        assert_eq!(
            feishu_sign(1599360473, "demo-secret"),
            "3/MaVZ8JLIy4TUG+7KSFJqvUkTKd+HWY8g+56DZWq8s="
        );
        assert_eq!(
            dingtalk_sign(1599360473000, "SEC-demo-secret"),
            "M5OkuWgj8L+nHzTqLdsI+H8bJaTIPUOLkFee5FsbXx0="
        );
        let channel = Channel {
            name: "d".into(),
            kind: ChannelKind::Dingtalk,
            url: "https://oapi.dingtalk.com/robot/send?access_token=abc".into(),
            secret: Some(Secret::new("SEC-demo-secret")),
        };
        let alert = sample();
        let at = DateTime::from_timestamp_millis(1599360473000).unwrap();
        let sent = request(&channel, Message::One(&alert), at);
        assert_eq!(
            sent.url,
            "https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1599360473000&sign=M5OkuWgj8L%2BnHzTqLdsI%2BH8bJaTIPUOLkFee5FsbXx0%3D"
        );
    }

    fn sample() -> Alert {
        let at = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        let mut alert = Alert {
            id: "0123456789abcdef0123456789abcdef".into(),
            rule: 7,
            kind: RuleKind::Fault,
            resolved: false,
            station_id: "S0001".into(),
            station_name: "东区 3 号桩".into(),
            port: Some(4),
            status: "fault".into(),
            since: at - chrono::TimeDelta::minutes(12),
            at,
            text: String::new(),
        };
        alert.text = text(&alert, None);
        alert
    }

    #[test]
    fn texts_say_what_where_and_how_long() {
        let alert = sample();
        assert_eq!(
            alert.text,
            "【故障】东区 3 号桩（S0001） 4 号口故障已持续 12 分钟"
        );
        let many: Vec<Alert> = (0..300).map(|_| sample()).collect();
        let digest = digest_text(&many, text_limit(ChannelKind::Wecom));
        assert!(digest.len() <= 2_000, "{}", digest.len());
        assert!(digest.starts_with("【汇总】300 条提醒"));
        assert!(digest.contains("另有"), "{digest}");
    }

    #[test]
    fn bot_answers_decide_by_their_code() {
        let ok = read_answer(
            ChannelKind::Feishu,
            200,
            None,
            r#"{"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"}"#,
        );
        assert_eq!(ok, Answer::Accepted);
        let sign = read_answer(
            ChannelKind::Feishu,
            200,
            None,
            r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#,
        );
        assert!(
            matches!(sign, Answer::Refused(m) if m.contains("19021") && m.contains("sign match fail"))
        );
        let fast = read_answer(
            ChannelKind::Dingtalk,
            200,
            None,
            r#"{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}"#,
        );
        assert!(matches!(fast, Answer::Retry { .. }));
        let key = read_answer(
            ChannelKind::Wecom,
            200,
            None,
            r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#,
        );
        assert!(matches!(key, Answer::Refused(m) if m.contains("93000")));
        assert!(matches!(
            read_answer(ChannelKind::Webhook, 503, Some(7), ""),
            Answer::Retry {
                retry_after: Some(7),
                ..
            }
        ));
        assert!(matches!(
            read_answer(ChannelKind::Webhook, 404, None, "no"),
            Answer::Refused(_)
        ));
    }
}
