//! What alerts are made of: channels (where a message goes), rules (what fires one) and the
//! alert itself, each with the checks that refuse a bad one before anything is stored. How
//! rules are evaluated and alerts delivered is [`crate::alerts`].

pub mod alert;
pub mod channel;
pub mod rule;

pub use self::alert::{Alert, AlertRecord, DeliveryState, new_id};
pub use self::channel::{AllowedHosts, Channel, ChannelDraft, ChannelJson, ChannelKind};
#[cfg(feature = "openapi")]
pub use self::rule::{AllStations, StationsSchema};
pub use self::rule::{Condition, QuietHours, Rule, RuleDraft, RuleJson, RuleKind, Scope};

/// A rule's id, given by the store.
pub type RuleId = u64;

/// Longest a condition may be asked to hold before it fires: a week.
pub const MAX_MIN_SECS: i64 = 7 * 24 * 3600;

/// Most stations one rule may name (watch `all` for more).
pub const MAX_RULE_STATIONS: usize = 1_000;
