//! The built-in `simulator` vendor: a seeded fleet of e-bike charging piles.
//!
//! Each port lives a timeline of its own: free for a while, a session of 20 minutes to 4 hours
//! drawing 0.3–3 A at about 220 V (tapering near the end; about half the piles say when it
//! will end), now and then a short reservation or a
//! fault that is repaired later; now and then a whole pile drops offline for a while. Timelines
//! are drawn from a random generator seeded by (seed, station, port), so the same seed gives the
//! same fleet and the same story. `speed` makes the story run faster than the wall clock.
//!
//! Riders follow a daily rhythm in the simulator's time zone (by default the statistics'):
//! free ports are taken up again quickest in the evening and slowest in the small hours
//! ([`arrivals`]).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::{ChargerApi, ChargerError, SIMULATOR_VENDOR};
use crate::model::{PortReading, PortStatus, Snapshot, Station, StationId};

const SHARDS: usize = 64;
/// Ports of a station that does not say how many it has.
const DEFAULT_PORTS: u32 = 10;
const MINUTE: f64 = 60.0;
const HOUR: f64 = 3600.0;

/// The simulated fleet.
#[derive(Debug)]
pub struct Simulator {
    seed: u64,
    speed: f64,
    origin: DateTime<Utc>,
    fleet_size: usize,
    fleet_ports: u32,
    zone: chrono_tz::Tz,
    shards: Vec<Mutex<HashMap<StationId, StationSim>>>,
}

impl Simulator {
    /// A simulator that serves any station id (with the station's configured port count) and
    /// lists no fleet of its own.
    pub fn new(seed: u64, speed: f64) -> Self {
        Self::with_fleet(seed, speed, 0, DEFAULT_PORTS)
    }

    /// A simulator whose fleet is `stations` stations of `ports` ports (`S0001`, `S0002`, ...).
    pub fn with_fleet(seed: u64, speed: f64, stations: usize, ports: u32) -> Self {
        Self {
            seed,
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
            origin: Utc::now(),
            fleet_size: stations,
            fleet_ports: ports.clamp(1, crate::model::MAX_PORT),
            zone: chrono_tz::Asia::Shanghai,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Starts every timeline at `origin` instead of now (for tests, and for a simulated past
    /// that the live simulation continues).
    pub fn starting_at(mut self, origin: DateTime<Utc>) -> Self {
        self.origin = origin;
        self
    }

    /// Follows the daily rhythm in `zone` (default `Asia/Shanghai`).
    pub fn in_zone(mut self, zone: chrono_tz::Tz) -> Self {
        self.zone = zone;
        self
    }

    /// When every timeline starts.
    pub fn origin(&self) -> DateTime<Utc> {
        self.origin
    }

    /// The fleet's stations.
    pub fn fleet(&self) -> Vec<Station> {
        (1..=self.fleet_size)
            .map(|n| self.fleet_station(n))
            .collect()
    }

    /// Number of stations in the fleet.
    pub fn fleet_size(&self) -> usize {
        self.fleet_size
    }

    /// The fleet station with this id, if the id is one of the fleet's.
    pub fn fleet_member(&self, id: &str) -> Option<Station> {
        let n: usize = id.strip_prefix('S')?.parse().ok()?;
        let station = (1..=self.fleet_size)
            .contains(&n)
            .then(|| self.fleet_station(n))?;
        (station.id.as_str() == id).then_some(station)
    }

    fn fleet_station(&self, n: usize) -> Station {
        const PLACES: [&str; 10] = [
            "信阳学院",
            "东区宿舍",
            "图书馆北侧",
            "第一食堂",
            "西门停车场",
            "实验楼",
            "体育馆",
            "南区公寓",
            "行政楼",
            "北门广场",
        ];
        let width = self.fleet_size.to_string().len().max(4);
        let mut rng = Rng::new(mix(self.seed, n as u64));
        let place = PLACES[(rng.next() % PLACES.len() as u64) as usize];
        let zone = (b'A' + (rng.next() % 6) as u8) as char;
        let lat = 32.12 + rng.uniform(-0.03, 0.03);
        let lng = 114.07 + rng.uniform(-0.03, 0.03);
        Station {
            id: StationId::parse(&format!("S{n:0width$}"))
                .unwrap_or_else(|e| unreachable!("generated ids are valid: {e}")),
            name: format!("{place} {zone} 区 {} 号桩", n),
            address: Some(format!("河南省信阳市浉河区 {place} {zone} 区")),
            lat: Some((lat * 1e5).round() / 1e5),
            lng: Some((lng * 1e5).round() / 1e5),
            vendor: SIMULATOR_VENDOR.into(),
            enabled: true,
            port_count: self.fleet_ports,
        }
    }

    /// What the station's ports look like at `at`.
    pub fn snapshot_at(&self, station: &Station, at: DateTime<Utc>) -> Snapshot {
        let ports = match station.port_count {
            0 => DEFAULT_PORTS,
            n => n.min(crate::model::MAX_PORT),
        };
        let shard = &self.shards[shard_of(&station.id)];
        let mut sims = shard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let sim = sims
            .entry(station.id.clone())
            .or_insert_with(|| StationSim::new(self, &station.id, ports));
        if sim.ports.len() != ports as usize {
            *sim = StationSim::new(self, &station.id, ports);
        }
        sim.advance(self, at);
        let readings = sim
            .ports
            .iter()
            .enumerate()
            .map(|(index, port)| port.reading(self, sim, index as u32 + 1, at))
            .collect();
        Snapshot {
            station_id: station.id.clone(),
            observed_at: at,
            ports: readings,
        }
    }

    /// The hour of the day at `at` in the simulator's zone.
    fn local_hour(&self, at: DateTime<Utc>) -> u32 {
        use chrono::Timelike;
        at.with_timezone(&self.zone).hour()
    }

    /// Sim seconds as wall-clock time.
    fn span(&self, sim_seconds: f64) -> Duration {
        Duration::milliseconds((sim_seconds * 1000.0 / self.speed).max(1.0) as i64)
    }
}

#[async_trait]
impl ChargerApi for Simulator {
    fn vendor(&self) -> &str {
        SIMULATOR_VENDOR
    }

    fn endpoint(&self) -> Option<String> {
        None
    }

    async fn fetch(&self, station: &Station) -> Result<Snapshot, ChargerError> {
        Ok(self.snapshot_at(station, crate::model::now()))
    }

    async fn list_stations(&self) -> Result<Vec<Station>, ChargerError> {
        Ok(self.fleet())
    }

    async fn probe(&self) -> Result<(), ChargerError> {
        Ok(())
    }
}

/// One station's timelines.
#[derive(Debug)]
struct StationSim {
    seed: u64,
    rng: Rng,
    /// Whether the pile says when a session ends (about half do, as among real vendors).
    tells_ends: bool,
    online: bool,
    /// When the pile goes offline (or comes back).
    switch_at: DateTime<Utc>,
    ports: Vec<PortSim>,
}

impl StationSim {
    fn new(sim: &Simulator, id: &StationId, ports: u32) -> Self {
        let seed = mix(sim.seed, hash_str(id.as_str()));
        let mut rng = Rng::new(seed);
        // About 1.5% of piles are offline at any moment.
        let online = rng.chance(0.985);
        let length = if online {
            rng.exponential(2.0 * 24.0 * HOUR)
        } else {
            rng.uniform(5.0 * MINUTE, HOUR)
        };
        let switch_at = sim.origin + sim.span(length * rng.uniform(0.0, 1.0));
        Self {
            seed,
            tells_ends: (seed >> 7).is_multiple_of(2),
            online,
            switch_at,
            ports: (1..=ports)
                .map(|port| PortSim::new(sim, Rng::new(mix(seed, u64::from(port)))))
                .collect(),
            rng,
        }
    }

    fn advance(&mut self, sim: &Simulator, at: DateTime<Utc>) {
        while self.switch_at <= at {
            self.online = !self.online;
            let length = if self.online {
                self.rng.exponential(2.0 * 24.0 * HOUR)
            } else {
                self.rng.uniform(5.0 * MINUTE, HOUR)
            };
            self.switch_at += sim.span(length);
        }
        for port in &mut self.ports {
            port.advance(sim, at);
        }
    }
}

/// One port's timeline.
#[derive(Debug)]
struct PortSim {
    rng: Rng,
    status: PortStatus,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    /// Current drawn by the running session, A.
    amps: f64,
}

impl PortSim {
    fn new(sim: &Simulator, mut rng: Rng) -> Self {
        let draw = rng.uniform(0.0, 1.0);
        let status = match draw {
            d if d < 0.55 => PortStatus::Free,
            d if d < 0.93 => PortStatus::Occupied,
            d if d < 0.97 => PortStatus::Fault,
            _ => PortStatus::Reserved,
        };
        let length = duration_of(&mut rng, status);
        let elapsed = length * rng.uniform(0.0, 1.0);
        let since = sim.origin - sim.span(elapsed);
        let amps = rng.uniform(0.3, 3.0);
        Self {
            until: since + sim.span(length),
            rng,
            status,
            since,
            amps,
        }
    }

    fn advance(&mut self, sim: &Simulator, at: DateTime<Utc>) {
        while self.until <= at {
            let next = match self.status {
                PortStatus::Free => {
                    let draw = self.rng.uniform(0.0, 1.0);
                    if draw < 0.03 {
                        PortStatus::Fault
                    } else if draw < 0.06 {
                        PortStatus::Reserved
                    } else {
                        PortStatus::Occupied
                    }
                }
                PortStatus::Reserved if self.rng.chance(0.8) => PortStatus::Occupied,
                _ => PortStatus::Free,
            };
            if next == PortStatus::Occupied {
                self.amps = self.rng.uniform(0.3, 3.0);
            }
            self.status = next;
            self.since = self.until;
            let mut length = duration_of(&mut self.rng, next);
            if next == PortStatus::Free {
                length /= arrivals(sim.local_hour(self.since));
            }
            self.until = self.since + sim.span(length.max(MINUTE));
        }
    }

    fn reading(
        &self,
        sim: &Simulator,
        station: &StationSim,
        port: u32,
        at: DateTime<Utc>,
    ) -> PortReading {
        let mut reading = PortReading::status_only(port, self.status);
        if !station.online {
            reading.status = PortStatus::Offline;
            reading.raw_code = Some(PortStatus::Offline.as_str().into());
            return reading;
        }
        reading.raw_code = Some(self.status.as_str().into());
        // Mains voltage wanders a little from one second to the next.
        let noise =
            Rng::new(mix(station.seed ^ u64::from(port), at.timestamp() as u64)).uniform(-2.5, 2.5);
        let round = |value: f64, digits: i32| {
            let factor = 10f64.powi(digits);
            (value * factor).round() / factor
        };
        match self.status {
            PortStatus::Free | PortStatus::Reserved | PortStatus::Unavailable => {
                reading.voltage = Some(round(220.0 + noise, 1));
                reading.current = Some(0.0);
                reading.power = Some(0.0);
            }
            PortStatus::Occupied => {
                let total = (self.until - self.since).num_milliseconds().max(1) as f64;
                let done = ((at - self.since).num_milliseconds() as f64 / total).clamp(0.0, 1.0);
                // Batteries draw less as they fill: the last fifth of a session tapers off.
                let taper = if done > 0.8 {
                    1.0 - (done - 0.8) / 0.2 * 0.7
                } else {
                    1.0
                };
                let amps = round(self.amps * taper, 2);
                let volts = round(220.0 + noise - 0.8 * amps, 1);
                let hours = (at - self.since).num_milliseconds() as f64 / 3_600_000.0 * sim.speed;
                reading.voltage = Some(volts);
                reading.current = Some(amps);
                reading.power = Some(round(volts * amps, 1));
                reading.energy_kwh = Some(round(self.amps * 220.0 * hours / 1000.0, 3));
                reading.session_ends_at = station.tells_ends.then_some(self.until);
            }
            PortStatus::Fault | PortStatus::Offline | PortStatus::Unknown => {}
        }
        reading
    }
}

/// How quickly riders take a free port at each hour of the day, relative to an average hour:
/// a free stay lasts `1 / arrivals` times its drawn length. Busiest from 18 to 22 h, quietest
/// from 1 to 5 h.
fn arrivals(hour: u32) -> f64 {
    const BY_HOUR: [f64; 24] = [
        0.35, 0.2, 0.15, 0.12, 0.12, 0.15, 0.35, 0.7, 0.9, 0.8, 0.75, 0.8, //
        1.0, 1.0, 0.8, 0.75, 0.8, 1.1, 1.6, 1.9, 1.9, 1.7, 1.2, 0.7,
    ];
    BY_HOUR[hour as usize % 24]
}

/// How long a port stays in `status`, in sim seconds.
fn duration_of(rng: &mut Rng, status: PortStatus) -> f64 {
    match status {
        PortStatus::Free => rng.exponential(45.0 * MINUTE).max(MINUTE),
        PortStatus::Occupied => rng.uniform(20.0 * MINUTE, 4.0 * HOUR),
        PortStatus::Reserved => rng.uniform(5.0 * MINUTE, 15.0 * MINUTE),
        _ => rng.uniform(20.0 * MINUTE, 3.0 * HOUR),
    }
}

fn shard_of(id: &StationId) -> usize {
    (hash_str(id.as_str()) % SHARDS as u64) as usize
}

/// A stable hash of a string (FNV-1a; std's hasher is not stable across releases).
fn hash_str(text: &str) -> u64 {
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for byte in bytes {
                self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut hasher = Fnv(0xcbf2_9ce4_8422_2325);
    text.hash(&mut hasher);
    hasher.finish()
}

fn mix(a: u64, b: u64) -> u64 {
    Rng::new(a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15)).next()
}

/// SplitMix64: small, fast and good enough for a simulation.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[low, high)`.
    fn uniform(&mut self, low: f64, high: f64) -> f64 {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        low + unit * (high - low)
    }

    fn chance(&mut self, probability: f64) -> bool {
        self.uniform(0.0, 1.0) < probability
    }

    fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform(0.0, 1.0)).ln()
    }
}

/// How much past the demo begins with: a week at a snapshot a minute on a real-time
/// simulator; with a faster simulated clock a snapshot every `60 s / speed` (at least a second),
/// and at most [`DEMO_SNAPSHOTS`] of them. Returns the past's length and its step.
pub fn past_span(speed: f64) -> (Duration, Duration) {
    let speed = if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    };
    let step_ms = (60_000.0 / speed).max(1_000.0) as i64;
    let step = Duration::milliseconds(step_ms);
    let length = (step * DEMO_SNAPSHOTS).min(DEMO_PAST);
    (length, step)
}

/// The longest simulated past of the demo.
pub const DEMO_PAST: Duration = Duration::days(7);
/// The most snapshots of a demo station's past.
pub const DEMO_SNAPSHOTS: i32 = 10_080;

#[cfg(test)]
mod tests {
    use super::*;

    fn station(id: &str, ports: u32) -> Station {
        Station {
            id: StationId::parse(id).unwrap(),
            name: id.into(),
            address: None,
            lat: None,
            lng: None,
            vendor: SIMULATOR_VENDOR.into(),
            enabled: true,
            port_count: ports,
        }
    }

    #[test]
    fn the_same_seed_tells_the_same_story() {
        let origin = Utc::now();
        let a = Simulator::new(7, 60.0).starting_at(origin);
        let b = Simulator::new(7, 60.0).starting_at(origin);
        let c = Simulator::new(8, 60.0).starting_at(origin);
        let s = station("S0001", 12);
        let mut differs = false;
        for minute in 0..30 {
            let at = origin + Duration::minutes(minute);
            let (sa, sb, sc) = (
                a.snapshot_at(&s, at),
                b.snapshot_at(&s, at),
                c.snapshot_at(&s, at),
            );
            assert_eq!(sa, sb);
            differs |= sa != sc;
        }
        assert!(differs, "another seed should give another story");
    }

    #[test]
    fn readings_are_physically_consistent() {
        let origin = Utc::now();
        let sim = Simulator::with_fleet(1, 1.0, 200, 12).starting_at(origin);
        let mut occupied = 0;
        let mut ends = 0;
        let mut statuses = std::collections::HashSet::new();
        for member in sim.fleet() {
            for reading in sim.snapshot_at(&member, origin).ports {
                statuses.insert(reading.status);
                match reading.status {
                    PortStatus::Occupied => {
                        occupied += 1;
                        let (v, a, w) = (
                            reading.voltage.unwrap(),
                            reading.current.unwrap(),
                            reading.power.unwrap(),
                        );
                        assert!((0.0..=3.0).contains(&a), "{a} A");
                        assert!((210.0..=230.0).contains(&v), "{v} V");
                        assert!((w - v * a).abs() < 1.0, "{w} W vs {v} V × {a} A");
                        assert!(reading.session_ends_at.is_none_or(|end| end > origin));
                        ends += usize::from(reading.session_ends_at.is_some());
                    }
                    PortStatus::Fault | PortStatus::Offline => {
                        assert_eq!(reading.voltage, None);
                        assert_eq!(reading.current, None);
                    }
                    _ => assert_eq!(reading.current, Some(0.0)),
                }
            }
        }
        assert!(occupied > 500, "about 38% of 2400 ports charge: {occupied}");
        assert!(
            ends > occupied / 4 && ends < occupied * 3 / 4,
            "about half the piles say when a session ends: {ends} of {occupied}"
        );
        assert!(statuses.contains(&PortStatus::Free) && statuses.contains(&PortStatus::Fault));
    }

    #[test]
    fn ports_change_over_time_and_sessions_end() {
        // 18:00 in Shanghai: the evening, when riders come and go most.
        let origin = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 1, 10, 0, 0).unwrap();
        let sim = Simulator::new(3, 1.0).starting_at(origin);
        let s = station("DEMO", 10);
        let first = sim.snapshot_at(&s, origin);
        let later = sim.snapshot_at(&s, origin + Duration::hours(5));
        let changed = first
            .ports
            .iter()
            .zip(&later.ports)
            .filter(|(a, b)| a.status != b.status)
            .count();
        assert!(
            changed >= 5,
            "after five hours most ports have moved on: {changed}"
        );
    }

    #[test]
    fn evenings_are_busier_than_the_small_hours() {
        // A day of the fleet's ports in Shanghai time, sampled every 10 minutes: the share of
        // ports charging at 20:00–22:00 is well above the share at 04:00–06:00.
        let midnight = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 30, 16, 0, 0).unwrap();
        let sim = Simulator::with_fleet(5, 1.0, 100, 10).starting_at(midnight - Duration::days(2));
        let share = |from_hour: i64| {
            let (mut occupied, mut seen) = (0, 0);
            for step in 0..12 {
                let at = midnight + Duration::hours(from_hour) + Duration::minutes(10 * step);
                for member in sim.fleet() {
                    for reading in sim.snapshot_at(&member, at).ports {
                        seen += 1;
                        occupied += usize::from(reading.status == PortStatus::Occupied);
                    }
                }
            }
            occupied as f64 / seen as f64
        };
        let (night, evening) = (share(4), share(20));
        assert!(
            evening > night + 0.15,
            "evening {evening:.2}, night {night:.2}"
        );
    }

    #[test]
    fn fleet_ids_are_recognised() {
        let sim = Simulator::with_fleet(1, 1.0, 12, 10);
        assert_eq!(sim.fleet().len(), 12);
        assert_eq!(sim.fleet_member("S0012").unwrap().port_count, 10);
        assert!(sim.fleet_member("S0013").is_none());
        assert!(sim.fleet_member("S012").is_none());
        assert!(sim.fleet_member("X").is_none());
    }
}
