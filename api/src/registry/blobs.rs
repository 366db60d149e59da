//! Blob reads (whole or by byte range, streamed from disk) and unlinking.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_domain::{Command, Digest, DomainError, RepoCommand, RepoPath};
use berth_store::StoreError;
use bytes::Bytes;
use futures_util::TryStreamExt;

use super::{set, Call};
use crate::error::ApiError;

/// Bodies up to this size are read whole and sent in one piece.
const ONE_WRITE: u64 = 256 * 1024;

/// A byte range asked for with `Range`, resolved against the blob size.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    All,
    Part { start: u64, end: u64 },
    Unsatisfiable,
}

/// Resolves a single `bytes=` range. Anything this server does not serve as
/// a range (several ranges, other units, garbage) is answered whole, as
/// RFC 9110 allows.
fn wanted(range: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Wanted::All;
    };
    if spec.contains(',') {
        return Wanted::All;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Wanted::All;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        (true, true) => Wanted::All,
        (true, false) => match parse(last) {
            Some(0) => Wanted::Unsatisfiable,
            Some(n) if size > 0 => Wanted::Part {
                start: size.saturating_sub(n),
                end: size - 1,
            },
            Some(_) => Wanted::Unsatisfiable,
            None => Wanted::All,
        },
        (false, _) => match (
            parse(first),
            if last.is_empty() {
                Some(u64::MAX)
            } else {
                parse(last)
            },
        ) {
            (Some(start), Some(end)) if start <= end => {
                if start >= size {
                    Wanted::Unsatisfiable
                } else {
                    Wanted::Part {
                        start,
                        end: end.min(size - 1),
                    }
                }
            }
            _ => Wanted::All,
        },
    }
}

/// `GET` and `HEAD /v2/<name>/blobs/<digest>`
pub(crate) async fn get(call: Call, repo: RepoPath, digest: Digest) -> Result<Response, ApiError> {
    let lookup = digest.clone();
    let size = call
        .app
        .read(move |p| {
            let row = p.models.live_repo(&repo)?;
            let size = p
                .models
                .blob_links
                .get(row.id, &lookup)?
                .ok_or(DomainError::BlobUnknown(lookup.clone()))?;
            Ok(size)
        })
        .await?;
    let range = call
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let (status, start, len) = match wanted(range, size) {
        Wanted::All => (StatusCode::OK, 0, size),
        Wanted::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Wanted::Unsatisfiable => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            set(
                r.headers_mut(),
                header::CONTENT_RANGE,
                &format!("bytes */{size}"),
            );
            return Ok(r);
        }
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    set(headers, header::CONTENT_TYPE, "application/octet-stream");
    set(headers, header::CONTENT_LENGTH, &len.to_string());
    set(headers, header::ACCEPT_RANGES, "bytes");
    set(headers, "Docker-Content-Digest", &digest.to_string());
    set(headers, header::ETAG, &format!("\"{digest}\""));
    if status == StatusCode::PARTIAL_CONTENT {
        let end = start + len - 1;
        set(
            headers,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{end}/{size}"),
        );
    }
    if call.method == axum::http::Method::HEAD {
        return Ok(response);
    }
    if let Some(ttl) = call.app.settings.blob_redirect {
        let blobs = call.app.blobs.clone();
        let target = digest.clone();
        let signed = tokio::task::spawn_blocking(move || blobs.presign(&target, size, ttl))
            .await
            .map_err(StoreError::from)??;
        if let Some(url) = signed {
            // The client fetches the bytes, and any range of them, from the
            // store itself; the digest header still says what it gets.
            let mut redirect = Response::new(Body::empty());
            *redirect.status_mut() = StatusCode::TEMPORARY_REDIRECT;
            let headers = redirect.headers_mut();
            set(headers, header::LOCATION, &url);
            set(headers, "Docker-Content-Digest", &digest.to_string());
            return Ok(redirect);
        }
    }
    let stream = call
        .app
        .blobs
        .open_range(&digest, start, len)
        .map_err(|e| {
            tracing::error!(%digest, error = %e, "linked blob cannot be read from disk");
            ApiError::from(e)
        })?;
    *response.body_mut() = if len <= ONE_WRITE {
        // A small body known in full goes out with its headers in one write.
        let chunks: Vec<Bytes> = stream.try_collect().await.map_err(StoreError::from)?;
        Body::from(chunks.concat())
    } else {
        Body::from_stream(stream)
    };
    Ok(response)
}

/// `DELETE /v2/<name>/blobs/<digest>`: unlinks the blob from the repository.
/// The bytes stay until garbage collection finds no repository using them.
pub(crate) async fn delete(
    call: Call,
    repo: RepoPath,
    digest: Digest,
) -> Result<Response, ApiError> {
    call.app
        .engine
        .submit(
            Command::Repo(RepoCommand::DeleteBlob { repo, digest }),
            call.meta,
        )
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(wanted(None, 10), Wanted::All);
        assert_eq!(
            wanted(Some("bytes=0-4"), 10),
            Wanted::Part { start: 0, end: 4 }
        );
        assert_eq!(
            wanted(Some("bytes=5-"), 10),
            Wanted::Part { start: 5, end: 9 }
        );
        assert_eq!(
            wanted(Some("bytes=5-100"), 10),
            Wanted::Part { start: 5, end: 9 }
        );
        assert_eq!(
            wanted(Some("bytes=-3"), 10),
            Wanted::Part { start: 7, end: 9 }
        );
        assert_eq!(
            wanted(Some("bytes=-30"), 10),
            Wanted::Part { start: 0, end: 9 }
        );
        assert_eq!(wanted(Some("bytes=10-"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-0"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-0"), 0), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=4-2"), 10), Wanted::All);
        assert_eq!(wanted(Some("bytes=0-1,3-4"), 10), Wanted::All);
        assert_eq!(wanted(Some("items=0-1"), 10), Wanted::All);
    }
}
