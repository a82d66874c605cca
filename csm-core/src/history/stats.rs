//! Statistics of a station or of the fleet over the last N days, from the stored hourly totals,
//! the stays running now ([`super::record::open_stays`]) and session lengths: utilisation,
//! minutes in each status, an occupancy table by weekday and hour in the statistics' time
//! zone, sessions and their median and 90th-percentile length, energy, and each day's figures.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::{HourDelta, HourRow, HourTotals};
use crate::model::PortStatus;
use crate::time;

/// Most days statistics cover.
pub const MAX_DAYS: u32 = 366;
/// Days statistics cover when the question names none.
pub const DEFAULT_DAYS: u32 = 7;
/// Most session lengths a median rests on (the most recent).
pub const LENGTH_SAMPLE: u32 = 20_000;

/// Minutes in each status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusMinutes {
    /// Free.
    pub free: f64,
    /// Occupied.
    pub occupied: f64,
    /// In fault.
    pub fault: f64,
    /// Offline, or csm could not reach the station.
    pub offline: f64,
    /// Reserved.
    pub reserved: f64,
    /// Taken out of service by the operator.
    pub unavailable: f64,
    /// Unknown.
    pub unknown: f64,
}

impl StatusMinutes {
    fn of(totals: &HourTotals) -> Self {
        let minutes = |status| round(totals.secs_in(status) as f64 / 60.0, 1);
        Self {
            free: minutes(PortStatus::Free),
            occupied: minutes(PortStatus::Occupied),
            fault: minutes(PortStatus::Fault),
            offline: minutes(PortStatus::Offline),
            reserved: minutes(PortStatus::Reserved),
            unavailable: minutes(PortStatus::Unavailable),
            unknown: minutes(PortStatus::Unknown),
        }
    }
}

/// One day of statistics (a day of the statistics' time zone).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayStats {
    /// The day, `YYYY-MM-DD`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub date: NaiveDate,
    /// Occupied time over all counted time; `null` with none counted.
    pub utilisation: Option<f64>,
    /// Sessions started.
    pub sessions: u64,
    /// Minutes in fault.
    pub fault_minutes: f64,
    /// Minutes offline or unreachable.
    pub offline_minutes: f64,
    /// Minutes taken out of service by the operator.
    pub unavailable_minutes: f64,
    /// Up time over counted time: not in fault or offline, with time out of service and
    /// unknown left out; `null` with none counted.
    pub availability: Option<f64>,
}

/// Statistics of a station, or of the fleet, over the last `days` days.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stats {
    /// Days covered.
    pub days: u32,
    /// Start of the first hour covered.
    #[serde(serialize_with = "time::rfc3339")]
    pub from: DateTime<Utc>,
    /// End of the range (now).
    #[serde(serialize_with = "time::rfc3339")]
    pub to: DateTime<Utc>,
    /// Time zone of the weekdays, hours and days.
    pub timezone: String,
    /// Occupied time over all counted port time; `null` with none counted.
    pub utilisation: Option<f64>,
    /// Up time over counted time (see [`DayStats::availability`]); `null` with none counted.
    pub availability: Option<f64>,
    /// Port minutes in each status (summed over ports).
    pub minutes: StatusMinutes,
    /// Sessions started.
    pub sessions: u64,
    /// Median length of the ended sessions, minutes.
    pub median_session_minutes: Option<f64>,
    /// 90th percentile of their lengths, minutes.
    pub p90_session_minutes: Option<f64>,
    /// How many session lengths the median and the 90th percentile rest on (the most recent,
    /// at most 20,000).
    pub session_sample: usize,
    /// Energy of the sessions that ended, kWh (where the vendor sends it).
    pub energy_kwh: f64,
    /// Occupied fraction by weekday (Monday first) and hour (0–23); `null` where nothing was
    /// counted.
    pub occupancy: Vec<Vec<Option<f64>>>,
    /// Each day, oldest first.
    pub daily: Vec<DayStats>,
}

/// The range of the last `days` days up to `now`: from the start of the hour `days` days ago.
pub fn range(days: u32, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (super::hour_of(now - TimeDelta::days(i64::from(days))), now)
}

/// Statistics from stored hours, the open stays, and session lengths (any order).
pub fn summarize(
    days: u32,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    tz: Tz,
    stored: &[HourRow],
    open: &[HourDelta],
    mut lengths: Vec<u32>,
) -> Stats {
    let mut hours: BTreeMap<DateTime<Utc>, HourTotals> = BTreeMap::new();
    for row in stored {
        hours.entry(row.hour).or_default().add(&row.totals);
    }
    for delta in open.iter().filter(|d| d.hour >= from && d.hour < to) {
        hours.entry(delta.hour).or_default().add(&delta.totals);
    }
    let mut total = HourTotals::default();
    let mut cells = [[HourTotals::default(); 24]; 7];
    let mut daily: BTreeMap<NaiveDate, HourTotals> = BTreeMap::new();
    for (hour, totals) in &hours {
        total.add(totals);
        // The local hour an UTC hour falls in, taken at its middle (zones with half-hour
        // offsets split it).
        let local = (*hour + TimeDelta::minutes(30)).with_timezone(&tz);
        let weekday = local.weekday().num_days_from_monday() as usize;
        cells[weekday][local.hour() as usize].add(totals);
        daily.entry(local.date_naive()).or_default().add(totals);
    }
    lengths.sort_unstable();
    let minutes = |secs: u32| round(f64::from(secs) / 60.0, 1);
    Stats {
        days,
        from,
        to,
        timezone: tz.name().to_owned(),
        utilisation: utilisation(&total),
        availability: super::availability::availability(&total),
        minutes: StatusMinutes::of(&total),
        sessions: total.sessions_started,
        median_session_minutes: percentile(&lengths, 0.5).map(minutes),
        p90_session_minutes: percentile(&lengths, 0.9).map(minutes),
        session_sample: lengths.len(),
        energy_kwh: round(total.energy_kwh, 3),
        occupancy: cells
            .iter()
            .map(|day| day.iter().map(utilisation).collect())
            .collect(),
        daily: daily
            .into_iter()
            .map(|(date, totals)| {
                let minutes = StatusMinutes::of(&totals);
                DayStats {
                    date,
                    utilisation: utilisation(&totals),
                    sessions: totals.sessions_started,
                    fault_minutes: minutes.fault,
                    offline_minutes: minutes.offline,
                    unavailable_minutes: minutes.unavailable,
                    availability: super::availability::availability(&totals),
                }
            })
            .collect(),
    }
}

/// Occupied time over all counted time.
fn utilisation(totals: &HourTotals) -> Option<f64> {
    let counted = totals.total_secs();
    (counted > 0).then(|| {
        round(
            totals.secs_in(PortStatus::Occupied) as f64 / counted as f64,
            4,
        )
    })
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn round(value: f64, digits: i32) -> f64 {
    let factor = 10f64.powi(digits);
    (value * factor).round() / factor
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::history::status_index;

    fn hour(at: DateTime<Utc>, free: u64, occupied: u64, sessions: u64) -> HourRow {
        let mut totals = HourTotals::default();
        totals.secs[status_index(PortStatus::Free)] = free;
        totals.secs[status_index(PortStatus::Occupied)] = occupied;
        totals.sessions_started = sessions;
        HourRow { hour: at, totals }
    }

    #[test]
    fn hours_land_in_their_local_weekday_and_hour() {
        // Monday 2026-11-30 12:00 UTC is 20:00 in Shanghai, 13:00 in Berlin.
        let monday_noon = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let stored = [
            hour(monday_noon, 900, 2_700, 2),
            hour(monday_noon + TimeDelta::hours(1), 3_600, 0, 0),
        ];
        let now = monday_noon + TimeDelta::hours(2);
        let stats = summarize(
            7,
            range(7, now),
            chrono_tz::Asia::Shanghai,
            &stored,
            &[],
            vec![600, 1_200, 1_800, 3_600],
        );
        assert_eq!(stats.occupancy.len(), 7);
        assert!(stats.occupancy.iter().all(|day| day.len() == 24));
        assert_eq!(stats.occupancy[0][20], Some(0.75));
        assert_eq!(stats.occupancy[0][21], Some(0.0));
        assert_eq!(stats.occupancy[0][19], None);
        assert_eq!(stats.utilisation, Some(0.375));
        assert_eq!(stats.sessions, 2);
        assert_eq!(stats.median_session_minutes, Some(20.0));
        assert_eq!(stats.p90_session_minutes, Some(60.0));
        assert_eq!(stats.minutes.occupied, 45.0);
        let berlin = summarize(
            7,
            range(7, now),
            chrono_tz::Europe::Berlin,
            &stored,
            &[],
            vec![],
        );
        assert_eq!(berlin.occupancy[0][13], Some(0.75));
        assert_eq!(berlin.median_session_minutes, None);
        assert_eq!(berlin.daily.len(), 1);
        assert_eq!(
            berlin.daily[0].date,
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
        );
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<u32> = (1..=10).collect();
        assert_eq!(percentile(&values, 0.5), Some(5));
        assert_eq!(percentile(&values, 0.9), Some(9));
        assert_eq!(percentile(&[7], 0.9), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
