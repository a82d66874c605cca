//! History benchmarks, run by `scripts/bench.py` (part `history`); each prints one JSON line.
//!
//! `fraction STATIONS HOURS`: the simulated fleet (12 ports a station) refreshed every 30 s for
//! HOURS of simulated time, each refresh derived exactly as the engine derives it (diff and
//! history recorder, [`csm_core::demo`]): how many port observations there were and
//! how many readings the deadbands and the heartbeat keep. The first refresh of each station
//! (every port seen for the first time, all kept) is counted apart.
//!
//! `stats DATABASE_URL STATIONS DAYS REQUESTS`: fills an empty database with DAYS of simulated
//! history of STATIONS stations (12 ports each; sessions and hourly totals, written straight
//! into the tables statistics read), then asks the monitor for REQUESTS statistics of DAYS days
//! of random stations, one after another: row counts and latencies.
//!
//! ```text
//! cargo run --release --example history_bench -- fraction 50000 2
//! cargo run --release --example history_bench -- stats mysql://root@127.0.0.1:3306/csm_bench_stats 1000 90 300
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, DurationRound, TimeDelta, Timelike, Utc};
use csm_core::Monitor;
use csm_core::cache::MemoryCache;
use csm_core::charger::{Chargers, Simulator};
use csm_core::demo;
use csm_core::model::StationId;
use csm_core::settings::{HistorySettings, Settings};
use sqlx::Connection;

const PORTS: u32 = 12;
const REFRESH_SECS: i64 = 30;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["fraction", stations, hours] => fraction(number(stations), number(hours)),
        ["stats", url, stations, days, requests] => {
            stats(url, number(stations), number(days), number(requests)).await
        }
        _ => Err("usage: history_bench fraction STATIONS HOURS | stats DATABASE_URL STATIONS DAYS REQUESTS".into()),
    };
    match outcome {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("history_bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn number(text: &str) -> usize {
    text.parse().unwrap_or_else(|_| {
        eprintln!("history_bench: {text:?} is not a number");
        std::process::exit(2)
    })
}

/// Observations and kept readings of the fleet refreshed every 30 s.
fn fraction(stations: usize, hours: usize) -> Result<String, String> {
    let end = Utc::now();
    let start = end - TimeDelta::hours(hours as i64);
    let simulator = Simulator::with_fleet(7, 1.0, stations, PORTS).starting_at(start);
    let history = HistorySettings::default();
    let step = TimeDelta::seconds(REFRESH_SECS);
    let refreshes = (TimeDelta::hours(hours as i64).num_seconds() / REFRESH_SECS) as usize;
    let started = Instant::now();
    let (mut first, mut kept, mut events, mut sessions) = (0, 0, 0, 0);
    for station in simulator.fleet() {
        // The first refresh alone, then the rest from where it left off.
        let (batches, _) = demo::simulate(
            &simulator,
            &station,
            (start, start + step),
            step,
            &history,
            usize::MAX,
        );
        first += batches.iter().map(|b| b.readings.len()).sum::<usize>();
        let (batches, _) = demo::simulate(
            &simulator,
            &station,
            (start + step, end),
            step,
            &history,
            usize::MAX,
        );
        for batch in &batches {
            kept += batch.readings.len();
            events += batch.events.len();
            sessions += batch.sessions.len();
        }
    }
    let observed = stations * PORTS as usize * (refreshes - 1);
    let per_sec = |n: usize| n as f64 / TimeDelta::hours(hours as i64).num_seconds() as f64;
    Ok(serde_json::json!({
        "stations": stations,
        "ports": stations * PORTS as usize,
        "simulated_hours": hours,
        "refresh_secs": REFRESH_SECS,
        "observations": observed,
        "stored_readings": kept,
        "stored_fraction": kept as f64 / observed as f64,
        "observations_per_sec": per_sec(observed),
        "stored_readings_per_sec": per_sec(kept),
        "first_refresh_readings": first,
        "status_events": events,
        "session_rows": sessions,
        "deadband": {
            "volts": history.deadband.voltage,
            "amps": history.deadband.current,
            "watts": history.deadband.power,
            "kwh": history.deadband.energy_kwh,
        },
        "heartbeat_secs": history.heartbeat_secs,
        "cpu_secs": started.elapsed().as_secs_f64(),
    })
    .to_string())
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Riders per hour of the day relative to an average hour (Shanghai time), as the simulator's.
fn arrivals(hour: u32) -> f64 {
    const BY_HOUR: [f64; 24] = [
        0.35, 0.2, 0.15, 0.12, 0.12, 0.15, 0.35, 0.7, 0.9, 0.8, 0.75, 0.8, 1.0, 1.0, 0.8, 0.75,
        0.8, 1.1, 1.6, 1.9, 1.9, 1.7, 1.2, 0.7,
    ];
    BY_HOUR[hour as usize % 24]
}

/// Sessions of a station: port, start and seconds.
type Sessions = Vec<(u32, DateTime<Utc>, i64)>;
/// Seconds free, occupied and in fault, and sessions started, per UTC hour.
type Hours = std::collections::BTreeMap<DateTime<Utc>, [i64; 4]>;

/// One station's simulated days: its sessions and its hours.
fn simulate_station(n: usize, from: DateTime<Utc>, to: DateTime<Utc>) -> (Sessions, Hours) {
    let mut rng = Rng(0x5eed ^ (n as u64).wrapping_mul(0x9e37_79b9));
    let mut sessions = Vec::new();
    let mut hours = Hours::new();
    let mut add = |status: usize, start: DateTime<Utc>, end: DateTime<Utc>| {
        let mut at = start;
        while at < end {
            let hour = at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at);
            let next = (hour + TimeDelta::hours(1)).min(end);
            hours.entry(hour).or_default()[status] += (next - at).num_seconds();
            at = next;
        }
    };
    let mut started: Vec<DateTime<Utc>> = Vec::new();
    for port in 1..=PORTS {
        let mut at = from;
        while at < to {
            let local = (at + TimeDelta::hours(8)).hour();
            let free = -2_700.0 / arrivals(local) * (1.0 - rng.unit()).ln();
            let free_end = (at + TimeDelta::seconds(free.max(60.0) as i64)).min(to);
            add(0, at, free_end);
            at = free_end;
            if at >= to {
                break;
            }
            if rng.unit() < 0.03 {
                let fault_end =
                    (at + TimeDelta::seconds((1_200.0 + rng.unit() * 9_600.0) as i64)).min(to);
                add(2, at, fault_end);
                at = fault_end;
                continue;
            }
            let length = (1_200.0 + rng.unit() * 13_200.0) as i64;
            let end = (at + TimeDelta::seconds(length)).min(to);
            add(1, at, end);
            started.push(at);
            if end < to {
                sessions.push((port, at, (end - at).num_seconds()));
            }
            at = end;
        }
    }
    for at in started {
        let hour = at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at);
        hours.entry(hour).or_default()[3] += 1;
    }
    (sessions, hours)
}

/// Fills the database with simulated history and times the statistics of random stations.
async fn stats(url: &str, stations: usize, days: usize, requests: usize) -> Result<String, String> {
    let mut settings = Settings::default();
    settings.database.url = Some(url.into());
    settings.vendors.dir = "/nonexistent-csm-vendors".into();
    let store = csm_core::store::connect(url, 8)
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let fleet = Simulator::with_fleet(7, 1.0, stations, PORTS).fleet();
    let to = Utc::now()
        .duration_trunc(TimeDelta::hours(1))
        .map_err(|e| e.to_string())?;
    let from = to - TimeDelta::days(days as i64);
    let mut connection = sqlx::MySqlConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let count = |table: &'static str| format!("SELECT COUNT(*) FROM {table}");
    let existing: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count("station_hours")))
        .fetch_one(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    let generated = Instant::now();
    if existing == 0 {
        store
            .upsert_stations(&fleet)
            .await
            .map_err(|e| e.to_string())?;
        let mut fleet_hours = Hours::new();
        for (index, station) in fleet.iter().enumerate() {
            let (sessions, hours) = simulate_station(index, from, to);
            insert_sessions(&mut connection, &station.id, &sessions).await?;
            insert_hours(&mut connection, &station.id, &hours).await?;
            for (hour, totals) in hours {
                let sum = fleet_hours.entry(hour).or_default();
                for (s, t) in sum.iter_mut().zip(totals) {
                    *s += t;
                }
            }
        }
        for chunk in fleet_hours.into_iter().collect::<Vec<_>>().chunks(1_000) {
            let mut sql = String::from(
                "INSERT INTO fleet_hours (hour, free_secs, occupied_secs, fault_secs, sessions_started) VALUES ",
            );
            let rows: Vec<String> = chunk
                .iter()
                .map(|(hour, t)| {
                    format!(
                        "('{}', {}, {}, {}, {})",
                        hour.format("%Y-%m-%d %H:%M:%S"),
                        t[0],
                        t[1],
                        t[2],
                        t[3]
                    )
                })
                .collect();
            sql.push_str(&rows.join(", "));
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut connection)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let generate_secs = generated.elapsed().as_secs_f64();
    let mut rows = serde_json::Map::new();
    for table in ["station_hours", "sessions", "fleet_hours"] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count(table)))
            .fetch_one(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
        rows.insert(table.into(), n.into());
    }
    let monitor = Monitor::from_parts(
        settings.clone(),
        store,
        Arc::new(MemoryCache::new(std::time::Duration::from_secs(60))),
        Chargers::from_settings(&settings).map_err(|e| e.to_string())?,
    );
    let mut rng = Rng(42);
    let mut millis = Vec::with_capacity(requests);
    let mut sessions_seen = 0;
    for _ in 0..requests {
        let n = (rng.next() % stations as u64) as usize;
        let id: &StationId = &fleet[n].id;
        let asked = Instant::now();
        let stats = monitor
            .history()
            .station_stats(id, days as u32)
            .await
            .map_err(|e| e.to_string())?;
        millis.push(asked.elapsed().as_secs_f64() * 1_000.0);
        sessions_seen += stats.sessions;
    }
    millis.sort_by(f64::total_cmp);
    let at =
        |p: f64| millis[((p * millis.len() as f64).ceil() as usize).clamp(1, millis.len()) - 1];
    Ok(serde_json::json!({
        "stations": stations,
        "days": days,
        "requests": requests,
        "rows": rows,
        "generated_secs": if existing == 0 { Some(generate_secs) } else { None },
        "sessions_per_answer": sessions_seen as f64 / requests as f64,
        "ms": { "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": millis[millis.len() - 1] },
    })
    .to_string())
}

async fn insert_sessions(
    connection: &mut sqlx::MySqlConnection,
    id: &StationId,
    sessions: &[(u32, DateTime<Utc>, i64)],
) -> Result<(), String> {
    for chunk in sessions.chunks(2_000) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|(port, start, secs)| {
                let end = *start + TimeDelta::seconds(*secs);
                format!(
                    "('{id}', {port}, '{}', '{}', {secs}, NULL)",
                    start.format("%Y-%m-%d %H:%M:%S%.6f"),
                    end.format("%Y-%m-%d %H:%M:%S%.6f")
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO sessions (station_id, port, started_at, ended_at, duration_secs, energy_kwh) VALUES {}",
            rows.join(", ")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *connection)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn insert_hours(
    connection: &mut sqlx::MySqlConnection,
    id: &StationId,
    hours: &Hours,
) -> Result<(), String> {
    let rows: Vec<(&DateTime<Utc>, &[i64; 4])> = hours.iter().collect();
    for chunk in rows.chunks(2_000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|(hour, t)| {
                format!(
                    "('{id}', '{}', {}, {}, {}, {})",
                    hour.format("%Y-%m-%d %H:%M:%S"),
                    t[0],
                    t[1],
                    t[2],
                    t[3]
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO station_hours (station_id, hour, free_secs, occupied_secs, fault_secs, sessions_started) VALUES {}",
            values.join(", ")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *connection)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
