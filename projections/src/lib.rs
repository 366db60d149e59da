//! Berth's read models. Each module folds events into its own tables
//! keyspaces; [`ReadModels`] feeds them all from the engine's batch (so they
//! are exactly as current as the log) and answers every query without
//! touching the log.

mod accounts;
mod audit;
mod blob_links;
mod images;
mod keys;
mod manifests;
mod orgs;
mod repositories;
mod request_keys;
mod shares;
mod storage;
mod tags;

use berth_domain::{
    Account, AccountName, Digest, DomainError, OrgName, Organization, RepoPath, Repository,
};
use berth_store::gc::References;
use berth_store::{Batch, EventLog, KeyScope, Projector, Recorded, StateLoader, StoreError, Table};
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

pub use accounts::{AccessKeyRow, AccountRow, Accounts, TemporaryLoginRow, UserRow};
pub use audit::{
    csv_record, record_json, Audit, Export, Filter, FilterError, Format as ExportFormat,
    Order as AuditOrder, Resource, CSV_HEADER, FILTER_PARAMS,
};
pub use blob_links::BlobLinks;
pub use images::{sort_key, ImageRow, Images, Order, Scope};
pub use manifests::{ManifestRow, Manifests, ReferrerRow};
pub use orgs::{Member, OrgRow, Orgs};
pub use repositories::{RepoRow, Repositories};
pub use request_keys::RequestKeys;
pub use shares::{ShareRow, Shares};
pub use storage::Storage;
pub use tags::{TagRow, Tags};

/// Version of the row layouts. A data directory written with another
/// version has its read models rebuilt from the log at startup.
pub const PROJECTION_VERSION: u32 = 9;

const CHECKPOINT: &[u8] = b"registry";

/// All read models of the registry.
#[derive(Clone)]
pub struct ReadModels {
    /// Organizations.
    pub orgs: Orgs,
    /// Repositories and the catalog.
    pub repos: Repositories,
    /// Tags.
    pub tags: Tags,
    /// Manifests and referrers.
    pub manifests: Manifests,
    /// Blob links.
    pub blob_links: BlobLinks,
    /// Accounts and users.
    pub accounts: Accounts,
    /// The image list.
    pub images: Images,
    /// Shares.
    pub shares: Shares,
    /// The audit index, which also serves timelines and as-of folds.
    pub audit: Audit,
    /// The `Idempotency-Key`s still remembered.
    pub request_keys: RequestKeys,
    checkpoints: Table,
}

impl ReadModels {
    /// Opens the read models in the log's database. Rows written under
    /// another layout version are dropped, so the engine rebuilds them.
    pub fn open(log: &EventLog) -> Result<Self, StoreError> {
        let orgs = Orgs::open(log)?;
        let tags = Tags::open(log)?;
        let models = Self {
            images: Images::open(log, orgs.rows.clone(), tags.rows.clone())?,
            shares: Shares::open(log)?,
            audit: Audit::open(log, orgs.rows.clone())?,
            orgs,
            repos: Repositories::open(log)?,
            tags,
            manifests: Manifests::open(log)?,
            blob_links: BlobLinks::open(log)?,
            accounts: Accounts::open(log)?,
            request_keys: RequestKeys::open(log)?,
            checkpoints: log.table("p_checkpoints")?,
        };
        if let Some(v) = models.checkpoints.get(CHECKPOINT)? {
            let version = v
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes);
            if version != Some(PROJECTION_VERSION) {
                tracing::warn!(
                    found = ?version,
                    expected = PROJECTION_VERSION,
                    "read models use another layout; rebuilding from the log"
                );
                models.reset()?;
            }
        }
        Ok(models)
    }

    /// The live incarnation of a repository, or the domain's refusal that
    /// names it unknown (`NAME_UNKNOWN` on the registry API).
    pub fn live_repo(&self, path: &RepoPath) -> Result<RepoRow, StoreError> {
        self.repos
            .get(path)?
            .ok_or_else(|| StoreError::Rejected(DomainError::RepositoryUnknown(path.clone())))
    }

    fn keyspaces(&self) -> Vec<(&'static str, &Table)> {
        vec![
            ("orgs", &self.orgs.rows),
            ("account_orgs", &self.orgs.by_account),
            ("org_grants", &self.orgs.grants),
            ("org_grantees", &self.orgs.by_grantee),
            ("org_repos", &self.orgs.repos),
            ("images", &self.images.rows),
            ("images_by_owner_name", &self.images.by_owner_name),
            ("images_by_owner_time", &self.images.by_owner_time),
            ("images_by_org_time", &self.images.by_org_time),
            ("shares", &self.shares.rows),
            ("shares_by_owner", &self.shares.by_owner),
            ("shares_by_with", &self.shares.by_with),
            ("audit", &self.audit.rows),
            ("repos", &self.repos.by_name),
            ("public_repos", &self.repos.public),
            ("repo_grants", &self.repos.grants),
            ("tags", &self.tags.rows),
            ("manifests", &self.manifests.rows),
            ("referrers", &self.manifests.referrers),
            ("manifest_holders", &self.manifests.holders),
            ("blob_links", &self.blob_links.rows),
            ("blob_holders", &self.blob_links.holders),
            ("accounts", &self.accounts.rows),
            ("users", &self.accounts.users),
            ("user_passwords", &self.accounts.passwords),
            ("disabled_users", &self.accounts.disabled_users),
            ("access_keys", &self.accounts.keys),
            ("user_keys", &self.accounts.user_keys),
            ("disabled_keys", &self.accounts.disabled_keys),
            ("temporary_logins", &self.accounts.temporary),
            ("request_keys", &self.request_keys.rows),
            ("request_keys_by_time", &self.request_keys.by_time),
            ("checkpoints", &self.checkpoints),
        ]
    }

    /// A SHA-256 over every row of every read model, in key order: two data
    /// directories with the same digest hold byte-identical read models.
    pub fn digest(&self) -> Result<String, StoreError> {
        let mut h = Sha256::new();
        for (name, ks) in self.keyspaces() {
            h.update(name.as_bytes());
            hash_rows(&mut h, ks)?;
        }
        Ok(berth_domain::hex::encode(&h.finalize()))
    }

    /// A SHA-256 of each read model's rows, by name: where two digests
    /// differ, this says which read model does.
    pub fn digests(&self) -> Result<Vec<(&'static str, String)>, StoreError> {
        self.keyspaces()
            .into_iter()
            .map(|(name, ks)| {
                let mut h = Sha256::new();
                hash_rows(&mut h, ks)?;
                Ok((name, berth_domain::hex::encode(&h.finalize())))
            })
            .collect()
    }
}

fn hash_rows(h: &mut Sha256, table: &Table) -> Result<(), StoreError> {
    for item in table.iter() {
        let (k, v) = item?;
        h.update((k.len() as u64).to_be_bytes());
        h.update(&k);
        h.update((v.len() as u64).to_be_bytes());
        h.update(&v);
    }
    Ok(())
}

impl Projector for ReadModels {
    fn apply(&self, batch: &mut Batch, recorded: &Recorded) -> Result<(), StoreError> {
        // The image list reads organization and tag rows as they were
        // before this event: it goes first.
        self.images.apply(batch, recorded)?;
        self.shares.apply(batch, recorded)?;
        // Reads the organization row as it was: before the organizations.
        self.audit.apply(batch, recorded)?;
        self.orgs.apply(batch, recorded);
        self.repos.apply(batch, recorded);
        self.tags.apply(batch, recorded);
        self.manifests.apply(batch, recorded);
        self.blob_links.apply(batch, recorded);
        self.accounts.apply(batch, recorded);
        self.request_keys.apply(batch, recorded)
    }

    fn set_checkpoint(&self, batch: &mut Batch, seq: u64) {
        let mut v = PROJECTION_VERSION.to_be_bytes().to_vec();
        v.extend_from_slice(&seq.to_be_bytes());
        batch.insert(&self.checkpoints, CHECKPOINT, v);
    }

    fn checkpoint(&self) -> Result<u64, StoreError> {
        Ok(self
            .checkpoints
            .get(CHECKPOINT)?
            .and_then(|v| v.get(4..12).and_then(|b| b.try_into().ok()))
            .map_or(0, u64::from_be_bytes))
    }

    fn reset(&self) -> Result<(), StoreError> {
        for (_, ks) in self.keyspaces() {
            ks.clear()?;
        }
        Ok(())
    }
}

impl References for ReadModels {
    fn blob_referenced(&self, digest: &Digest) -> Result<bool, StoreError> {
        self.blob_links.held(digest)
    }

    fn manifest_referenced(&self, digest: &Digest) -> Result<bool, StoreError> {
        self.manifests.held(digest)
    }
}

impl StateLoader for ReadModels {
    fn load_org(&self, name: &OrgName) -> Result<Option<Organization>, StoreError> {
        self.orgs.load(name)
    }

    fn load_account(&self, name: &AccountName) -> Result<Option<Account>, StoreError> {
        let Some(mut account) = self.accounts.load(name)? else {
            return Ok(None);
        };
        account.orgs = self.orgs.count_owned(name)?;
        Ok(Some(account))
    }

    fn remembered(&self, scope: &KeyScope, now: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
        self.request_keys.remembered(scope, now)
    }

    fn load_repo(&self, path: &RepoPath) -> Result<Option<Repository>, StoreError> {
        let Some(row) = self.repos.get(path)? else {
            return Ok(None);
        };
        let image = self.images.get(path)?;
        let mut repository = Repository::new(row.id);
        repository.blobs = self.blob_links.load(row.id)?;
        repository.manifests = self.manifests.load(row.id)?;
        repository.tags = self.tags.load(row.id)?;
        repository.public = self.repos.is_public(row.id)?;
        if let Some(image) = image {
            repository.category = image.category;
            repository.description = image.description;
        }
        repository.grants = self
            .repos
            .grants_on(row.id)?
            .into_iter()
            .map(|m| ((m.account, m.user), m.level))
            .collect();
        repository.shares = self
            .shares
            .of_repo(row.id)?
            .into_iter()
            .map(|s| (s.with, (s.deadline, s.description)))
            .collect();
        Ok(Some(repository))
    }
}
