//! Tests of loading, checking and reading profiles, and property tests of reading any JSON.

use super::*;
use crate::charger::ChargerError;
use crate::model::{MAX_PORT, PortReading, Station, StationId};
use chrono::Utc;
use serde_json::json;

/// The reading methods, fed with `serde_json::Value`s written with `json!`.
trait FromValues {
    fn ports_of(&self, body: &Value) -> Result<Vec<PortReading>, ChargerError>;
    fn success_of(&self, body: &Value) -> Result<(), ChargerError>;
    fn stations_of(&self, body: &Value) -> Result<Vec<Station>, ChargerError>;
}

/// The document sonic-rs reads from what serde_json writes of `value`.
fn document(value: &Value) -> read::Document {
    read::parse(&serde_json::to_vec(value).unwrap()).unwrap()
}

impl FromValues for VendorProfile {
    fn ports_of(&self, body: &Value) -> Result<Vec<PortReading>, ChargerError> {
        self.read_ports(&document(body))
    }
    fn success_of(&self, body: &Value) -> Result<(), ChargerError> {
        self.check_success(&document(body))
    }
    fn stations_of(&self, body: &Value) -> Result<Vec<Station>, ChargerError> {
        self.read_stations(&document(body))
    }
}

fn profile(extra: &str) -> VendorProfile {
    VendorProfile::from_toml(
        &format!(
            r#"
name = "t"
[request]
url = "{{base_url}}/ports?id={{station_id}}"
[ports]
pointer = "/data"
[ports.fields]
number = "/n"
status = "/s"
voltage = "/v"
power = {{ pointer = "/kw", scale = 1000 }}
session_ends_at = "/end"
[status]
default = "unknown"
[status.codes]
"0" = "free"
"1" = "occupied"
{extra}
"#
        ),
        "t",
    )
    .unwrap()
}

#[test]
fn the_native_profile_loads() {
    let native = VendorProfile::native();
    assert_eq!(native.name, "csm");
    assert!(native.stations.is_some());
}

#[test]
fn codes_are_compared_as_text() {
    let p = profile("");
    let body = json!({"data": [
        {"n": 1, "s": 0}, {"n": "2", "s": "1"}, {"n": 3, "s": 1.0}, {"n": 4, "s": 7}
    ]});
    let ports = p.ports_of(&body).unwrap();
    let statuses: Vec<_> = ports.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            PortStatus::Free,
            PortStatus::Occupied,
            PortStatus::Occupied,
            PortStatus::Unknown
        ]
    );
    assert_eq!(ports[3].raw_code.as_deref(), Some("7"));
}

#[test]
fn absent_readings_stay_absent_and_scales_apply() {
    let p = profile("");
    let body = json!({"data": [{"n": 1, "s": 1, "kw": 0.4, "end": 1795500000}, {"n": 2, "s": 0, "v": null}]});
    let ports = p.ports_of(&body).unwrap();
    assert_eq!(ports[0].power, Some(400.0));
    assert_eq!(ports[0].voltage, None);
    assert_eq!(ports[0].session_ends_at.unwrap().timestamp(), 1_795_500_000);
    assert_eq!(ports[1].voltage, None);
    assert_eq!(ports[1].power, None);
}

#[test]
fn mismatches_name_the_pointer_and_what_was_found() {
    let p = profile("");
    let err = p.ports_of(&json!({"data": null})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "t: the response does not fit the profile: at /data expected an array of ports, found null"
    );
    let err = p
        .ports_of(&json!({"data": [{"n": 1, "s": 0, "v": "high"}]}))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("at /data/0/v expected a voltage, found the string \"high\""),
        "{err}"
    );
    let err = p
        .ports_of(&json!({"data": [{"n": 1, "s": 0}, {"n": 1, "s": 1}]}))
        .unwrap_err();
    assert!(
        err.to_string().contains("port 1 again (first at /data/0)"),
        "{err}"
    );
    let err = p
        .ports_of(&json!({"data": [{"n": 0, "s": 0}]}))
        .unwrap_err();
    assert!(
        err.to_string().contains("a port number from 1 to 1024"),
        "{err}"
    );
    let err = p.ports_of(&json!({"data": [{"n": 1}]})).unwrap_err();
    assert!(
        err.to_string()
            .contains("at /data/0/s expected a status code, found nothing"),
        "{err}"
    );
}

#[test]
fn bare_codes_are_numbered_by_position_after_skip_and_offset() {
    let p = VendorProfile::from_toml(
        r#"
[request]
url = "{base_url}/x/{station_id}"
[ports]
pointer = "/codes"
element = "code"
skip = 1
number_offset = 0
[status]
default = "fault"
codes = { "0" = "free", "1" = "occupied" }
"#,
        "bare",
    )
    .unwrap();
    let ports = p.ports_of(&json!({"codes": ["header", 0, 1, 9]})).unwrap();
    assert_eq!(ports.len(), 3);
    assert_eq!(ports[0].port, 1);
    assert_eq!(ports[2].status, PortStatus::Fault);
    assert_eq!(ports[2].raw_code.as_deref(), Some("9"));
}

#[test]
fn success_flag_failures_carry_the_vendor_message() {
    let p = profile("[success]\npointer = \"/ok\"\nequals = true\nmessage_pointer = \"/msg\"");
    let err = p
        .success_of(&json!({"ok": false, "msg": "token已过期"}))
        .unwrap_err();
    assert_eq!(err.to_string(), "t refused the request: token已过期");
    assert!(!err.is_transient());
    assert!(p.success_of(&json!({"ok": true})).is_ok());
    assert!(p.success_of(&json!({"ok": "true"})).is_ok());
    // A flag of the right kind saying failure, without a message: the flag is named.
    let err = p.success_of(&json!({"ok": "false"})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "t refused the request: /ok is the string \"false\" instead of true"
    );
}

#[test]
fn a_missing_or_odd_success_flag_blames_the_profile_not_the_vendor() {
    let p = profile("[success]\npointer = \"/result\"\nequals = 0\nmessage_pointer = \"/msg\"");
    // The vendor's own message says all is well; the flag is simply not where the profile looks.
    let err = p.success_of(&json!({"code": 0, "msg": "ok"})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "t: /result is missing: the profile's success.pointer does not match this answer (it expects a flag like 0 there)"
    );
    assert_eq!(err.kind(), "no_success_flag");
    assert!(!err.is_transient());
    for odd in [json!({"x": 1}), json!([0]), json!(null), json!("yes")] {
        let err = p
            .success_of(&json!({"result": odd, "msg": "ok"}))
            .unwrap_err();
        assert!(
            matches!(err, ChargerError::NoSuccessFlag { .. }),
            "{odd}: {err}"
        );
    }
    // Present, a number, and not 0: the vendor refused, in its own words.
    let err = p
        .success_of(&json!({"result": 40001, "msg": "签名错误"}))
        .unwrap_err();
    assert_eq!(err.to_string(), "t refused the request: 签名错误");
    assert!(p.success_of(&json!({"result": "0"})).is_ok());
}

#[test]
fn broken_profiles_are_refused_with_the_reason() {
    let err = VendorProfile::from_toml("[request]\nurl = \"x\"", "p").unwrap_err();
    assert!(err.to_string().contains("missing field"), "{err}");
    let err = VendorProfile::from_toml(
        "[request]\nurl = \"{base_url}/a\"\n[ports]\npointer = \"/p\"\n[ports.fields]\nstatus = \"/s\"\n[status]\n",
        "p",
    )
    .unwrap_err();
    assert!(err.message.contains("{station_id}"), "{err}");
    let err = VendorProfile::from_toml(
        "[request]\nurl = \"{base_url}/{station}\"\n[ports]\npointer = \"/p\"\n[status]\n",
        "p",
    )
    .unwrap_err();
    assert!(
        err.message.contains("unknown placeholder {station}"),
        "{err}"
    );
    let err = VendorProfile::from_toml(
        "[request]\nurl = \"{base_url}/{station_id}\"\n[ports]\npointer = \"data\"\n[ports.fields]\nstatus = \"/s\"\n[status]\n",
        "p",
    )
    .unwrap_err();
    assert!(err.message.contains("not a JSON Pointer"), "{err}");
}

mod arbitrary {
    //! Property tests: profile parsing and response mapping never panic, whatever the JSON
    //! and whatever the profile, and what they accept is well-formed.

    use super::*;
    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1e6..1e6f64).prop_map(|f| json!(f)),
            "[a-z0-9 .-]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("(data|ports|n|s|v|p|[a-z]{1,3})", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn pointer() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("/data".to_owned()),
            Just("/ports".to_owned()),
            Just("/n".to_owned()),
            Just("/s".to_owned()),
            Just("/0".to_owned()),
            Just("/data/ports".to_owned()),
            "(/[a-z0-9~]{0,3}){1,3}",
        ]
    }

    fn number_field() -> impl Strategy<Value = Option<NumberField>> {
        prop::option::of(prop_oneof![
            pointer().prop_map(NumberField::Pointer),
            (pointer(), -1e3..1e3f64)
                .prop_map(|(pointer, scale)| NumberField::Scaled { pointer, scale }),
        ])
    }

    fn status() -> impl Strategy<Value = PortStatus> {
        prop::sample::select(PortStatus::ALL.to_vec())
    }

    prop_compose! {
        fn profile()(
            ports_pointer in pointer(),
            code in any::<bool>(),
            skip in 0usize..4,
            number_offset in -3i64..4,
            number in prop::option::of(pointer()),
            status_pointer in pointer(),
            voltage in number_field(),
            power in number_field(),
            end in prop::option::of(pointer()),
            codes in prop::collection::btree_map("[0-9a-z]{1,3}", status(), 0..5),
            default in status(),
            success in prop::option::of((pointer(), json(), prop::option::of(pointer()))),
        ) -> VendorProfile {
            let fields = if code {
                FieldsSpec::default()
            } else {
                FieldsSpec {
                    number,
                    status: Some(status_pointer),
                    voltage,
                    power,
                    session_ends_at: end.map(TimeField::Pointer),
                    ..FieldsSpec::default()
                }
            };
            VendorProfile {
                name: "arb".into(),
                description: None,
                base_url: None,
                request: RequestSpec {
                    method: Method::Get,
                    url: "{base_url}/{station_id}".into(),
                    headers: BTreeMap::new(),
                    body: None,
                    timeout_ms: None,
                },
                success: success.map(|(pointer, equals, message_pointer)| SuccessCheck { pointer, equals, message_pointer }),
                ports: PortsSpec {
                    pointer: ports_pointer,
                    element: if code { ElementKind::Code } else { ElementKind::Object },
                    skip,
                    number_offset,
                    fields,
                },
                status: StatusMap { codes, default },
                stations: Some(StationListSpec {
                    url: "{base_url}/stations".into(),
                    method: Method::Get,
                    body: None,
                    pointer: "/data".into(),
                    id: "/n".into(),
                    name: "/s".into(),
                    ports: Some("/p".into()),
                    address: None,
                    lat: Some("/v".into()),
                    lng: None,
                }),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn mapping_any_json_through_any_profile_never_panics(profile in profile(), body in json()) {
            let _ = profile.validate();
            let _ = profile.success_of(&body);
            if let Ok(ports) = profile.ports_of(&body) {
                prop_assert!(ports.windows(2).all(|w| w[0].port < w[1].port), "sorted, each port once");
                prop_assert!(ports.iter().all(|p| (1..=MAX_PORT).contains(&p.port)));
                let mut ports = ports;
                for port in &mut ports {
                    port.drop_impossible();
                }
                prop_assert!(ports.iter().all(|p| p.voltage.is_none_or(f64::is_finite)));
            }
            let _ = profile.stations_of(&body);
            let id = StationId::parse("S1").unwrap();
            let bytes = serde_json::to_vec(&body).unwrap();
            let _ = profile.parse_response(&id, "http://x", &bytes, Utc::now());
        }

        #[test]
        fn shaped_responses_map_or_fail_with_a_pointer(profile in profile(), elements in prop::collection::vec(json(), 0..20)) {
            let body = json!({ "data": elements.clone(), "ports": elements });
            match profile.ports_of(&body) {
                Ok(_) => {}
                Err(ChargerError::Mismatch { pointer, .. }) => prop_assert!(pointer.starts_with('/')),
                Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
            }
        }

        #[test]
        fn any_bytes_and_any_toml_are_refused_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..256), text in "\\PC{0,300}") {
            let id = StationId::parse("S1").unwrap();
            let _ = VendorProfile::native().parse_response(&id, "http://x", &bytes, Utc::now());
            let _ = VendorProfile::from_toml(&text, "arb");
        }
    }
}

mod reader_agrees_with_serde_json {
    //! The document reader (sonic-rs) held to serde_json: the same documents, and the same
    //! verdict on whether a text is JSON at all.

    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use serde_json::Value;

    use super::read;

    /// The same document, with floats equal within a few units in the last place (the two
    /// libraries round the last digit of some decimals differently).
    fn same(ours: &Value, theirs: &Value) -> bool {
        match (ours, theirs) {
            (Value::Number(a), Value::Number(b)) if a.is_f64() || b.is_f64() => {
                let (a, b) = (
                    a.as_f64().unwrap_or(f64::NAN),
                    b.as_f64().unwrap_or(f64::NAN),
                );
                (a - b).abs() <= 4.0 * f64::EPSILON * a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
            }
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
            }
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| same(x, y)))
            }
            _ => ours == theirs,
        }
    }

    /// What the reader made of `text`, as serde_json values.
    fn read_as_serde(bytes: &[u8]) -> Result<Value, String> {
        let document = read::parse(bytes).map_err(|e| e.to_string())?;
        serde_json::to_value(&document).map_err(|e| e.to_string())
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            "[a-z\\\\\"/\\u{0}-\\u{1f}é😀]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec(("[a-z_/~]{0,6}", inner), 0..8)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// Runs `cases` and says how many of them both readers took as JSON.
    fn agreements(cases: u32, strategy: impl Strategy<Value = Vec<u8>>) -> u32 {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let read = std::cell::Cell::new(0);
        runner
            .run(&strategy, |bytes| {
                let ours = read_as_serde(&bytes);
                let theirs = serde_json::from_slice::<Value>(&bytes);
                let text = String::from_utf8_lossy(&bytes);
                prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{}: {:?}", text, ours);
                if let (Ok(ours), Ok(theirs)) = (ours, theirs) {
                    prop_assert!(same(&ours, &theirs), "{}", text);
                    read.set(read.get() + 1);
                }
                Ok(())
            })
            .unwrap();
        read.get()
    }

    #[test]
    fn on_documents_serde_json_wrote() {
        let written = (value(), any::<bool>()).prop_map(|(doc, pretty)| {
            if pretty {
                serde_json::to_vec_pretty(&doc).unwrap()
            } else {
                serde_json::to_vec(&doc).unwrap()
            }
        });
        assert_eq!(
            agreements(1024, written),
            1024,
            "every written document reads"
        );
    }

    #[test]
    fn on_whether_text_is_json() {
        // Written documents, half of them damaged: cut short, or a character put in.
        let damaged = (
            value(),
            prop::option::of(any::<prop::sample::Index>()),
            prop::option::of((
                any::<prop::sample::Index>(),
                "[ \\[\\]{}:,\"\\\\a-z0-9.eE+\\-]",
            )),
        )
            .prop_map(|(doc, cut, insert)| {
                let mut text = serde_json::to_string(&doc).unwrap();
                if let Some((at, c)) = insert {
                    let at = at.index(text.len() + 1);
                    if text.is_char_boundary(at) {
                        text.insert_str(at, &c);
                    }
                }
                let mut bytes = text.into_bytes();
                if let Some(cut) = cut {
                    bytes.truncate(cut.index(bytes.len() + 1));
                }
                bytes
            });
        let both = agreements(4096, damaged);
        assert!(both >= 400, "only {both} of 4096 texts were JSON to both");
        // And text of JSON's own characters in any order.
        let soup = "[ \\[\\]{}:,\"\\\\a-z0-9.eE+\\-]{0,24}".prop_map(String::into_bytes);
        agreements(4096, soup);
    }

    #[test]
    fn on_arbitrary_bytes() {
        let bytes = prop::collection::vec(any::<u8>(), 0..64);
        agreements(2048, bytes);
    }
}

mod field_lookup {
    use proptest::prelude::*;

    use super::read::{FieldLookup, parse, pointer};
    use sonic_rs::Value;

    fn member() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "s", "v", "n", "0", "x~y", ""]).prop_map(String::from)
    }

    fn field() -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop_oneof![
            member().prop_map(|k| format!("/{k}")),
            (member(), member()).prop_map(|(a, b)| format!("/{a}/{b}")),
            Just("/x~0y".to_owned()),
            Just(String::new()),
        ])
    }

    fn element() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<i32>().prop_map(serde_json::Value::from),
            "[a-z]{0,3}".prop_map(serde_json::Value::from),
        ];
        let inner = leaf.prop_recursive(2, 16, 4, |inner| {
            prop::collection::vec((member(), inner), 0..4)
                .prop_map(|members| serde_json::Value::Object(members.into_iter().collect()))
        });
        prop::collection::vec((member(), inner), 0..6)
            .prop_map(|members| serde_json::Value::Object(members.into_iter().collect()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// One pass over the members finds what looking each field up by its pointer finds.
        #[test]
        fn the_field_lookup_finds_what_the_pointers_find(
            fields in prop::array::uniform7(field()),
            element in element(),
        ) {
            let document = parse(&serde_json::to_vec(&element).unwrap()).unwrap();
            let pointers = fields.each_ref().map(Option::as_deref);
            let by_pointer = pointers.map(|p| p.and_then(|p| pointer(&document, p)));
            let by_lookup = FieldLookup::new(pointers).values(&document);
            for (a, b) in by_pointer.iter().zip(&by_lookup) {
                prop_assert_eq!(a.map(|v| v as *const Value), b.map(|v| v as *const Value));
            }
        }
    }
}

mod hostile_answers {
    //! Answers built to break the reader: nesting far past the limit, very wide lists and
    //! objects, and malformed text, read on a thread with a tokio worker's stack (2 MiB), as
    //! the refresh engine reads them. A stack overflow aborts the test binary, so a pass means
    //! none happened; each case must also end in a snapshot or a clear error.

    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;

    /// The stack of a tokio worker thread (2 MiB), for the release build csm runs as. An
    /// unoptimised test build's frames are several times larger (sonic-rs's parser recursing
    /// through an answer 100 levels deep, under the 128 csm accepts, takes more than 2 MiB
    /// there), so a test build gets four times as much.
    const WORKER_STACK: usize = if cfg!(debug_assertions) {
        8 * 1024 * 1024
    } else {
        2 * 1024 * 1024
    };

    /// A hostile text: an opener repeated thousands of times (closed or not), around or beside
    /// a valid answer; a very wide list; or arbitrary bytes cut from a valid answer.
    fn hostile() -> impl Strategy<Value = Vec<u8>> {
        let valid = r#"{"data":[{"n":1,"s":0,"v":220.5}],"ok":1}"#;
        prop_oneof![
            // Deep: `[`, `{"k":` or a mix, 100 to 60,000 levels, closed or not, in the port
            // list, beside it, or as the whole answer.
            (
                100usize..60_000,
                prop::sample::select(vec!["[", "{\"k\":", "[{\"a\":"]),
                any::<bool>(),
                0..3usize,
            )
                .prop_map(move |(depth, opener, closed, place)| {
                    let closer = match opener {
                        "[" => "]",
                        "{\"k\":" => "}",
                        _ => "}]",
                    };
                    let mut junk = opener.repeat(depth);
                    junk.push('0');
                    if closed {
                        junk.push_str(&closer.repeat(depth));
                    }
                    match place {
                        0 => format!(r#"{{"data":{junk},"ok":1}}"#),
                        1 => format!(r#"{{"data":[{{"n":1,"s":0}}],"junk":{junk}}}"#),
                        _ => junk,
                    }
                    .into_bytes()
                }),
            // Wide: up to 200,000 elements or members.
            (1usize..200_000, any::<bool>()).prop_map(|(width, list)| {
                if list {
                    format!(r#"{{"data":[{}{{"n":1,"s":0}}]}}"#, "0,".repeat(width))
                } else {
                    let members: String = (0..width).map(|i| format!(r#""k{i}":{i},"#)).collect();
                    format!(r#"{{{members}"data":[]}}"#)
                }
                .into_bytes()
            }),
            // Malformed: a valid answer cut anywhere, with arbitrary bytes spliced in.
            (0..valid.len(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(
                move |(cut, noise)| {
                    let mut bytes = valid.as_bytes()[..cut].to_vec();
                    bytes.extend(noise);
                    bytes.extend(&valid.as_bytes()[cut..]);
                    bytes
                }
            ),
        ]
    }

    #[test]
    fn no_answer_overflows_a_worker_stack() {
        let reading = std::thread::Builder::new()
            .stack_size(WORKER_STACK)
            .spawn(|| {
                let profile = super::profile("");
                let id = StationId::parse("S1").unwrap();
                let mut runner = TestRunner::new(Config {
                    cases: 256,
                    failure_persistence: None,
                    ..Config::default()
                });
                let too_deep = std::cell::Cell::new(0);
                runner
                    .run(&hostile(), |bytes| {
                        match profile.parse_response(&id, "http://x", &bytes, Utc::now()) {
                            Err(ChargerError::TooDeep { limit, pointer, .. }) => {
                                prop_assert_eq!(limit, MAX_DEPTH);
                                prop_assert!(pointer.starts_with('/'));
                                too_deep.set(too_deep.get() + 1);
                            }
                            Ok(_)
                            | Err(ChargerError::NotJson { .. } | ChargerError::Mismatch { .. }) => {
                            }
                            Err(other) => prop_assert!(false, "unexpected error: {other}"),
                        }
                        Ok(())
                    })
                    .unwrap();
                too_deep.get()
            })
            .unwrap();
        let too_deep = reading.join().expect("the reader did not panic");
        assert!(too_deep >= 40, "only {too_deep} deep cases were exercised");
    }

    #[test]
    fn the_deep_answer_of_the_attack_is_a_clear_error() {
        let depth = 9_000;
        let body = format!(
            r#"{{"ok":1,"ports":[0,1],"junk":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let id = StationId::parse("S1").unwrap();
        let error = VendorProfile::native()
            .parse_response(&id, "http://vendor/ports", body.as_bytes(), Utc::now())
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "csm: the response of http://vendor/ports nests deeper than 128 levels at /junk/0/0/0/0/0/0/0/…; csm reads answers at most 128 levels deep"
        );
        assert!(!error.is_transient());
    }
}

#[test]
fn a_deeply_nested_profile_is_refused_cleanly() {
    // Profiles are the operator's own files, read at start; still, a broken one must be an
    // error, not an abort.
    let reading = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let depth = 50_000;
            let arrays = format!("junk = {}{}\n", "[".repeat(depth), "]".repeat(depth));
            let tables = format!("junk = {}1{}\n", "{a=".repeat(depth), "}".repeat(depth));
            let keys = format!("{} = 1\n", vec!["a"; depth].join("."));
            [arrays, tables, keys]
                .iter()
                .map(|text| {
                    VendorProfile::from_toml(text, "deep")
                        .unwrap_err()
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .unwrap();
    let errors = reading.join().expect("reading the profiles did not panic");
    assert!(
        errors.iter().all(|e| e.starts_with("vendor profile deep: ")
            && (e.contains("TOML parse error") || e.contains("recursion limit"))),
        "{errors:?}"
    );
}
