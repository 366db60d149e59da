//! Web upload of `docker save` archives: a multipart request of 1 to 10
//! files into one organization. Each file streams through the stager as
//! its part arrives (one after another, never whole in memory), and is
//! checked and planned; when every file is accepted, their blobs move into
//! the blob store and one command (the pushes' own commands, decided as
//! one) stores every image and tag. Any refused file stores nothing at all.

use std::io::{self, Read};

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_domain::archive::MANIFEST_MEDIA_TYPE;
use berth_domain::policy;
use berth_domain::{
    parse_manifest, Command, Digest, DomainError, Level, OrgName, RepoCommand, RepoPath,
};
use berth_projections::ReadModels;
use berth_store::archive::{self, Image, Staged};
use berth_store::imports::{ImageReport, Imports, Job, JobError, JobState};
use berth_store::{Content, StoreError};
use bytes::{Buf, Bytes};
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::openapi::{ErrorBody, NsAt};
use super::{field, require, Answer, Held, Member, Refusal, Reply};
use crate::auth::levels;
use crate::error::ApiError;
use crate::state::AppState;

/// Most files in one upload.
pub const MAX_FILES: usize = 10;
/// Chunks of a part buffered ahead of the stager.
const AHEAD: usize = 8;

/// A part's bytes as a blocking reader, for the tar reader on a storage
/// thread.
struct Incoming {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for Incoming {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(c)) => self.chunk = c,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

fn job_error(e: &ApiError) -> JobError {
    JobError {
        status: e.status().as_u16(),
        code: e.code().to_owned(),
        message: e.public_message(),
    }
}

/// Writes a job's record on a storage thread (it is fsynced).
async fn save(app: &AppState, job: &Job) -> Result<(), StoreError> {
    let (imports, job) = (app.imports.clone(), job.clone());
    tokio::task::spawn_blocking(move || imports.save(&job)).await?
}

/// Saves a finished job and removes its staging, logging what fails: the
/// answer goes out either way.
async fn finish(app: &AppState, job: &Job) {
    let (imports, record) = (app.imports.clone(), job.clone());
    let done = tokio::task::spawn_blocking(move || {
        imports.save(&record)?;
        imports.discard(record.id)
    })
    .await
    .map_err(StoreError::from)
    .and_then(|r| r);
    if let Err(e) = done {
        tracing::error!(error = %e, job = %job.id, "upload job not saved or its staging not removed");
    }
}

/// Ends a job as failed and answers with the error and the job.
async fn failed(app: &AppState, mut job: Job, e: &ApiError, file: Option<usize>) -> Response {
    let error = job_error(e);
    if let Some(f) = file.and_then(|i| job.files.get_mut(i)) {
        f.error = Some(error.clone());
    }
    job.fail(error.clone());
    finish(app, &job).await;
    let body = json!({
        "code": error.code,
        "message": error.message,
        "field": file.map(|i| format!("files[{i}]")),
        "job": job,
    });
    (e.status(), Json(body)).into_response()
}

/// What a caller holds on the organization an upload names.
enum Right {
    /// It does not exist, and the caller may create it by pushing.
    Claim,
    /// It does not exist, and the caller may not create it.
    NoClaim,
    /// It exists; the caller's level on it.
    Held(Option<Level>),
}

/// Holds the caller to what a docker push into `org` needs: edit on it, or,
/// when it does not exist, the right to create it (within the quota).
async fn may_push(app: &AppState, member: &Member, org: &OrgName) -> Result<(), Refusal> {
    let (p, lookup, quota) = (
        member.principal.clone(),
        org.clone(),
        app.settings.org_quota,
    );
    let right = app
        .read(move |parts| {
            let models = &parts.models;
            if models.orgs.get(&lookup)?.is_some() {
                return Ok(Right::Held(levels::org_level(models, &p, &lookup)?));
            }
            let owned = models.orgs.count_owned(&p.account)?;
            Ok(match policy::unclaimed_level(Some(&p), owned, quota) {
                Some(_) => Right::Claim,
                None => Right::NoClaim,
            })
        })
        .await?;
    match right {
        Right::Claim => Ok(()),
        Right::NoClaim => Err(Refusal(ApiError::Denied(policy::DENIED_MESSAGE.into()))),
        Right::Held(level) => {
            require(
                app,
                member,
                Held::Present(level),
                Level::Edit,
                "push",
                org.as_str(),
                || ApiError::Domain(DomainError::OrgUnknown(org.clone())),
            )
            .await
        }
    }
}

#[utoipa::path(
    post,
    path = "/v2/manage/namespaces/{ns}/uploads",
    operation_id = "uploads_create",
    tag = "uploads",
    summary = "Upload 1 to 10 docker save archives (.tar or .tar.gz) as multipart files; all or nothing (edit, or a free organization within the quota).",
    params(NsAt),
    request_body(
        content = String,
        content_type = "multipart/form-data",
        description = "1 to 10 parts named file, each a docker save archive (.tar, or .tar.gz told apart by its content), at most 2 GiB read and inflated",
    ),
    responses(
        (status = 201, description = "the job, succeeded: every file's images and tags"),
        (status = 400, description = "a refused file (named in field) or request; the job is in the body and nothing was stored", body = ErrorBody),
        (status = 413, description = "a file over 2 GiB read or inflated", body = ErrorBody),
        (status = 403, description = "no edit on the organization, or no quota to create it", body = ErrorBody),
    ),
)]
/// `POST /v2/manage/namespaces/{ns}/uploads` (multipart, `file` parts).
pub(super) async fn create(
    State(app): State<AppState>,
    Path(NsAt { ns }): Path<NsAt>,
    member: Member,
    req: Request,
) -> Answer {
    let org = field("namespace", &ns, OrgName::parse)?;
    may_push(&app, &member, &org).await?;
    app.space.check_upload()?;
    let mut multipart =
        Multipart::from_request(req, &app)
            .await
            .map_err(|e| ApiError::Invalid {
                field: String::new(),
                message: format!(
                    "the body must be multipart/form-data with one part per file: {e}"
                ),
            })?;
    let job = Job::new(
        org.to_string(),
        member.principal.account.to_string(),
        member.principal.user.to_string(),
    );
    save(&app, &job).await?;
    let (job, staged) = match receive(&app, job, &mut multipart).await {
        Ok(done) => done,
        Err((job, e, file)) => return Ok(failed(&app, job, &e, file).await),
    };
    Ok(store(&app, &member, &org, job, staged).await)
}

/// A failure while receiving: the job, the error and the file at fault.
type Failure = (Job, ApiError, Option<usize>);

/// Receives and checks every file, one after another.
async fn receive(
    app: &AppState,
    mut job: Job,
    multipart: &mut Multipart,
) -> Result<(Job, Vec<(Staged, Vec<Image>)>), Failure> {
    let mut files = Vec::new();
    loop {
        let part = match multipart.next_field().await {
            Ok(Some(part)) => part,
            Ok(None) => break,
            Err(e) => {
                let e = ApiError::BadRequest(format!("the multipart body could not be read: {e}"));
                return Err((job, e, None));
            }
        };
        let index = job.files.len();
        if index == MAX_FILES {
            let e = ApiError::Invalid {
                field: format!("files[{index}]"),
                message: format!("an upload takes at most {MAX_FILES} files"),
            };
            return Err((job, e, None));
        }
        job.files.push(berth_store::imports::FileReport {
            name: part.file_name().unwrap_or_default().to_owned(),
            ..Default::default()
        });
        if let Err(e) = save(app, &job).await {
            return Err((job, e.into(), None));
        }
        match receive_file(app, job.id, index, part).await {
            Ok((staged, images)) => {
                let file = &mut job.files[index];
                file.bytes_read = staged.bytes_read;
                file.images = reports(&job.namespace, &images);
                files.push((staged, images));
            }
            Err(e) => {
                // How far the refused file got, as its progress last said.
                if let Ok(Some(live)) = app.imports.get(job.id) {
                    job.files[index].bytes_read = live.files[index].bytes_read;
                }
                return Err((job, e, Some(index)));
            }
        }
    }
    if files.is_empty() {
        let e = ApiError::Invalid {
            field: "files".into(),
            message: "the upload holds no file; send 1 to 10 parts with docker save archives"
                .into(),
        };
        return Err((job, e, None));
    }
    let mut seen = std::collections::BTreeMap::new();
    for (i, f) in job.files.iter().enumerate() {
        for image in &f.images {
            let at = (image.repository.clone(), image.tag.clone());
            if seen
                .insert(at, image.digest.clone())
                .is_some_and(|d| d != image.digest)
            {
                let e = ApiError::Domain(DomainError::ArchiveInvalid(format!(
                    "{}:{} names two different images in this upload",
                    image.repository, image.tag
                )));
                return Err((job, e, Some(i)));
            }
        }
    }
    Ok((job, files))
}

/// Streams one part through the stager on a storage thread, then plans it.
async fn receive_file(
    app: &AppState,
    job: Uuid,
    index: usize,
    mut part: axum::extract::multipart::Field<'_>,
) -> Result<(Staged, Vec<Image>), ApiError> {
    let (tx, rx) = mpsc::channel(AHEAD);
    let dir = app.imports.staging(job).join(index.to_string());
    let limits = app.archive_limits;
    let state = app.clone();
    let stager = tokio::task::spawn_blocking(move || {
        let input = Incoming {
            rx,
            chunk: Bytes::new(),
        };
        let staged = archive::stage(input, &dir, limits, &mut |read| {
            state.imports.touch(job, |j| {
                if let Some(f) = j.files.get_mut(index) {
                    f.bytes_read = read;
                }
            });
        })?;
        let images = archive::plan(&staged)?;
        Ok::<_, StoreError>((staged, images))
    });
    let mut aborted = None;
    loop {
        match part.chunk().await {
            Ok(Some(chunk)) => {
                // A stager that stopped has its answer (a refusal: one that
                // accepts reads to the end); the rest is not read.
                if tx.send(Ok(chunk)).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = tx
                    .send(Err(io::Error::other(format!(
                        "the upload was cut off: {e}"
                    ))))
                    .await;
                aborted = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let result = stager.await.map_err(StoreError::from)?;
    match (result, aborted) {
        (Err(e), _) => Err(e.into()),
        (Ok(_), Some(e)) => Err(ApiError::BadRequest(format!(
            "the multipart body could not be read: {e}"
        ))),
        (Ok(done), None) => Ok(done),
    }
}

fn reports(namespace: &str, images: &[Image]) -> Vec<ImageReport> {
    let mut out = Vec::new();
    for image in images {
        let digest = image.digest.to_string();
        for (repo, tag) in &image.names {
            out.push(ImageReport {
                repository: format!("{namespace}/{repo}"),
                tag: tag.to_string(),
                digest: digest.clone(),
            });
        }
    }
    out
}

/// Moves every accepted file's blobs into the blob store and stores every
/// image and tag with one command.
async fn store(
    app: &AppState,
    member: &Member,
    org: &OrgName,
    mut job: Job,
    files: Vec<(Staged, Vec<Image>)>,
) -> Response {
    job.state = JobState::Storing;
    if let Err(e) = save(app, &job).await {
        return failed(app, job, &e.into(), None).await;
    }
    let by = member.caller.owner(app.settings.org_quota);
    let mut commands = Vec::new();
    let mut content = Content::new();
    let mut ingest = Vec::new();
    let mut linked = std::collections::BTreeSet::new();
    let mut layers_per_file = Vec::new();
    for (_, images) in &files {
        let layers: std::collections::BTreeSet<&Digest> = images
            .iter()
            .flat_map(|i| i.layers.iter().map(|(blob, _)| &blob.digest))
            .collect();
        layers_per_file.push(layers.len());
        for image in images {
            let digest = image.digest.clone();
            let manifest = match parse_manifest(Some(MANIFEST_MEDIA_TYPE), &image.manifest) {
                Ok(m) => m,
                Err(e) => return failed(app, job, &e.into(), None).await,
            };
            for (name, tag) in &image.names {
                let repo = RepoPath::new(org.clone(), name.clone());
                for (blob, file) in std::iter::once(&image.config).chain(&image.layers) {
                    if linked.insert((repo.clone(), blob.digest.clone())) {
                        ingest.push((file.clone(), blob.digest.clone()));
                        commands.push(Command::Repo(RepoCommand::LinkUploadedBlob {
                            by: by.clone(),
                            repo: repo.clone(),
                            digest: blob.digest.clone(),
                            size: blob.size,
                        }));
                    }
                }
                commands.push(Command::Repo(RepoCommand::PushManifest {
                    by: by.clone(),
                    repo,
                    tag: Some(tag.clone()),
                    digest: digest.clone(),
                    size: image.manifest.len() as u64,
                    manifest: manifest.clone(),
                }));
            }
            content
                .logged
                .insert(digest, Bytes::from(image.manifest.clone()));
        }
    }
    // Pinned from before the bytes move in until the command that links
    // them is decided: garbage collection leaves them alone meanwhile.
    let mut pins = Vec::with_capacity(ingest.len());
    for (_, digest) in &ingest {
        match app.pins.pin(digest).await {
            Ok(pin) => pins.push(pin),
            Err(e) => return failed(app, job, &e.into(), None).await,
        }
    }
    let blobs = app.blobs.clone();
    let moved = tokio::task::spawn_blocking(move || {
        let mut done = std::collections::BTreeSet::new();
        for (file, digest) in ingest {
            if done.insert(digest.clone()) {
                blobs.ingest(&file, &digest)?;
            }
        }
        Ok::<_, StoreError>(())
    })
    .await
    .map_err(StoreError::from)
    .and_then(|r| r);
    if let Err(e) = moved {
        return failed(app, job, &e.into(), None).await;
    }
    job.state = JobState::Succeeded;
    job.finished_at = Some(chrono::Utc::now());
    for (file, layers) in job.files.iter_mut().zip(layers_per_file) {
        file.layers_stored = layers;
    }
    if let Some(key) = &member.key {
        // What the upload stores, not its bytes: a client that builds the
        // multipart body anew picks a new boundary.
        let plan: Vec<_> = job.files.iter().map(|f| (&f.name, &f.images)).collect();
        let plan = serde_json::to_vec(&plan).unwrap_or_default();
        key.settle(&[b"POST", org.as_str().as_bytes(), &plan]);
    }
    let reply = Reply::created(serde_json::to_value(&job).unwrap_or_default());
    let committed = member
        .commit(app, Command::All(commands), content, reply)
        .await;
    drop(pins);
    match committed {
        Ok(done) if done.replayed => {
            // This request stored nothing: the answer is the first one's.
            if let Err(e) = app.imports.discard(job.id) {
                tracing::warn!(error = %e, job = %job.id, "a replayed upload's staging was not removed");
            }
            done.answer
        }
        Ok(done) => {
            finish(app, &job).await;
            done.answer
        }
        Err(e) => failed(app, job, &e.into(), None).await,
    }
}

#[utoipa::path(
    get,
    path = "/v2/manage/uploads/{job}",
    operation_id = "uploads_get",
    tag = "uploads",
    summary = "An upload job: each file's bytes read, layers stored, and images and tags, or its error (the uploader, or an admin of their account).",
    params(("job" = String, Path, description = "the job id")),
    responses(
        (status = 200, description = "the job"),
        (status = 404, description = "no such job, or not the caller's", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/uploads/{job}`
pub(super) async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
    member: Member,
) -> Answer {
    let unknown = || {
        Refusal(ApiError::Unknown {
            field: "job".into(),
            message: format!("upload job {id} is not known"),
        })
    };
    let job_id = Uuid::parse_str(&id).map_err(|_| unknown())?;
    let imports = app.clone();
    let job = app
        .read(move |_| imports.imports.get(job_id))
        .await?
        .ok_or_else(unknown)?;
    let p = &member.principal;
    let own = job.account == p.account.as_str() && job.user == p.user.as_str();
    let admin = berth_domain::AccountName::parse(&job.account)
        .is_ok_and(|a| policy::manages_account(p, &a));
    if !(own || admin) {
        return Err(unknown());
    }
    Ok(Json(job).into_response())
}

#[utoipa::path(
    get,
    path = "/v2/manage/uploads",
    operation_id = "uploads_list",
    tag = "uploads",
    summary = "The caller's upload jobs of the last week, newest first (at most 100); a job whose request was cut off is found here.",
    responses(
        (status = 200, description = "{\"jobs\":[...]}"),
        (status = 401, description = "no or wrong credentials", body = ErrorBody),
    ),
)]
/// `GET /v2/manage/uploads`
pub(super) async fn list(State(app): State<AppState>, member: Member) -> Answer {
    let (account, user) = (
        member.principal.account.to_string(),
        member.principal.user.to_string(),
    );
    let state = app.clone();
    let jobs = app
        .read(move |_| state.imports.list(&account, &user, 100))
        .await?;
    Ok(Json(json!({ "jobs": jobs })).into_response())
}

/// Settles jobs a restart interrupted while storing: the command that
/// stores a job's images is one atomic write, so either every tag it
/// planned points where planned (it was stored) or none was stored.
pub fn settle(imports: &Imports, models: &ReadModels, jobs: Vec<Job>) -> Result<(), StoreError> {
    for mut job in jobs {
        let mut stored = true;
        for image in job.files.iter().flat_map(|f| &f.images) {
            let found = match RepoPath::parse(&image.repository) {
                Ok(repo) => match models.repos.get(&repo)? {
                    Some(row) => match berth_domain::TagName::parse(&image.tag) {
                        Ok(tag) => models
                            .tags
                            .get(row.id, &tag)?
                            .is_some_and(|t| t.digest.to_string() == image.digest),
                        Err(_) => false,
                    },
                    None => false,
                },
                Err(_) => false,
            };
            stored &= found;
        }
        if stored {
            job.state = JobState::Succeeded;
            job.finished_at = Some(chrono::Utc::now());
        } else {
            job.fail(JobError {
                status: 503,
                code: "INTERRUPTED".into(),
                message: "the server restarted while the images were stored; nothing was stored"
                    .into(),
            });
        }
        imports.save(&job)?;
    }
    Ok(())
}
