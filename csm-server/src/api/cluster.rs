//! `GET /api/cluster`: the live instances of the cluster this server is in (admin), the
//! document of `csm-cli cluster status --json`.

use axum::extract::State;
use csm_core::views::cluster::ClusterJson;

use super::extract::Admin;
use super::responses::AdminRefusals;
use crate::AppState;
use crate::error::ApiError;

/// The live instances: their ids, versions, last heartbeats, and what each holds (admin token
/// required).
#[utoipa::path(
    get, path = "/api/cluster", tag = "operations",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The live instances, by id", body = ClusterJson),
        AdminRefusals,
        (status = 503, description = "Redis, where the instances meet, cannot be reached", body = crate::views::ErrorJson),
    )
)]
pub async fn cluster(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<axum::Json<ClusterJson>, ApiError> {
    let cluster = state.monitor.cluster();
    let members = cluster.members().await.map_err(|error| {
        ApiError::Unavailable(format!(
            "cannot read the cluster's members: {error}; this instance ({}) keeps the stations it holds",
            cluster.id()
        ))
    })?;
    Ok(axum::Json(ClusterJson::of(
        cluster.is_shared(),
        Some(cluster.id()),
        members,
    )))
}
