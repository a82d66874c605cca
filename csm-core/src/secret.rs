//! Secrets and how they are shown: [`Secret`] carries every secret csm holds (the admin token,
//! alert channels' signing secrets, the database URL with its password), and neither its
//! `Debug` nor its `Display` shows it; [`redact_url`] and [`redact_target`] are the two ways a
//! URL that holds one is written for logs, errors and answers. Comparing a secret a client gave
//! with the one csm holds takes the same time whatever they share ([`Secret::matches`]).

use std::fmt;

use subtle::ConstantTimeEq;

/// A secret: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for signing, connecting or comparing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, compared in constant time.
    pub fn matches(&self, given: &str) -> bool {
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Self(secret.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Removes the password of a URL (`mysql://root:secret@db/csm` → `mysql://root:***@db/csm`)
/// so it can be logged or shown in an error.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Setting a password only fails for URLs that cannot have one.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        // Not a URL: show only the part before any `@`, which is where credentials would be.
        Err(_) => match raw.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => raw.to_owned(),
        },
    }
}

/// A URL with what could be a token hidden: the password, every query value and any path
/// segment long enough to be one (bot URLs end in their token) keep only their first 4
/// characters.
pub fn redact_target(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return "<not a URL>".into();
    };
    let hide = |value: &str| {
        let shown: String = value.chars().take(4).collect();
        format!("{shown}***")
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    let segments: Option<Vec<String>> = url.path_segments().map(|segments| {
        segments
            .map(|s| if s.len() >= 16 { hide(s) } else { s.to_owned() })
            .collect()
    });
    if let Some(segments) = segments {
        url.set_path(&segments.join("/"));
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), hide(&v)))
        .collect();
    if !pairs.is_empty() {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows() {
        let secret = Secret::new("hunter2-token");
        assert_eq!(format!("{secret:?} {secret}"), "Secret(***) ***");
        assert!(secret.matches("hunter2-token"));
        assert!(!secret.matches("hunter2-toke") && !secret.matches("hunter2-token "));
    }

    #[test]
    fn passwords_are_removed_from_urls() {
        assert_eq!(
            redact_url("mysql://root:hunter2@127.0.0.1:3306/csm"),
            "mysql://root:***@127.0.0.1:3306/csm"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("not a url:pw@host"), "***@host");
    }

    #[test]
    fn tokens_in_bot_urls_are_cut() {
        assert_eq!(
            redact_target(
                "https://open.feishu.cn/open-apis/bot/v2/hook/3f2a9c1e-aaaa-bbbb-cccc-1234567890ab"
            ),
            "https://open.feishu.cn/open-apis/bot/v2/hook/3f2a***"
        );
        assert_eq!(
            redact_target("https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef0123"),
            "https://oapi.dingtalk.com/robot/send?access_token=0123***"
        );
    }
}
