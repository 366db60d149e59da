//! Blob uploads: monolithic (`POST ?digest=`), single `POST` + `PUT`,
//! chunked `PATCH` with `Content-Range`, status, cancel, and cross-repository
//! mount. Bytes go to disk as they arrive; nothing is linked before its
//! digest is verified.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_domain::{Command, Digest, DomainError, Level, RepoCommand, RepoPath};
use berth_store::gc::Pin;
use berth_store::{BoxError, Chunks, SessionGuard, StoreError};
use futures_util::{StreamExt, TryStreamExt};
use uuid::Uuid;

use super::{set, Call};
use crate::auth;
use crate::error::{range_header, ApiError};

fn location(repo: &RepoPath, id: Uuid) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

/// The 202 answer that tells a client where its upload stands.
fn in_progress(status: StatusCode, repo: &RepoPath, id: Uuid, offset: u64) -> Response {
    let mut r = status.into_response();
    let headers = r.headers_mut();
    set(headers, header::LOCATION, &location(repo, id));
    headers.insert(header::RANGE, range_header(offset));
    set(headers, "Docker-Upload-UUID", &id.to_string());
    set(headers, header::CONTENT_LENGTH, "0");
    r
}

fn created(repo: &RepoPath, digest: &Digest) -> Response {
    let mut r = StatusCode::CREATED.into_response();
    let headers = r.headers_mut();
    set(
        headers,
        header::LOCATION,
        &format!("/v2/{repo}/blobs/{digest}"),
    );
    set(headers, "Docker-Content-Digest", &digest.to_string());
    set(headers, header::CONTENT_LENGTH, "0");
    r
}

fn digest_param(call: &Call, key: &str) -> Result<Option<Digest>, ApiError> {
    Ok(call.query.get(key).map(|d| Digest::parse(d)).transpose()?)
}

/// `POST /v2/<name>/blobs/uploads/`
pub(crate) async fn start(call: Call, repo: RepoPath) -> Result<Response, ApiError> {
    if let Some(digest) = digest_param(&call, "mount")? {
        if let Some(from) = call.query.get("from") {
            let from = RepoPath::parse(from)?;
            // Mounting needs pull on the source; without it the blob is
            // simply not mountable, exactly as if it were not there.
            let mountable = auth::holds(&call.app, &call.caller, &from, Level::Read).await?;
            let mount = Command::Repo(RepoCommand::MountBlob {
                by: call.owner(),
                repo: repo.clone(),
                digest: digest.clone(),
                from,
            });
            if mountable {
                match call.app.engine.submit(mount, call.meta.clone()).await {
                    Ok(_) => return Ok(created(&repo, &digest)),
                    // Not mountable: the spec says to open a normal upload instead.
                    Err(StoreError::Rejected(DomainError::BlobUnknown(_))) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    let Some(digest) = digest_param(&call, "digest")? else {
        let id = call.app.uploads.create(&repo).await?;
        return Ok(in_progress(StatusCode::ACCEPTED, &repo, id, 0));
    };
    let (uploads, pins) = (&call.app.uploads, &call.app.pins);
    let id = uploads.create(&repo).await?;
    let whole = whole_body(&call.headers);
    let (session, pin) = uploads
        .acquire_pinned(id, &repo, &digest, pins, whole)
        .await?;
    finish_session(call, repo, session, pin, digest).await
}

/// Checks a chunk's `Content-Range` against where the upload stands. The
/// spec's form is `<start>-<end>`; a `bytes ` prefix is tolerated.
fn check_range(
    headers: &HeaderMap,
    repo: &RepoPath,
    session: &SessionGuard,
) -> Result<Option<u64>, ApiError> {
    let Some(raw) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let text = raw.to_str().unwrap_or_default().trim();
    let text = text.strip_prefix("bytes ").unwrap_or(text);
    let invalid = |start| ApiError::RangeInvalid {
        start,
        offset: session.offset,
        location: location(repo, session.id),
    };
    let (start, end) = text
        .split_once('-')
        .and_then(|(s, e)| Some((s.parse::<u64>().ok()?, e.parse::<u64>().ok()?)))
        .ok_or_else(|| invalid(0))?;
    if start != session.offset || end < start {
        return Err(invalid(start));
    }
    Ok(Some(end - start + 1))
}

/// The body's length, when the request names no range: it is then all
/// that is left of the upload.
fn whole_body(headers: &HeaderMap) -> Option<u64> {
    if headers.contains_key(header::CONTENT_RANGE) {
        return None;
    }
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The request body as the upload store takes it.
fn body_of(call: &mut Call) -> Chunks {
    std::mem::take(&mut call.body)
        .into_data_stream()
        .map_err(BoxError::from)
        .boxed()
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`
pub(crate) async fn patch(mut call: Call, repo: RepoPath, id: Uuid) -> Result<Response, ApiError> {
    let mut session = call.app.uploads.acquire(id, &repo).await?;
    // If `Content-Range` named a length, the body must have exactly that
    // many bytes or nothing of it is kept.
    let expected = check_range(&call.headers, &repo, &session)?;
    let body = body_of(&mut call);
    call.app
        .uploads
        .append(&mut session, body, expected)
        .await?;
    // The client may resume from this offset: the session must outlive a crash.
    call.app.uploads.persist(&mut session).await?;
    Ok(in_progress(StatusCode::ACCEPTED, &repo, id, session.offset))
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: the last chunk, if any, then
/// verification and linking.
pub(crate) async fn finish(call: Call, repo: RepoPath, id: Uuid) -> Result<Response, ApiError> {
    let digest = digest_param(&call, "digest")?.ok_or_else(|| {
        DomainError::DigestInvalid(
            "the digest query parameter is required to finish an upload".into(),
        )
    })?;
    let (session, pin) = call
        .app
        .uploads
        .acquire_pinned(
            id,
            &repo,
            &digest,
            &call.app.pins,
            whole_body(&call.headers),
        )
        .await?;
    finish_session(call, repo, session, pin, digest).await
}

/// Takes the request's body as the upload's last bytes (it may be empty),
/// verifies the whole upload, moves it into the blob store and links it.
/// The digest is pinned (with the session, at once) from before the
/// bytes move in until the link is decided: garbage collection leaves
/// them alone meanwhile.
async fn finish_session(
    mut call: Call,
    repo: RepoPath,
    session: SessionGuard,
    _pin: Pin,
    digest: Digest,
) -> Result<Response, ApiError> {
    let expected = check_range(&call.headers, &repo, &session)?;
    let body = body_of(&mut call);
    let finished = call
        .app
        .uploads
        .finish(session, body, expected, &digest)
        .await?;
    let link = Command::Repo(RepoCommand::LinkUploadedBlob {
        by: call.owner(),
        repo: repo.clone(),
        digest: digest.clone(),
        size: finished.size,
    });
    call.app
        .engine
        .submit_with(link, finished.content, call.meta)
        .await?;
    Ok(created(&repo, &digest))
}

/// `GET /v2/<name>/blobs/uploads/<id>`
pub(crate) async fn status(call: Call, repo: RepoPath, id: Uuid) -> Result<Response, ApiError> {
    let session = call.app.uploads.acquire(id, &repo).await?;
    Ok(in_progress(
        StatusCode::NO_CONTENT,
        &repo,
        id,
        session.offset,
    ))
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`
pub(crate) async fn cancel(call: Call, repo: RepoPath, id: Uuid) -> Result<Response, ApiError> {
    let session = call.app.uploads.acquire(id, &repo).await?;
    call.app.uploads.discard(session)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
