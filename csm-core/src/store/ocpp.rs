//! What the SQL store keeps of OCPP charge points, for both backends: their passwords (salted
//! hashes only), the registry of their connections, and (when kept there) their message logs.

use chrono::{DateTime, Utc};

use super::StoreError;
use super::record::{Column, Record, Value};
use super::rows::Reader;
use super::sql::{Sql, statement};
use super::sql_store::{Backend, SqlStore};
use super::statements::{OnConflict, Table};
use crate::model::StationId;
use crate::model::ocpp::{ChargePointRecord, Direction, StoredFrame};

/// A frame of a message log; its id is the database's to give, read beside the columns.
impl Record for StoredFrame {
    const TABLE: Table = Table {
        name: "ocpp_messages",
        key: &["id"],
        on_conflict: OnConflict::Ignore,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("station_id", |r| Value::text(r.station_id.as_str())),
        Column::new("instance", |r| Value::text(&r.instance)),
        Column::new("at", |r| Value::time(r.at)),
        Column::new("direction", |r| Value::text(r.direction.as_str())),
        Column::new("connection", |r| Value::count(r.connection)),
        Column::new("action", |r| Value::Text(r.action.as_deref())),
        Column::new("frame", |r| Value::text(&r.frame)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        let direction = r.text("direction")?;
        Ok(Self {
            id: u64::try_from(r.int("id")?).map_err(|e| r.corrupt("id", e))?,
            station_id: r.id("station_id")?,
            instance: r.text("instance")?,
            at: r.time("at")?,
            direction: Direction::parse(&direction).ok_or_else(|| {
                r.corrupt("direction", format!("{direction:?} is not in, out or note"))
            })?,
            connection: u64::try_from(r.int("connection")?)
                .map_err(|e| r.corrupt("connection", e))?,
            action: r.opt_text("action")?,
            frame: r.text("frame")?,
        })
    }
}

/// A charge point's password hash as kept.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PasswordRow {
    /// The charge point.
    pub(crate) station_id: StationId,
    /// The hash (`crate::ocpp::password`).
    pub(crate) hash: String,
    /// When it was set.
    pub(crate) updated_at: DateTime<Utc>,
}

impl Record for PasswordRow {
    const TABLE: Table = Table {
        name: "ocpp_passwords",
        key: &["station_id"],
        on_conflict: OnConflict::Update,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("station_id", |r| Value::text(r.station_id.as_str())),
        Column::new("hash", |r| Value::text(&r.hash)),
        Column::new("updated_at", |r| Value::time(r.updated_at)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            station_id: r.id("station_id")?,
            hash: r.text("hash")?,
            updated_at: r.time("updated_at")?,
        })
    }
}

/// A charge point's security profile above 1, as kept.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProfileRow {
    pub(crate) station_id: StationId,
    pub(crate) profile: u8,
    pub(crate) updated_at: DateTime<Utc>,
}

impl Record for ProfileRow {
    const TABLE: Table = Table {
        name: "ocpp_security",
        key: &["station_id"],
        on_conflict: OnConflict::Update,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("station_id", |r| Value::text(r.station_id.as_str())),
        Column::new("profile", |r| Value::U32(u32::from(r.profile))),
        Column::new("updated_at", |r| Value::time(r.updated_at)),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        let profile = r.u32("profile")?;
        Ok(Self {
            station_id: r.id("station_id")?,
            profile: u8::try_from(profile)
                .ok()
                .filter(|p| (1..=3).contains(p))
                .ok_or_else(|| r.corrupt("profile", format!("{profile} is not 1, 2 or 3")))?,
            updated_at: r.time("updated_at")?,
        })
    }
}

/// The registry of OCPP charge points, a row each.
impl Record for ChargePointRecord {
    const TABLE: Table = Table {
        name: "ocpp_charge_points",
        key: &["station_id"],
        on_conflict: OnConflict::Update,
    };
    const COLUMNS: &'static [Column<Self>] = &[
        Column::new("station_id", |r| Value::text(r.station_id.as_str())),
        Column::new("connected", |r| Value::Bool(r.connected)),
        Column::new("connected_at", |r| Value::Time(r.connected_at)),
        Column::new("disconnected_at", |r| Value::Time(r.disconnected_at)),
        Column::new("last_message_at", |r| Value::Time(r.last_message_at)),
        Column::new("last_action", |r| Value::Text(r.last_action.as_deref())),
        Column::new("vendor", |r| Value::Text(r.vendor.as_deref())),
        Column::new("model", |r| Value::Text(r.model.as_deref())),
        Column::new("firmware", |r| Value::Text(r.firmware.as_deref())),
        Column::new("firmware_status", |r| {
            Value::Text(r.firmware_status.as_deref())
        }),
        Column::new("heartbeat_secs", |r| Value::U32(r.heartbeat_secs)),
        Column::new("serial", |r| Value::Text(r.serial.as_deref())),
        Column::new("problem", |r| Value::Text(r.problem.as_deref())),
        Column::new("ocpp_version", |r| {
            Value::Text(r.ocpp_version.map(|v| v.as_str()))
        }),
    ];

    fn read<DB: Sql>(r: &Reader<'_, DB>) -> Result<Self, StoreError> {
        Ok(Self {
            station_id: r.id("station_id")?,
            connected: r.bool("connected")?,
            connected_at: r.opt_time("connected_at")?,
            disconnected_at: r.opt_time("disconnected_at")?,
            last_message_at: r.opt_time("last_message_at")?,
            last_action: r.opt_text("last_action")?,
            vendor: r.opt_text("vendor")?,
            model: r.opt_text("model")?,
            firmware: r.opt_text("firmware")?,
            firmware_status: r.opt_text("firmware_status")?,
            heartbeat_secs: r.u32("heartbeat_secs")?,
            serial: r.opt_text("serial")?,
            problem: r.opt_text("problem")?,
            ocpp_version: match r.opt_text("ocpp_version")? {
                None => None,
                Some(text) => Some(text.parse().map_err(|e| r.corrupt("ocpp_version", e))?),
            },
        })
    }
}

impl<DB: Backend> SqlStore<DB> {
    /// The password hash of every charge point that has one.
    pub(super) async fn read_charger_passwords(
        &self,
    ) -> Result<Vec<(StationId, String)>, StoreError> {
        let select = statement(format!(
            "SELECT {} FROM ocpp_passwords",
            PasswordRow::column_list()
        ));
        let rows = self
            .fetch(select, "reading charge points' passwords")
            .await?;
        rows.iter()
            .map(|row| PasswordRow::from_row::<DB>(row).map(|r| (r.station_id, r.hash)))
            .collect()
    }

    /// Stores or removes the password hash of a charge point.
    pub(super) async fn write_charger_password(
        &self,
        id: &StationId,
        hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let doing = "storing a charge point's password";
        let Some(hash) = hash else {
            let delete = DB::bind_text(
                statement("DELETE FROM ocpp_passwords WHERE station_id = ?"),
                Some(id.as_str()),
            );
            self.run(delete, doing).await?;
            return Ok(());
        };
        let row = PasswordRow {
            station_id: id.clone(),
            hash: hash.to_owned(),
            updated_at: crate::model::now(),
        };
        let mut tx = self.begin(doing).await?;
        let work = self
            .insert_rows(&mut tx, std::slice::from_ref(&row), doing)
            .await;
        self.finish(tx, work, doing).await
    }

    /// The security profile of every charge point set above 1.
    pub(super) async fn read_charger_profiles(&self) -> Result<Vec<(StationId, u8)>, StoreError> {
        let select = statement(format!(
            "SELECT {} FROM ocpp_security",
            ProfileRow::column_list()
        ));
        let rows = self
            .fetch(select, "reading charge points' security profiles")
            .await?;
        rows.iter()
            .map(|row| ProfileRow::from_row::<DB>(row).map(|r| (r.station_id, r.profile)))
            .collect()
    }

    /// Stores a charge point's security profile (1 removes its row).
    pub(super) async fn write_charger_profile(
        &self,
        id: &StationId,
        profile: u8,
    ) -> Result<(), StoreError> {
        let doing = "storing a charge point's security profile";
        if profile <= 1 {
            let delete = DB::bind_text(
                statement("DELETE FROM ocpp_security WHERE station_id = ?"),
                Some(id.as_str()),
            );
            self.run(delete, doing).await?;
            return Ok(());
        }
        let row = ProfileRow {
            station_id: id.clone(),
            profile,
            updated_at: crate::model::now(),
        };
        let mut tx = self.begin(doing).await?;
        let work = self
            .insert_rows(&mut tx, std::slice::from_ref(&row), doing)
            .await;
        self.finish(tx, work, doing).await
    }

    /// Stores the records of charge points (each replaces the row of its charge point).
    pub(super) async fn insert_charge_points(
        &self,
        records: &[ChargePointRecord],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let doing = "writing the registry of charge points";
        let mut tx = self.begin(doing).await?;
        let work = self.insert_rows(&mut tx, records, doing).await;
        self.finish(tx, work, doing).await
    }

    /// Every record of the registry of charge points.
    pub(super) async fn read_charge_points(&self) -> Result<Vec<ChargePointRecord>, StoreError> {
        let select = statement(format!(
            "SELECT {} FROM ocpp_charge_points ORDER BY station_id",
            ChargePointRecord::column_list()
        ));
        let rows = self
            .fetch(select, "reading the registry of charge points")
            .await?;
        rows.iter().map(ChargePointRecord::from_row::<DB>).collect()
    }

    /// Appends frames of message logs.
    pub(super) async fn insert_ocpp_messages(
        &self,
        frames: &[StoredFrame],
    ) -> Result<(), StoreError> {
        if frames.is_empty() {
            return Ok(());
        }
        let doing = "writing the chargers' message logs";
        let mut tx = self.begin(doing).await?;
        let work = self.insert_rows(&mut tx, frames, doing).await;
        self.finish(tx, work, doing).await
    }

    /// A charger's stored frames after id `after`: the newest `limit`, oldest first.
    pub(super) async fn read_ocpp_messages(
        &self,
        id: &StationId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredFrame>, StoreError> {
        let select = statement(format!(
            "SELECT id, {} FROM ocpp_messages WHERE station_id = ? AND id > ? ORDER BY id DESC LIMIT {limit}",
            StoredFrame::column_list()
        ));
        let select = DB::bind_int(
            DB::bind_text(select, Some(id.as_str())),
            Some(i64::try_from(after).unwrap_or(i64::MAX)),
        );
        let rows = self
            .fetch(select, "reading a charger's message log")
            .await?;
        let mut frames = rows
            .iter()
            .map(StoredFrame::from_row::<DB>)
            .collect::<Result<Vec<_>, _>>()?;
        frames.reverse();
        Ok(frames)
    }
}
