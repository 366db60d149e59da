//! What the client sees. Every failure is mapped here, once, to an HTTP
//! status and a registry error code; the code comes from a method, never from
//! the message text.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_domain::DomainError;
use berth_store::StoreError;
use thiserror::Error;

/// Errors of the HTTP layer.
#[derive(Debug, Error)]
pub enum ApiError {
    /// A domain rule refused the request.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Storage refused or failed.
    #[error(transparent)]
    Store(StoreError),
    /// A chunk does not start where the upload stands.
    #[error("chunk starts at {start} but the upload holds {offset} bytes")]
    RangeInvalid {
        /// Where the client said the chunk starts.
        start: u64,
        /// Bytes already received.
        offset: u64,
        /// Location of the upload, to resume.
        location: String,
    },
    /// A request that is not well-formed for its route.
    #[error("{0}")]
    BadRequest(String),
    /// `n` is not a usable page size.
    #[error("{0}")]
    PaginationInvalid(String),
    /// A manifest body over the size limit.
    #[error("manifest exceeds {0} bytes")]
    ManifestTooLarge(usize),
    /// The route exists but not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// No such route.
    #[error("no such route")]
    NotFound,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(d) => Self::Domain(d),
            other => Self::Store(other),
        }
    }
}

impl ApiError {
    /// The registry error code of the OCI distribution spec.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Domain(d) => match d {
                DomainError::NameInvalid(_) => "NAME_INVALID",
                DomainError::TagInvalid(_) => "TAG_INVALID",
                DomainError::DigestInvalid(_) => "DIGEST_INVALID",
                DomainError::ManifestInvalid(_) => "MANIFEST_INVALID",
                DomainError::RepositoryUnknown(_) => "NAME_UNKNOWN",
                DomainError::BlobUnknown(_) => "BLOB_UNKNOWN",
                DomainError::ManifestUnknown(_) => "MANIFEST_UNKNOWN",
                DomainError::ManifestBlobUnknown(_) => "MANIFEST_BLOB_UNKNOWN",
                DomainError::AccountExists(_) | DomainError::UserExists { .. } => "CONFLICT",
                DomainError::AccountUnknown(_) => "NOT_FOUND",
            },
            Self::Store(s) => match s {
                StoreError::UploadUnknown => "BLOB_UPLOAD_UNKNOWN",
                StoreError::TooLarge { .. } => "SIZE_INVALID",
                StoreError::BodyAborted(_) | StoreError::LengthMismatch { .. } => {
                    "BLOB_UPLOAD_INVALID"
                }
                StoreError::DigestMismatch { .. } => "DIGEST_INVALID",
                _ => "UNKNOWN",
            },
            Self::RangeInvalid { .. } => "BLOB_UPLOAD_INVALID",
            Self::BadRequest(_) => "UNSUPPORTED",
            Self::PaginationInvalid(_) => "PAGINATION_NUMBER_INVALID",
            Self::ManifestTooLarge(_) => "SIZE_INVALID",
            Self::MethodNotAllowed => "UNSUPPORTED",
            Self::NotFound => "NOT_FOUND",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Domain(d) => match d {
                DomainError::RepositoryUnknown(_)
                | DomainError::BlobUnknown(_)
                | DomainError::ManifestUnknown(_)
                | DomainError::AccountUnknown(_) => StatusCode::NOT_FOUND,
                DomainError::AccountExists(_) | DomainError::UserExists { .. } => {
                    StatusCode::CONFLICT
                }
                _ => StatusCode::BAD_REQUEST,
            },
            Self::Store(s) => match s {
                StoreError::UploadUnknown => StatusCode::NOT_FOUND,
                StoreError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                StoreError::BodyAborted(_)
                | StoreError::LengthMismatch { .. }
                | StoreError::DigestMismatch { .. } => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::RangeInvalid { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::BadRequest(_) | Self::PaginationInvalid(_) => StatusCode::BAD_REQUEST,
            Self::ManifestTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed inside the server");
        }
        let message = if status.is_server_error() {
            "internal error; the server log has the details".to_owned()
        } else {
            self.to_string()
        };
        let body = serde_json::json!({
            "errors": [{ "code": self.code(), "message": message, "detail": null }]
        });
        let mut response = (status, axum::Json(body)).into_response();
        if let Self::RangeInvalid {
            offset, location, ..
        } = &self
        {
            let headers = response.headers_mut();
            headers.insert(header::RANGE, range_header(*offset));
            if let Ok(v) = HeaderValue::from_str(location) {
                headers.insert(header::LOCATION, v);
            }
        }
        response
    }
}

/// The `Range` header of an upload holding `offset` bytes (`0-0` when empty,
/// as clients expect).
pub fn range_header(offset: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("0-{}", offset.saturating_sub(1)))
        .unwrap_or(HeaderValue::from_static("0-0"))
}
