//! The OpenAPI 3 document of the API, generated from the handlers and the JSON types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{access, alerts, cluster, events, health, history, ocpp, stations};
use crate::views;
use csm_core::views as core;

/// The API description served at `/api/openapi.json`.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "csm — charging station monitor",
        description = "Live port status of charging stations from many vendors, their history, and station management. Status values: free, occupied, fault, offline, reserved, unavailable (taken out of service by the operator), unknown. Measurements the vendor does not send are null."
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
        ocpp::command,
        ocpp::messages,
        ocpp::set_security,
        history::station_availability,
        history::availability_report,
        access::list_tokens,
        access::create_token,
        access::revoke_token,
        access::audit,
        access::whoami,
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
        core::history::StationAvailabilityJson,
        core::history::AvailabilityDayJson,
        core::history::AvailabilityReportJson,
        core::history::AvailabilityRowJson,
        csm_core::history::availability::Outage,
        core::access::TokenJson,
        core::access::TokenListJson,
        core::access::NewTokenJson,
        core::access::AuditEntryJson,
        core::access::AuditListJson,
        csm_core::model::access::Role,
        access::NewToken,
        access::WhoAmIJson,
        core::ocpp::CommandAnswerJson,
        core::ocpp::ConfigurationKeyJson,
        core::ocpp::VariableJson,
        core::ocpp::ReportJson,
        core::ocpp::MessageLogJson,
        core::ocpp::MessageJson,
        csm_core::ocpp::Command,
        csm_core::ocpp::command::ResetKind,
        csm_core::ocpp::command::Availability,
        csm_core::ocpp::command::TriggerKind,
        csm_core::ocpp::command::TransactionRef,
        csm_core::ocpp::command::VariableRef,
        csm_core::ocpp::command::VariableValue,
        csm_core::ocpp::command::ReportBase,
        csm_core::ocpp::Direction,
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
        (name = "ocpp", description = "OCPP 1.6J charge points (they connect to ws://HOST/ocpp/{charge_point_id}): the registry, operators' commands (Authorization: Bearer CSM_ADMIN_TOKEN) and each charger's message log"),
        (name = "access", description = "API tokens with roles (viewer, operator, admin) and the audit log (admin)"),
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
/// vendor profiles a new station may name), and what the derived schemas cannot say by
/// themselves (see [`conditions`]).
pub fn document(vendors: &[String]) -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let vendor = &mut document["components"]["schemas"]["NewStation"]["properties"]["vendor"];
    if let Some(vendor) = vendor.as_object_mut() {
        let mut names: Vec<serde_json::Value> = vendors.iter().map(|v| v.as_str().into()).collect();
        names.push(serde_json::Value::Null);
        vendor.insert("enum".into(), names.into());
    }
    conditions(&mut document["components"]["schemas"]);
    document
}

/// What the request bodies allow beyond each field's own type, written into their schemas so
/// that a client (or a fuzzer) that keeps to the document is not refused:
///
/// - a station's name has a character other than white space, and only an OCPP charge point
///   (vendor `ocpp`) has a password or a security profile above 1;
/// - a channel's URL is an `http(s)://` address with a host, and a webhook has a secret;
/// - a rule names at least one station and, when given, at least one port; `free_ports` is given
///   exactly for `free_ports` rules, `low` and `high` exactly for `voltage` rules, ports only for
///   the kinds that watch ports; a time zone is one of the IANA names.
///
/// What a schema cannot say stays with the server's checks, answered 400 with the reason: that
/// the stations and the channel a rule names exist, that `low` is below `high`, and whether a
/// channel's host is one `CSM_ALERT_HOSTS` allows.
fn conditions(schemas: &mut serde_json::Value) {
    use serde_json::json;
    let null_or = |kinds: &[&str]| -> serde_json::Value {
        json!({"properties": {"kind": {"enum": kinds}}, "required": ["kind"]})
    };
    let absent = |fields: &[&str]| -> serde_json::Value {
        let properties: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|f| ((*f).to_owned(), json!({"type": "null"})))
            .collect();
        json!({"properties": properties})
    };
    let station = &mut schemas["NewStation"];
    station["properties"]["name"]["pattern"] = json!("\\S");
    station["allOf"] = json!([
        {
            "if": {"properties": {"password": {"type": "string"}}, "required": ["password"]},
            "then": {"properties": {"vendor": {"const": "ocpp"}}, "required": ["vendor"]},
        },
        {
            "if": {"properties": {"security_profile": {"enum": [2, 3]}}, "required": ["security_profile"]},
            "then": {"properties": {"vendor": {"const": "ocpp"}}, "required": ["vendor"]},
        },
    ]);

    let channel = &mut schemas["ChannelDraft"];
    channel["properties"]["url"]["format"] = json!("uri");
    channel["properties"]["url"]["pattern"] = json!("^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\\s]+");
    channel["allOf"] = json!([{
        "if": null_or(&["webhook"]),
        "then": {"properties": {"secret": {"type": "string", "minLength": 1}}, "required": ["secret"]},
    }]);

    if let Some(variants) = schemas["StationsSchema"]["oneOf"].as_array_mut() {
        for variant in variants {
            if variant["type"] == "array" {
                variant["minItems"] = json!(1);
                variant["maxItems"] = json!(csm_core::model::alerts::MAX_RULE_STATIONS);
            }
        }
    }
    let rule = &mut schemas["RuleDraft"];
    let ports = &mut rule["properties"]["ports"];
    ports["minItems"] = json!(1);
    ports["items"]["minimum"] = json!(1);
    ports["items"]["maximum"] = json!(csm_core::model::MAX_PORT);
    rule["properties"]["low"]["minimum"] = json!(0);
    rule["properties"]["timezone"]["enum"] = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|zone| json!(zone.name()))
        .chain([serde_json::Value::Null])
        .collect();
    rule["allOf"] = json!([
        {"if": null_or(&["free_ports"]),
         "then": {"properties": {"free_ports": {"type": "integer"}}, "required": ["free_ports"]},
         "else": absent(&["free_ports"])},
        {"if": null_or(&["voltage"]),
         "then": {"properties": {"low": {"type": "number"}, "high": {"type": "number"}}, "required": ["low", "high"]},
         "else": absent(&["low", "high"])},
        {"if": null_or(&["offline"]), "then": absent(&["ports"])},
    ]);

    // A command has only its own fields; a RemoteStopTransaction names its transaction or its
    // connector, one of the two.
    if let Some(variants) = schemas["Command"]["oneOf"].as_array_mut() {
        for variant in variants {
            variant["additionalProperties"] = json!(false);
            if variant["properties"].get("transaction_id").is_some() {
                variant["anyOf"] = json!([
                    {"properties": {"transaction_id": {"type": "integer"}, "connector": {"type": "null"}},
                     "required": ["transaction_id"]},
                    {"properties": {"connector": {"type": "integer"}, "transaction_id": {"type": "null"}},
                     "required": ["connector"]},
                ]);
            }
        }
    }
}
