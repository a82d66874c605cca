//! The OpenAPI 3 document of the API, generated from the handlers and the JSON types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{alerts, cluster, events, health, history, ocpp, stations};
use crate::views;
use csm_core::views as core;

/// The API description served at `/api/openapi.json`.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "csm — charging station monitor",
        description = "Live port status of charging stations from many vendors, their history, and station management. Status values: free, occupied, fault, offline, reserved, unknown. Measurements the vendor does not send are null."
    ),
    paths(
        stations::list_stations,
        stations::get_station,
        stations::default_ports,
        stations::refresh_station,
        stations::station_events,
        history::station_history,
        history::station_sessions,
        history::station_stats,
        history::fleet_stats,
        stations::create_station,
        stations::delete_station,
        stations::refresh_all,
        alerts::list_channels,
        alerts::create_channel,
        alerts::delete_channel,
        alerts::test_channel,
        alerts::list_rules,
        alerts::create_rule,
        alerts::delete_rule,
        alerts::alert_history,
        ocpp::charge_points,
        ocpp::charge_point,
        events::events,
        health::healthz,
        health::readyz,
        health::metrics,
        cluster::cluster,
    ),
    components(schemas(
        csm_core::model::PortStatus,
        csm_core::model::StationSummary,
        core::PortJson,
        core::StationJson,
        core::ListedStationJson,
        core::StationListJson,
        core::StationDetailJson,
        core::EventJson,
        core::EventListJson,
        core::StationUpdateJson,
        core::history::ReadingJson,
        core::history::PortReadingsJson,
        core::history::HistoryJson,
        core::history::SessionJson,
        core::history::SessionListJson,
        core::history::StationStatsJson,
        core::history::RankedStationJson,
        core::history::FleetStatsJson,
        csm_core::history::stats::StatusMinutes,
        csm_core::history::stats::DayStats,
        csm_core::history::estimate::FreeEstimate,
        csm_core::history::estimate::Basis,
        csm_core::history::estimate::Scope,
        history::Format,
        views::RefreshJson,
        views::ReadinessJson,
        views::ErrorJson,
        stations::NewStation,
        stations::RefreshAllJson,
        stations::ViewParam,
        events::SseEvent,
        core::alerts::ChannelListJson,
        core::alerts::RuleListJson,
        core::alerts::AlertListJson,
        core::alerts::ChannelTestJson,
        csm_core::alerts::ChannelDraft,
        csm_core::alerts::ChannelJson,
        csm_core::alerts::ChannelKind,
        csm_core::alerts::RuleDraft,
        csm_core::alerts::RuleJson,
        csm_core::alerts::RuleKind,
        csm_core::alerts::Alert,
        csm_core::alerts::AlertRecord,
        csm_core::alerts::DeliveryState,
        csm_core::model::alerts::StationsSchema,
        csm_core::model::alerts::AllStations,
        events::SseEventName,
        core::ocpp::ChargePointJson,
        core::ocpp::ChargePointListJson,
        core::cluster::ClusterJson,
        core::cluster::InstanceJson,
    )),
    modifiers(&AdminToken),
    tags(
        (name = "stations", description = "Stations and their ports"),
        (name = "history", description = "Readings, sessions and statistics over time"),
        (name = "live", description = "Live updates"),
        (name = "admin", description = "Station management (Authorization: Bearer CSM_ADMIN_TOKEN)"),
        (name = "alerts", description = "Alert channels, rules and history (Authorization: Bearer CSM_ADMIN_TOKEN)"),
        (name = "ocpp", description = "OCPP 1.6J charge points (they connect to ws://HOST/ocpp/{charge_point_id})"),
        (name = "operations", description = "Health, readiness, metrics and the cluster"),
    )
)]
pub struct ApiDoc;

struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document this server serves: [`ApiDoc`] with what only the running server knows (the
/// vendor profiles a new station may name).
pub fn document(vendors: &[String]) -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let vendor = &mut document["components"]["schemas"]["NewStation"]["properties"]["vendor"];
    if let Some(vendor) = vendor.as_object_mut() {
        let mut names: Vec<serde_json::Value> = vendors.iter().map(|v| v.as_str().into()).collect();
        names.push(serde_json::Value::Null);
        vendor.insert("enum".into(), names.into());
    }
    document
}
