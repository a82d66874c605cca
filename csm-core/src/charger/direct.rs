//! Reading a response straight from its text. [`VendorProfile::parse_response`] builds the
//! document's tree and then looks every field of every port up by its pointer; a
//! [`ResponsePlan`] walks the text once instead, keeping only the success flag and the fields
//! of the port list, and hands them to the same code that turns values into readings.
//!
//! The plan only takes the common shape: the flag and the list reached through object keys,
//! fields one key deep in each element. It gives up on anything out of the ordinary (text that
//! is not JSON, a failed flag, a mismatch, a duplicate port): the tree reading of the same text
//! then gives its answer, so errors and their wording are the tree reading's own. Tests hold
//! both readings to the same result on arbitrary documents and profiles.

use chrono::{DateTime, Utc};

use super::ChargerError;
use super::json::{Json, Reader};
use super::profile::{At, ElementKind, FIELDS, PortList, VendorProfile};
use crate::model::{PortReading, Snapshot, StationId};

/// What a profile reads from a response, prepared for reading it from the text.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponsePlan {
    /// Keys leading to the success flag, if the profile has one.
    success: Option<Vec<String>>,
    /// Keys leading to the port list.
    ports: Vec<String>,
    /// Key of each field of an object element, in the order of `FieldsSpec::pointers`.
    fields: [Option<String>; FIELDS],
}

impl ResponsePlan {
    /// A plan for `profile`, or `None` when its pointers need the tree: one that is empty,
    /// passes through a position in an array, lies on the way to another, or a field more than
    /// one key deep.
    pub fn new(profile: &VendorProfile) -> Option<Self> {
        let success = match &profile.success {
            Some(check) => Some(keys(&check.pointer)?),
            None => None,
        };
        let ports = keys(&profile.ports.pointer)?;
        if let Some(success) = &success
            && (ports.starts_with(success) || success.starts_with(&ports))
        {
            return None;
        }
        let mut fields: [Option<String>; FIELDS] = Default::default();
        if profile.ports.element == ElementKind::Object {
            for (slot, pointer) in fields.iter_mut().zip(profile.ports.fields.pointers()) {
                let Some(pointer) = pointer else { continue };
                let [key] = keys(pointer)?.try_into().ok()?;
                *slot = Some(key);
            }
            let named: Vec<&String> = fields.iter().flatten().collect();
            if (1..named.len()).any(|i| named[..i].contains(&named[i])) {
                return None;
            }
        }
        Some(Self {
            success,
            ports,
            fields,
        })
    }

    /// [`VendorProfile::parse_response`], read from the text when it can be and from the tree
    /// otherwise; the result is the same either way.
    pub fn parse_response(
        &self,
        profile: &VendorProfile,
        station_id: &StationId,
        url: &str,
        bytes: &[u8],
        observed_at: DateTime<Utc>,
    ) -> Result<Snapshot, ChargerError> {
        match self.read(profile, bytes) {
            Some(ports) => Ok(Snapshot {
                station_id: station_id.clone(),
                observed_at,
                ports,
            }),
            None => profile.parse_response(station_id, url, bytes, observed_at),
        }
    }

    /// The ports of a response, read from its text; `None` when the tree reading must answer.
    pub fn read(&self, profile: &VendorProfile, bytes: &[u8]) -> Option<Vec<PortReading>> {
        let mut reader = Reader::new(bytes)?;
        let mut found = Found::default();
        let targets = if self.success.is_some() {
            SUCCESS | PORTS
        } else {
            PORTS
        };
        self.walk(&mut reader, profile, 0, targets, &mut found)?;
        if !reader.at_end() || !profile.succeeded(found.success.as_ref()) {
            return None;
        }
        found.ports
    }

    fn path(&self, target: u8) -> &[String] {
        match target {
            SUCCESS => self.success.as_deref().unwrap_or_default(),
            _ => &self.ports,
        }
    }

    /// Reads the value under the reader, `depth` keys down the paths of `targets` (a set of
    /// `SUCCESS` and `PORTS`).
    fn walk<'a>(
        &self,
        reader: &mut Reader<'a>,
        profile: &VendorProfile,
        depth: usize,
        targets: u8,
        found: &mut Found<'a>,
    ) -> Option<()> {
        // No path lies on the way to another, so a path that ends here is the only target.
        for target in [SUCCESS, PORTS] {
            if targets & target != 0 && self.path(target).len() == depth {
                if target == SUCCESS {
                    found.success = Some(reader.value()?);
                } else {
                    found.ports = Some(self.ports(reader, profile)?);
                }
                return Some(());
            }
        }
        if reader.object()? {
            return Some(());
        }
        // A pointer takes the first member of a name; later ones are stepped over.
        let mut taken = 0;
        loop {
            let key = reader.key()?;
            let mut next = 0;
            for target in [SUCCESS, PORTS] {
                if targets & !taken & target != 0 && self.path(target)[depth] == key {
                    next |= target;
                }
            }
            taken |= next;
            if next == 0 {
                reader.skip()?;
            } else {
                self.walk(reader, profile, depth + 1, next, found)?;
            }
            if reader.object_next()? {
                return Some(());
            }
        }
    }

    /// The port list under the reader.
    fn ports(&self, reader: &mut Reader<'_>, profile: &VendorProfile) -> Option<Vec<PortReading>> {
        let spec = &profile.ports;
        let mut ports = PortList::with_capacity(16);
        if reader.array()? {
            return Some(ports.finish());
        }
        let mut index = 0;
        loop {
            let at = At {
                list: &spec.pointer,
                index,
            };
            if index < spec.skip {
                reader.skip()?;
            } else {
                let reading = match spec.element {
                    ElementKind::Code => profile.code_reading(&reader.value()?, &at).ok()?,
                    ElementKind::Object => self.element(reader, profile, &at)?,
                };
                ports.push(profile, &at, reading).ok()?;
            }
            index += 1;
            if reader.array_next()? {
                return Some(ports.finish());
            }
        }
    }

    /// One object element under the reader: its fields are kept, the rest stepped over.
    fn element(
        &self,
        reader: &mut Reader<'_>,
        profile: &VendorProfile,
        at: &At<'_>,
    ) -> Option<PortReading> {
        let mut values: [Option<Json<'_>>; FIELDS] = Default::default();
        if !reader.object()? {
            loop {
                let key = reader.key()?;
                let slot = self.fields.iter().zip(&values).position(|(field, value)| {
                    value.is_none() && field.as_deref() == Some(key.as_ref())
                });
                match slot {
                    Some(slot) => values[slot] = Some(reader.value()?),
                    None => reader.skip()?,
                }
                if reader.object_next()? {
                    break;
                }
            }
        }
        profile
            .object_reading(&values.each_ref().map(Option::as_ref), at)
            .ok()
    }
}

const SUCCESS: u8 = 1;
const PORTS: u8 = 2;

/// What the walk found.
#[derive(Default)]
struct Found<'a> {
    success: Option<Json<'a>>,
    ports: Option<Vec<PortReading>>,
}

/// The keys of an absolute pointer, unescaped; `None` for the empty pointer (the whole
/// document) and for a token that could be a position in an array.
fn keys(pointer: &str) -> Option<Vec<String>> {
    let rest = pointer.strip_prefix('/')?;
    rest.split('/')
        .map(|raw| {
            let key = raw.replace("~1", "/").replace("~0", "~");
            key.parse::<usize>().is_err().then_some(key)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use serde_json::{Value, json};

    use super::*;
    use crate::charger::profile::{
        FieldsSpec, NumberField, PortsSpec, StatusMap, SuccessCheck, TimeField, TimeFormat,
    };
    use crate::model::PortStatus;

    /// A document written out by hand, so that objects can repeat a key.
    #[derive(Clone, Debug)]
    enum Doc {
        Leaf(Value),
        Array(Vec<Doc>),
        Object(Vec<(String, Doc)>),
    }

    impl Doc {
        fn write(&self, out: &mut String, spaced: bool) {
            let gap = if spaced { " \n" } else { "" };
            match self {
                Doc::Leaf(value) => out.push_str(&value.to_string()),
                Doc::Array(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(gap);
                        item.write(out, spaced);
                    }
                    out.push_str(gap);
                    out.push(']');
                }
                Doc::Object(members) => {
                    out.push('{');
                    for (i, (key, value)) in members.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(gap);
                        out.push_str(&Value::String(key.clone()).to_string());
                        out.push(':');
                        out.push_str(gap);
                        value.write(out, spaced);
                    }
                    out.push_str(gap);
                    out.push('}');
                }
            }
        }
    }

    const KEYS: &str = "(n|s|v|p|e|t|x|st~atus|ok|code|data|ports)";

    fn leaf() -> impl Strategy<Value = Doc> {
        prop_oneof![
            4 => (0u64..14).prop_map(|n| Doc::Leaf(json!(n))),
            2 => (-5.0..400.0f64).prop_map(|f| Doc::Leaf(json!(f))),
            2 => "(0|1|2|10|12| 3 |1.5|x|)".prop_map(|s| Doc::Leaf(Value::String(s))),
            1 => (1_700_000_000u64..1_800_000_000).prop_map(|n| Doc::Leaf(json!(n))),
            1 => Just(Doc::Leaf(Value::String("2026-11-25T08:00:00Z".into()))),
            1 => Just(Doc::Leaf(Value::Null)),
            1 => any::<bool>().prop_map(|b| Doc::Leaf(json!(b))),
        ]
    }

    fn junk() -> impl Strategy<Value = Doc> {
        leaf().prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Doc::Array),
                prop::collection::vec((KEYS, inner), 0..4).prop_map(Doc::Object),
            ]
        })
    }

    /// A port element: mostly an object with a port number and a status among other members.
    fn element() -> impl Strategy<Value = Doc> {
        let extra = prop_oneof![
            8 => ("(v|p|e|t|x|st~atus)", prop_oneof![8 => (0.0..400.0f64).prop_map(|f| Doc::Leaf(json!(f))), 4 => leaf(), 1 => junk()]),
            1 => ("(n|s)", leaf()),
        ];
        let object = (
            prop::option::weighted(0.9, (1u64..13, any::<prop::sample::Index>())),
            prop::option::weighted(0.9, (leaf(), any::<prop::sample::Index>())),
            prop::collection::vec(extra, 0..6),
        )
            .prop_map(|(number, status, mut members)| {
                if let Some((n, at)) = number {
                    members.insert(
                        at.index(members.len() + 1),
                        ("n".into(), Doc::Leaf(json!(n))),
                    );
                }
                if let Some((code, at)) = status {
                    members.insert(at.index(members.len() + 1), ("s".into(), code));
                }
                Doc::Object(members)
            });
        prop_oneof![8 => object, 1 => leaf()]
    }

    /// A response: the flags, the list at the top and under `data`, and other members, each
    /// mostly there, in any order, keys sometimes repeated.
    fn document() -> impl Strategy<Value = Doc> {
        let list = || prop::collection::vec(element(), 0..6).prop_map(Doc::Array);
        let flag = || {
            prop_oneof![
                Just(Doc::Leaf(json!(1))),
                Just(Doc::Leaf(json!(true))),
                Just(Doc::Leaf(json!("0"))),
                leaf()
            ]
        };
        let data =
            (list(), prop::collection::vec((KEYS, junk()), 0..3)).prop_map(|(l, mut rest)| {
                rest.insert(0, ("ports".to_owned(), l));
                rest.push(("ok".to_owned(), Doc::Leaf(json!(1))));
                Doc::Object(rest)
            });
        let maybe = |p: f64, member: BoxedStrategy<(String, Doc)>| {
            prop::option::weighted(p, (member, any::<prop::sample::Index>()))
        };
        (
            prop::collection::vec((KEYS, junk()), 0..3),
            maybe(0.85, list().prop_map(|l| ("ports".to_owned(), l)).boxed()),
            maybe(0.85, data.prop_map(|d| ("data".to_owned(), d)).boxed()),
            maybe(0.85, flag().prop_map(|f| ("ok".to_owned(), f)).boxed()),
            maybe(0.85, flag().prop_map(|f| ("code".to_owned(), f)).boxed()),
        )
            .prop_map(|(mut members, a, b, c, d)| {
                for (member, at) in [a, b, c, d].into_iter().flatten() {
                    members.insert(at.index(members.len() + 1), member);
                }
                Doc::Object(members)
            })
    }

    fn key_pointer() -> impl Strategy<Value = Option<String>> {
        prop::option::of("/(n|s|v|p|e|t|x|st~0atus|0)")
    }

    fn mostly(pointer: &'static str) -> impl Strategy<Value = String> {
        prop_oneof![4 => Just(pointer.to_owned()), 1 => "/(n|s|v|p|e|t|x|st~0atus|0)"]
    }

    prop_compose! {
        fn profile()(
            success in prop::option::weighted(0.4, ("/(ok|code|data/ok|data)", prop_oneof![Just(json!(1)), Just(json!(true)), Just(json!("0"))])),
            ports in prop_oneof![3 => Just("/ports".to_owned()), 3 => Just("/data/ports".to_owned()), 1 => "/(data/ports/0|data|x)"],
            code in prop::bool::weighted(0.2),
            skip in prop::sample::select(vec![0usize, 0, 1]),
            number_offset in prop::sample::select(vec![0i64, 0, 1]),
            number in prop::option::weighted(0.8, mostly("/n")),
            status in mostly("/s"),
            voltage in key_pointer(),
            power in (key_pointer(), prop::sample::select(vec![1.0, 1000.0])),
            end in (key_pointer(), prop::option::of(prop::sample::select(vec![TimeFormat::UnixSeconds, TimeFormat::Rfc3339]))),
            codes in prop::collection::btree_map("(0|1|2|10|3|1.5|true)", prop::sample::select(PortStatus::ALL.to_vec()), 0..5),
        ) -> VendorProfile {
            let mut profile = VendorProfile::native();
            profile.success = success.map(|(pointer, equals)| SuccessCheck { pointer, equals, message_pointer: Some("/msg".into()) });
            let fields = if code {
                FieldsSpec::default()
            } else {
                FieldsSpec {
                    number,
                    status: Some(status),
                    voltage: voltage.map(NumberField::Pointer),
                    current: None,
                    power: power.0.map(|pointer| NumberField::Scaled { pointer, scale: power.1 }),
                    energy_kwh: None,
                    session_ends_at: end.0.map(|pointer| match end.1 {
                        Some(format) => TimeField::Formatted { pointer, format },
                        None => TimeField::Pointer(pointer),
                    }),
                }
            };
            profile.ports = PortsSpec {
                pointer: ports,
                element: if code { ElementKind::Code } else { ElementKind::Object },
                skip,
                number_offset,
                fields,
            };
            profile.status = StatusMap { codes: codes.into_iter().collect::<BTreeMap<_, _>>(), default: PortStatus::Unknown };
            profile
        }
    }

    #[test]
    fn text_and_tree_readings_agree() {
        let mut runner = TestRunner::new(Config {
            cases: 4000,
            failure_persistence: None,
            ..Config::default()
        });
        let read_from_text = Cell::new(0);
        let cases = (
            profile(),
            document(),
            any::<bool>(),
            prop::option::weighted(0.2, any::<prop::sample::Index>()),
        );
        runner
            .run(&cases, |(profile, doc, spaced, cut)| {
                let mut text = String::new();
                doc.write(&mut text, spaced);
                let mut bytes = text.into_bytes();
                if let Some(cut) = cut {
                    bytes.truncate(cut.index(bytes.len() + 1));
                }
                let Some(plan) = ResponsePlan::new(&profile) else {
                    return Ok(());
                };
                let id = StationId::parse("S1").unwrap();
                let now = Utc::now();
                let tree = profile.parse_response(&id, "http://x", &bytes, now);
                let direct = plan.read(&profile, &bytes);
                let text = String::from_utf8_lossy(&bytes);
                match &tree {
                    Ok(snapshot) => {
                        prop_assert_eq!(Some(&snapshot.ports), direct.as_ref(), "{}", text);
                        read_from_text.set(read_from_text.get() + 1);
                    }
                    Err(_) => prop_assert!(direct.is_none(), "{} read {:?}", text, direct),
                }
                let planned = plan.parse_response(&profile, &id, "http://x", &bytes, now);
                prop_assert_eq!(tree, planned);
                Ok(())
            })
            .unwrap();
        // The property means something only if many documents are read, not just refused.
        assert!(
            read_from_text.get() > 300,
            "only {} of 4000 documents read",
            read_from_text.get()
        );
    }

    #[test]
    fn plans_take_plain_keys_only() {
        let native = VendorProfile::native();
        assert!(ResponsePlan::new(&native).is_some());
        let mut through_array = native.clone();
        through_array.ports.pointer = "/data/0".into();
        assert!(ResponsePlan::new(&through_array).is_none());
        let mut deep_field = native.clone();
        deep_field.ports.fields.status = Some("/meter/status".into());
        assert!(ResponsePlan::new(&deep_field).is_none());
        let mut flag_on_the_way = native.clone();
        flag_on_the_way.success = Some(SuccessCheck {
            pointer: "/ports".into(),
            equals: json!(1),
            message_pointer: None,
        });
        assert!(ResponsePlan::new(&flag_on_the_way).is_none());
        let mut shared_key = native;
        shared_key.ports.fields.voltage = Some(NumberField::Pointer("/status".into()));
        assert!(ResponsePlan::new(&shared_key).is_none());
    }
}
