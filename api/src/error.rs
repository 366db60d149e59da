//! What the client sees. Every failure is mapped here, once, to an HTTP
//! status and a registry error code; the code comes from a method, never from
//! the message text.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_domain::DomainError;
use berth_store::StoreError;
use thiserror::Error;

use crate::auth::AuthError;

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
    /// No or wrong credentials; `challenge` is the `WWW-Authenticate` value.
    #[error("{message}")]
    Unauthorized {
        /// What to tell the client.
        message: String,
        /// The challenge header, on registry routes.
        challenge: Option<String>,
    },
    /// Authenticated but not allowed.
    #[error("{0}")]
    Denied(String),
    /// Too many failed logins; retry after this many seconds.
    #[error("too many failed logins; retry in {0} seconds")]
    TooManyRequests(u64),
    /// A management request field that names something that does not
    /// exist (a grantee, say).
    #[error("{message}")]
    Unknown {
        /// The JSON field at fault.
        field: String,
        /// What it names.
        message: String,
    },
    /// A management request field that is missing or wrong.
    #[error("{message}")]
    Invalid {
        /// The JSON field at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(d) => Self::Domain(d),
            other => Self::Store(other),
        }
    }
}

/// Refused credentials: `401`, or `429` when throttled. The registry
/// routes add their challenge on top (see `access`).
impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(s) => s.into(),
            AuthError::Throttled(wait) => Self::TooManyRequests(wait.as_secs().max(1)),
            other => Self::Unauthorized {
                message: other.to_string(),
                challenge: None,
            },
        }
    }
}

/// Seconds a client is asked to wait when the node cannot write now.
const RETRY_UNAVAILABLE: u64 = 5;

/// A domain refusal's status and code, in one table.
fn domain(d: &DomainError) -> (StatusCode, &'static str) {
    match d {
        DomainError::NameInvalid(_) => (StatusCode::BAD_REQUEST, "NAME_INVALID"),
        DomainError::TagInvalid(_) => (StatusCode::BAD_REQUEST, "TAG_INVALID"),
        DomainError::DigestInvalid(_) => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
        DomainError::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
        DomainError::ManifestBlobUnknown(_) => (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
        DomainError::AttributeInvalid(_) | DomainError::ShareInvalid(_) => {
            (StatusCode::BAD_REQUEST, "INVALID")
        }
        DomainError::ArchiveInvalid(_) => (StatusCode::BAD_REQUEST, "ARCHIVE_INVALID"),
        DomainError::ArchiveTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "ARCHIVE_TOO_LARGE"),
        DomainError::RepositoryUnknown(_) => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
        DomainError::BlobUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
        DomainError::ManifestUnknown(_) => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
        DomainError::AccountUnknown(_)
        | DomainError::OrgUnknown(_)
        | DomainError::UserUnknown { .. }
        | DomainError::AccessKeyUnknown(_)
        | DomainError::ShareUnknown(_)
        | DomainError::GrantUnknown { .. } => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        DomainError::AccountExists(_)
        | DomainError::UserExists { .. }
        | DomainError::OrgExists(_)
        | DomainError::RepositoryExists(_)
        | DomainError::OrgNotEmpty { .. }
        | DomainError::ShareExists(_)
        | DomainError::TagExists(_) => (StatusCode::CONFLICT, "CONFLICT"),
        DomainError::StillReferenced { .. } => (StatusCode::CONFLICT, "DENIED"),
        DomainError::Denied(_) | DomainError::QuotaExceeded(_) => (StatusCode::FORBIDDEN, "DENIED"),
    }
}

impl ApiError {
    /// The registry error code of the OCI distribution spec.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Domain(d) => domain(d).1,
            Self::Store(s) => match s {
                StoreError::UploadUnknown => "BLOB_UPLOAD_UNKNOWN",
                StoreError::TooLarge { .. } => "SIZE_INVALID",
                StoreError::BodyAborted(_) | StoreError::LengthMismatch { .. } => {
                    "BLOB_UPLOAD_INVALID"
                }
                StoreError::DigestMismatch { .. } => "DIGEST_INVALID",
                StoreError::KeyReused { .. } => "IDEMPOTENCY_KEY_REUSED",
                s if s.unavailable() => "UNAVAILABLE",
                _ => "UNKNOWN",
            },
            Self::RangeInvalid { .. } => "BLOB_UPLOAD_INVALID",
            Self::BadRequest(_) => "UNSUPPORTED",
            Self::PaginationInvalid(_) => "PAGINATION_NUMBER_INVALID",
            Self::ManifestTooLarge(_) => "SIZE_INVALID",
            Self::MethodNotAllowed => "UNSUPPORTED",
            Self::NotFound => "NOT_FOUND",
            Self::Unauthorized { .. } => "UNAUTHORIZED",
            Self::Denied(_) => "DENIED",
            Self::TooManyRequests(_) => "TOOMANYREQUESTS",
            Self::Invalid { .. } => "INVALID",
            Self::Unknown { .. } => "NOT_FOUND",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Domain(d) => domain(d).0,
            Self::Store(s) => match s {
                StoreError::UploadUnknown => StatusCode::NOT_FOUND,
                StoreError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                StoreError::BodyAborted(_)
                | StoreError::LengthMismatch { .. }
                | StoreError::DigestMismatch { .. } => StatusCode::BAD_REQUEST,
                StoreError::KeyReused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                s if s.unavailable() => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::RangeInvalid { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::BadRequest(_) | Self::PaginationInvalid(_) => StatusCode::BAD_REQUEST,
            Self::ManifestTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Denied(_) => StatusCode::FORBIDDEN,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::Unknown { .. } => StatusCode::NOT_FOUND,
        }
    }
}

impl ApiError {
    /// Whether a push was refused for what it sent (a digest that does not
    /// match, a size over the limit, an invalid manifest or one naming
    /// missing blobs): such refusals are audit records.
    pub fn rejects_content(&self) -> bool {
        matches!(
            self,
            Self::Domain(
                DomainError::DigestInvalid(_)
                    | DomainError::ManifestInvalid(_)
                    | DomainError::ManifestBlobUnknown(_)
                    | DomainError::TagInvalid(_)
            ) | Self::Store(StoreError::DigestMismatch { .. } | StoreError::TooLarge { .. })
                | Self::ManifestTooLarge(_)
        )
    }

    /// The message shown to the client; a 500 says only that it happened
    /// (a 503 names its cause: a full disk, a failed log).
    pub(crate) fn public_message(&self) -> String {
        if self.status().is_server_error() && self.status() != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %self, "request failed inside the server");
            "internal error; the server log has the details".to_owned()
        } else {
            self.to_string()
        }
    }

    /// Adds the headers some errors carry (challenge, retry time, upload range).
    fn decorate(&self, response: &mut Response) {
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized {
                challenge: Some(c), ..
            } => {
                if let Ok(v) = HeaderValue::from_str(c) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            Self::TooManyRequests(secs) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            Self::Store(s) if s.unavailable() => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_UNAVAILABLE));
                // Docker shows only the status line of a 5xx, not its body:
                // the line then carries the cause.
                let reason: &'static [u8] = match s {
                    StoreError::NoSpace(_) => {
                        b"Service Unavailable: no space left on the registry's disk"
                    }
                    _ => b"Service Unavailable: the registry's event log cannot be written",
                };
                response
                    .extensions_mut()
                    .insert(hyper::ext::ReasonPhrase::from_static(reason));
            }
            _ => {}
        }
    }

    /// The management API's error shape: `{"code","message","field"}`.
    pub fn into_manage_response(self) -> Response {
        let field = match &self {
            Self::Invalid { field, .. } | Self::Unknown { field, .. } => Some(field.clone()),
            Self::Store(StoreError::KeyReused { .. }) => Some("Idempotency-Key".to_owned()),
            _ => None,
        };
        let body = serde_json::json!({
            "code": self.code(),
            "message": self.public_message(),
            "field": field,
        });
        let mut response = (self.status(), axum::Json(body)).into_response();
        self.decorate(&mut response);
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.public_message();
        let body = serde_json::json!({
            "errors": [{ "code": self.code(), "message": message, "detail": null }]
        });
        let mut response = (status, axum::Json(body)).into_response();
        self.decorate(&mut response);
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
