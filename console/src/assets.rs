//! The stylesheet and the script, embedded in the binary. Pages link them
//! with their content hash in the query (`console.css?v=…`), so that they
//! can be cached for a year: a new build links new addresses.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

/// One embedded file.
pub struct Asset {
    /// Its name under `/console/assets/`.
    pub name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// The first 16 hex digits of its SHA-256.
    pub version: String,
}

fn asset(name: &'static str, content_type: &'static str, bytes: &'static [u8]) -> Asset {
    let digest = Sha256::digest(bytes);
    let version = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Asset {
        name,
        content_type,
        bytes,
        version,
    }
}

/// Every asset.
pub static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        asset(
            "console.css",
            "text/css; charset=utf-8",
            include_bytes!("../assets/console.css"),
        ),
        asset(
            "console.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../assets/console.js"),
        ),
    ]
});

/// The address a page links an asset by.
pub fn href(name: &str) -> String {
    let version = ASSETS
        .iter()
        .find(|a| a.name == name)
        .map_or("", |a| a.version.as_str());
    format!("/console/assets/{name}?v={version}")
}

/// `GET /console/assets/{name}`: the file, cacheable for a year, or `304`
/// when the browser holds this version.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}\"", asset.version);
    let cache = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ),
        (
            header::ETAG,
            HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
        ),
    ];
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.bytes,
    )
        .into_response()
}
