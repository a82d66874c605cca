//! Micro-benchmarks of the hot paths of a refresh: reading a vendor response through a
//! profile, diffing a snapshot against the previous state, encoding and decoding the cached
//! value, encoding a station's API answer, and writing a batch of port rows (SQLite, in a temp
//! file).
//!
//! `cargo bench -p csm-core --bench hot_paths`

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use csm_core::cache::{decode, encode};
use csm_core::charger::{Simulator, VendorProfile};
use csm_core::model::{Station, StationId, StationState};
use csm_core::monitor::StationView;
use csm_core::refresh::diff::diff;
use csm_core::store::{PortStateRow, SqliteStore, Store, WriteBatch};
use csm_core::views::StationDetailJson;

fn station(ports: u32) -> Station {
    Station {
        id: StationId::parse("S0001").expect("id"),
        name: "信阳学院 A 区 1 号桩".into(),
        address: None,
        lat: None,
        lng: None,
        vendor: "csm".into(),
        enabled: true,
        port_count: ports,
    }
}

/// A native-contract body of `ports` ports, as the simulator serves it.
fn native_body(ports: u32) -> Vec<u8> {
    let sim = Simulator::new(1, 1.0);
    let snapshot = sim.snapshot_at(&station(ports), Utc::now());
    let ports: Vec<serde_json::Value> = snapshot
        .ports
        .iter()
        .map(|p| {
            serde_json::json!({
                "port": p.port, "status": p.status.as_str(), "voltage": p.voltage, "current": p.current,
                "power": p.power, "energy_kwh": p.energy_kwh,
                "session_ends_at": p.session_ends_at.map(|t| t.to_rfc3339()),
            })
        })
        .collect();
    serde_json::to_vec(
        &serde_json::json!({"station_id": "S0001", "observed_at": Utc::now(), "ports": ports}),
    )
    .expect("json")
}

fn profile_parsing(c: &mut Criterion) {
    let profile = VendorProfile::native();
    let id = StationId::parse("S0001").expect("id");
    for ports in [12, 20] {
        let body = native_body(ports);
        c.bench_function(
            &format!("profile: parse native response, {ports} ports"),
            |b| {
                b.iter(|| {
                    profile
                        .parse_response(&id, "http://x", black_box(&body), Utc::now())
                        .expect("parses")
                })
            },
        );
    }
}

fn state_of(snapshot: &csm_core::model::Snapshot) -> StationState {
    let (ports, _) = diff(None, snapshot);
    StationState {
        station_id: snapshot.station_id.clone(),
        observed_at: Some(snapshot.observed_at),
        checked_at: snapshot.observed_at,
        last_error: None,
        failures: 0,
        ports,
        counted_from: None,
    }
}

fn diffing(c: &mut Criterion) {
    let sim = Simulator::new(1, 3600.0);
    let s = station(12);
    let now = Utc::now();
    let first = sim.snapshot_at(&s, now);
    let previous = state_of(&first);
    let same = sim.snapshot_at(&s, now + chrono::Duration::milliseconds(1));
    let later = sim.snapshot_at(&s, now + chrono::Duration::seconds(5));
    c.bench_function("diff: 12 ports, statuses unchanged", |b| {
        b.iter(|| diff(Some(black_box(&previous)), black_box(&same)))
    });
    c.bench_function("diff: 12 ports, some changed", |b| {
        b.iter(|| diff(Some(black_box(&previous)), black_box(&later)))
    });
}

fn cache_codec(c: &mut Criterion) {
    let sim = Simulator::new(1, 1.0);
    let state = state_of(&sim.snapshot_at(&station(12), Utc::now()));
    let bytes = encode(&state);
    c.bench_function("cache: encode 12-port state", |b| {
        b.iter(|| encode(black_box(&state)))
    });
    c.bench_function("cache: decode 12-port state", |b| {
        b.iter(|| decode(black_box(&bytes)).expect("decodes"))
    });
}

fn answers(c: &mut Criterion) {
    let sim = Simulator::new(1, 1.0);
    let station = std::sync::Arc::new(station(12));
    let state = state_of(&sim.snapshot_at(&station, Utc::now()));
    let view = StationView {
        station,
        state: Some(std::sync::Arc::new(state)),
        stale: false,
        estimates: Vec::new(),
    };
    c.bench_function("views: encode a 12-port station answer", |b| {
        b.iter(|| serde_json::to_vec(&StationDetailJson::of(black_box(&view))).expect("json"))
    });
    let at = Utc::now();
    c.bench_function("views: one time through chrono's serialisation", |b| {
        b.iter(|| serde_json::to_vec(black_box(&at)).expect("json"))
    });
    c.bench_function("views: one time through time::write", |b| {
        b.iter(|| {
            let mut text = String::new();
            csm_core::time::write(black_box(&at), &mut text);
            text
        })
    });
}

fn batch_writes(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = std::env::temp_dir().join(format!("csm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let store = runtime.block_on(async {
        let store = SqliteStore::connect(&url, 2).await.expect("sqlite");
        store.migrate().await.expect("migrate");
        store
    });
    let sim = Simulator::new(1, 1.0);
    let now = Utc::now();
    let rows: Vec<PortStateRow> = (0..84)
        .flat_map(|n| {
            let mut s = station(12);
            s.id = StationId::parse(&format!("S{n:04}")).expect("id");
            let snapshot = sim.snapshot_at(&s, now);
            let (ports, _) = diff(None, &snapshot);
            ports.into_iter().map(move |state| PortStateRow {
                station_id: snapshot.station_id.clone(),
                state,
                observed_at: now,
            })
        })
        .collect();
    let batch = WriteBatch {
        ports: rows,
        ..WriteBatch::default()
    };
    c.bench_function("store: SQLite batch upsert of 1008 port rows", |b| {
        b.iter(|| {
            runtime
                .block_on(store.apply(black_box(&batch)))
                .expect("writes")
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(
    benches,
    profile_parsing,
    diffing,
    cache_codec,
    answers,
    batch_writes
);
criterion_main!(benches);
