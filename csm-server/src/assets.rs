//! The dashboard and the API docs page: files of `assets/`, embedded in the binary so the
//! server needs nothing beside it and no request leaves the machine.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

fn file(path: &str, cache: &'static str) -> Response {
    match Assets::get(path) {
        Some(content) => {
            let mime = content.metadata.mimetype();
            let mut response = content.data.into_owned().into_response();
            let headers = response.headers_mut();
            if let Ok(mime) = HeaderValue::from_str(mime) {
                headers.insert(header::CONTENT_TYPE, mime);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({ "error": format!("no file {path}") })),
        )
            .into_response(),
    }
}

/// `/`: the dashboard.
pub async fn index() -> Response {
    file("index.html", "no-cache")
}

/// `/api/docs`: the API reference, rendered from `/api/openapi.json`.
pub async fn docs() -> Response {
    file("docs.html", "no-cache")
}

/// `/assets/{*path}`.
pub async fn asset(Path(path): Path<String>) -> Response {
    let cache = if path.starts_with("vendor/") {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    file(&path, cache)
}
