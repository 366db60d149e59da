//! Web upload jobs: one record per upload request, with each file's
//! progress and outcome, kept as a JSON file under `<data>/imports/jobs`
//! (written whole and renamed into place, so a record is never half
//! written), and one staging directory per job under `<data>/imports`,
//! on the blob tree's filesystem so that accepted layers move in by
//! rename. A job is not an event: what it stores reaches the log through
//! the same commands as a push; the record only reports on the request.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;

/// Finished jobs are forgotten after this long.
const KEEP_DAYS: i64 = 7;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Files are streaming in and being checked.
    Receiving,
    /// Every file was accepted; the images are being stored.
    Storing,
    /// Every image of every file is stored.
    Succeeded,
    /// Nothing of the request was stored.
    Failed,
}

/// Why a file or a job failed, as the API answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// The HTTP status.
    pub status: u16,
    /// The error code.
    pub code: String,
    /// The message.
    pub message: String,
}

/// An image a file created, or would have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageReport {
    /// `<org>/<name>`.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The manifest's digest.
    pub digest: String,
}

/// One file of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    /// The file name the client gave, for display only.
    pub name: String,
    /// Bytes read from the upload so far.
    pub bytes_read: u64,
    /// Distinct layers of its images, once stored.
    pub layers_stored: usize,
    /// Its images and tags: planned once it is checked, stored when the
    /// job succeeds.
    pub images: Vec<ImageReport>,
    /// Why it was refused.
    pub error: Option<JobError>,
}

/// One upload request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: Uuid,
    /// The organization it uploads into.
    pub namespace: String,
    /// The uploader's account.
    pub account: String,
    /// The uploader.
    pub user: String,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Where it stands.
    pub state: JobState,
    /// Why it failed, for the whole request.
    pub error: Option<JobError>,
    /// Its files, in the order they came.
    pub files: Vec<FileReport>,
    /// What a reader of the sizes should know.
    #[serde(default)]
    pub note: String,
}

/// Why uploaded images look larger than pushed ones.
pub const SIZE_NOTE: &str = "Layers are stored as the archive holds them: docker save writes them as uncompressed tar, so these images look larger than the same images pushed by a docker client, which compresses each layer before pushing it.";

impl Job {
    /// A new job, receiving.
    pub fn new(namespace: String, account: String, user: String) -> Self {
        Self {
            id: Uuid::new_v4(),
            namespace,
            account,
            user,
            created_at: Utc::now(),
            finished_at: None,
            state: JobState::Receiving,
            error: None,
            files: Vec::new(),
            note: SIZE_NOTE.to_owned(),
        }
    }

    /// Ends the job as failed, for the whole request.
    pub fn fail(&mut self, error: JobError) {
        self.state = JobState::Failed;
        self.error = Some(error);
        self.finished_at = Some(Utc::now());
    }
}

/// The job records and staging directories.
pub struct Imports {
    root: PathBuf,
    live: Mutex<HashMap<Uuid, Job>>,
}

impl Imports {
    /// Opens the area. Jobs a restart interrupted while receiving are
    /// marked failed (nothing of them reached the blob store or the log);
    /// those interrupted while storing are returned for the caller to
    /// settle against the read models. Staging directories are removed,
    /// and finished jobs older than a week forgotten.
    pub fn open(root: PathBuf) -> Result<(Self, Vec<Job>), StoreError> {
        fs::create_dir_all(root.join("jobs"))?;
        let imports = Self {
            root,
            live: Mutex::new(HashMap::new()),
        };
        for entry in fs::read_dir(&imports.root)? {
            let entry = entry?;
            if entry.file_name() != "jobs" {
                fs::remove_dir_all(entry.path())?;
            }
        }
        let mut storing = Vec::new();
        let forget_before = Utc::now() - Duration::days(KEEP_DAYS);
        for entry in fs::read_dir(imports.root.join("jobs"))? {
            let path = entry?.path();
            let Some(mut job) = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Job>(&b).ok())
            else {
                fs::remove_file(&path)?;
                continue;
            };
            match job.state {
                JobState::Receiving => {
                    job.fail(JobError {
                        status: 503,
                        code: "INTERRUPTED".into(),
                        message:
                            "the server restarted while the files were received; nothing was stored"
                                .into(),
                    });
                    imports.save(&job)?;
                }
                JobState::Storing => storing.push(job),
                JobState::Succeeded | JobState::Failed => {
                    if job.finished_at.is_some_and(|t| t < forget_before) {
                        fs::remove_file(&path)?;
                    }
                }
            }
        }
        Ok((imports, storing))
    }

    fn record(&self, id: Uuid) -> PathBuf {
        self.root.join("jobs").join(format!("{id}.json"))
    }

    /// Where a job stages its files.
    pub fn staging(&self, id: Uuid) -> PathBuf {
        self.root.join(id.to_string())
    }

    /// Removes a job's staging directory.
    pub fn discard(&self, id: Uuid) -> Result<(), StoreError> {
        match fs::remove_dir_all(self.staging(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Writes a job's record durably (and keeps it in memory while live).
    pub fn save(&self, job: &Job) -> Result<(), StoreError> {
        let path = self.record(job.id);
        let tmp = path.with_extension("tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(job).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        fsync_dir(path.parent().unwrap_or(Path::new(".")))?;
        let mut live = self.lock();
        if matches!(job.state, JobState::Succeeded | JobState::Failed) {
            live.remove(&job.id);
        } else {
            live.insert(job.id, job.clone());
        }
        Ok(())
    }

    /// Changes a live job in memory only (progress between saves).
    pub fn touch(&self, id: Uuid, change: impl FnOnce(&mut Job)) {
        if let Some(job) = self.lock().get_mut(&id) {
            change(job);
        }
    }

    /// A job as it stands.
    pub fn get(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        self.get_path(&self.record(id))
    }

    /// One user's jobs, newest first, at most `limit`.
    pub fn list(&self, account: &str, user: &str, limit: usize) -> Result<Vec<Job>, StoreError> {
        let mut jobs = Vec::new();
        for entry in fs::read_dir(self.root.join("jobs"))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                if let Some(job) = self.get_path(&path)? {
                    if job.account == account && job.user == user {
                        jobs.push(job);
                    }
                }
            }
        }
        jobs.sort_by_key(|j| std::cmp::Reverse(j.created_at));
        jobs.truncate(limit);
        Ok(jobs)
    }

    /// A job from its record, or as it stands in memory while live.
    fn get_path(&self, path: &Path) -> Result<Option<Job>, StoreError> {
        let live = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| Uuid::parse_str(s).ok())
            .and_then(|id| self.lock().get(&id).cloned());
        if live.is_some() {
            return Ok(live);
        }
        match fs::read(path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Job>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}
