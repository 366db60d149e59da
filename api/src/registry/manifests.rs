//! Manifests: pull by tag or digest, push (verified, parsed, stored in the
//! same atomic write as its events), and delete.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_domain::limits::MAX_MANIFEST_BYTES;
use berth_domain::{
    parse_manifest, Algorithm, Command, Digest, DomainError, Reference, RepoCommand, RepoPath,
};
use berth_store::Content;
use http_body_util::BodyExt;
use sha2::{Digest as _, Sha256, Sha512};

use super::{set, Call};
use crate::error::ApiError;

/// `GET` and `HEAD /v2/<name>/manifests/<reference>`
pub(crate) async fn get(
    call: Call,
    repo: RepoPath,
    reference: Reference,
) -> Result<Response, ApiError> {
    let pulled = repo.clone();
    let found = call
        .app
        .read(move |p| {
            let row = p.models.live_repo(&repo)?;
            let unknown = || DomainError::ManifestUnknown(reference.to_string());
            let digest = match &reference {
                Reference::Digest(d) => d.clone(),
                Reference::Tag(t) => p.models.tags.get(row.id, t)?.ok_or_else(unknown)?.digest,
            };
            let manifest = p
                .models
                .manifests
                .get(row.id, &digest)?
                .ok_or_else(unknown)?;
            let bytes = p.log.content(&digest)?.ok_or_else(unknown)?;
            Ok((digest, manifest.media_type, bytes))
        })
        .await?;
    let (digest, media_type, bytes) = found;
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    set(headers, header::CONTENT_TYPE, &media_type);
    set(headers, header::CONTENT_LENGTH, &bytes.len().to_string());
    set(headers, "Docker-Content-Digest", &digest.to_string());
    set(headers, header::ETAG, &format!("\"{digest}\""));
    if call.method != axum::http::Method::HEAD {
        *response.body_mut() = Body::from(bytes);
        call.app.pulls.count(&pulled);
    }
    Ok(response)
}

/// `PUT /v2/<name>/manifests/<reference>`
pub(crate) async fn put(
    call: Call,
    repo: RepoPath,
    reference: Reference,
) -> Result<Response, ApiError> {
    let by = call.owner();
    let limited = http_body_util::Limited::new(call.body, MAX_MANIFEST_BYTES);
    let bytes = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::ManifestTooLarge(MAX_MANIFEST_BYTES))
        }
        Err(e) => {
            return Err(ApiError::BadRequest(format!(
                "manifest body could not be read: {e}"
            )))
        }
    };
    let algorithm = match &reference {
        Reference::Digest(d) => d.algorithm(),
        Reference::Tag(_) => Algorithm::Sha256,
    };
    let digest = match algorithm {
        Algorithm::Sha256 => Digest::from_bytes(algorithm, &Sha256::digest(&bytes))?,
        Algorithm::Sha512 => Digest::from_bytes(algorithm, &Sha512::digest(&bytes))?,
    };
    let tag = match reference {
        Reference::Digest(named) if named != digest => {
            return Err(DomainError::DigestInvalid(format!(
                "manifest digest is {digest}, not {named}"
            ))
            .into())
        }
        Reference::Digest(_) => None,
        Reference::Tag(t) => Some(t),
    };
    let content_type = call
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let manifest = parse_manifest(content_type, &bytes)?;
    let subject = manifest.subject.clone();
    let command = Command::Repo(RepoCommand::PushManifest {
        by,
        repo: repo.clone(),
        tag,
        digest: digest.clone(),
        size: bytes.len() as u64,
        manifest,
    });
    let content = Content::logged([(digest.clone(), bytes)]);
    call.app
        .engine
        .submit_with(command, content, call.meta)
        .await?;
    let mut response = StatusCode::CREATED.into_response();
    let headers = response.headers_mut();
    set(
        headers,
        header::LOCATION,
        &format!("/v2/{repo}/manifests/{digest}"),
    );
    set(headers, "Docker-Content-Digest", &digest.to_string());
    if let Some(subject) = subject {
        set(headers, "OCI-Subject", &subject.to_string());
    }
    Ok(response)
}

/// `DELETE /v2/<name>/manifests/<reference>`: a tag removes the tag, a
/// digest removes the manifest and every tag pointing at it.
pub(crate) async fn delete(
    call: Call,
    repo: RepoPath,
    reference: Reference,
) -> Result<Response, ApiError> {
    let command = match reference {
        Reference::Tag(tag) => RepoCommand::DeleteTags {
            repo,
            tags: vec![tag],
        },
        Reference::Digest(digest) => RepoCommand::DeleteManifest { repo, digest },
    };
    let command = Command::Repo(command);
    call.app.engine.submit(command, call.meta).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
