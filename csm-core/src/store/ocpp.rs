//! What the SQL store keeps of OCPP charge points, for both backends: their passwords (salted
//! hashes only) and the registry of their connections.

use super::StoreError;
use super::rows::Reader;
use super::sql::{Sql, Statement, statement};
use super::sql_store::{Backend, SqlStore};
use super::statements::OCPP_CHARGE_POINTS;
use crate::model::StationId;
use crate::model::ocpp::ChargePointRecord;

impl<DB: Backend> SqlStore<DB> {
    /// The password hash of every charge point that has one.
    pub(super) async fn read_charger_passwords(
        &self,
    ) -> Result<Vec<(StationId, String)>, StoreError> {
        let select = statement("SELECT station_id, hash FROM ocpp_passwords");
        let rows = self
            .fetch(select, "reading charge points' passwords")
            .await?;
        rows.iter()
            .map(|row| {
                let r = Reader::<DB>::new(row, "ocpp_passwords");
                Ok((r.id("station_id")?, r.text("hash")?))
            })
            .collect()
    }

    /// Stores or removes the password hash of a charge point.
    pub(super) async fn write_charger_password(
        &self,
        id: &StationId,
        hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let doing = "storing a charge point's password";
        let delete = DB::bind_text(
            statement("DELETE FROM ocpp_passwords WHERE station_id = ?"),
            Some(id.as_str()),
        );
        let Some(hash) = hash else {
            self.run(delete, doing).await?;
            return Ok(());
        };
        let mut tx = self.begin(doing).await?;
        let work = async {
            DB::execute(delete, &mut *tx)
                .await
                .map_err(|e| self.error(doing, e))?;
            let insert = statement(
                "INSERT INTO ocpp_passwords (station_id, hash, updated_at) VALUES (?, ?, ?)",
            );
            let insert = DB::bind_text(insert, Some(id.as_str()));
            let insert = DB::bind_text(insert, Some(hash));
            let insert = DB::bind_time(insert, Some(crate::model::now()));
            DB::execute(insert, &mut *tx)
                .await
                .map_err(|e| self.error(doing, e))?;
            Ok(())
        }
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
        let work = self
            .insert_rows(
                &mut tx,
                &OCPP_CHARGE_POINTS,
                records,
                bind_charge_point::<DB>,
                doing,
            )
            .await;
        self.finish(tx, work, doing).await
    }

    /// Every record of the registry of charge points.
    pub(super) async fn read_charge_points(&self) -> Result<Vec<ChargePointRecord>, StoreError> {
        let select = statement(format!(
            "SELECT {} FROM ocpp_charge_points ORDER BY station_id",
            OCPP_CHARGE_POINTS.column_list()
        ));
        let rows = self
            .fetch(select, "reading the registry of charge points")
            .await?;
        rows.iter().map(charge_point::<DB>).collect()
    }
}

/// Binds a record as a row of `OCPP_CHARGE_POINTS`.
fn bind_charge_point<DB: Sql>(
    statement: Statement<DB>,
    record: &ChargePointRecord,
) -> Statement<DB> {
    let statement = DB::bind_text(statement, Some(record.station_id.as_str()));
    let statement = DB::bind_bool(statement, record.connected);
    let statement = DB::bind_time(statement, record.connected_at);
    let statement = DB::bind_time(statement, record.disconnected_at);
    let statement = DB::bind_time(statement, record.last_message_at);
    let statement = DB::bind_text(statement, record.last_action.as_deref());
    let statement = DB::bind_text(statement, record.vendor.as_deref());
    let statement = DB::bind_text(statement, record.model.as_deref());
    let statement = DB::bind_text(statement, record.firmware.as_deref());
    let statement = DB::bind_text(statement, record.firmware_status.as_deref());
    DB::bind_u32(statement, record.heartbeat_secs)
}

/// A record read back.
fn charge_point<DB: Sql>(row: &DB::Row) -> Result<ChargePointRecord, StoreError> {
    let r = Reader::<DB>::new(row, "ocpp_charge_points");
    Ok(ChargePointRecord {
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
    })
}
