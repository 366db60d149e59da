//! The image list: one row per live repository with what the console and
//! the management API show (attributes, tag count, size, pulls, times),
//! and the indexes that page through an account's or an organization's
//! images by name or by last update without reading the rest.

use std::ops::Bound;

use berth_domain::{AccountName, Category, Description, Event, OrgName, RepoPath};
use berth_store::{Batch, EventLog, Recorded, StoreError, Table};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{decode, encode};
use crate::orgs::owner_as_batch_leaves;

/// One image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRow {
    /// Stream id of this incarnation.
    pub id: Uuid,
    /// The owning account (`None` for organizations from before accounts).
    pub owner: Option<AccountName>,
    /// Public or private.
    pub public: bool,
    /// Its category.
    pub category: Category,
    /// Its description.
    pub description: Description,
    /// When it was created.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub created_at: DateTime<Utc>,
    /// When a tag, a manifest or an attribute last changed.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub updated_at: DateTime<Utc>,
    /// How many tags it has.
    pub num_images: u64,
    /// The sum of its tags' image sizes.
    pub size: u64,
    /// Manifest pulls counted so far.
    pub num_download: u64,
}

/// What an index entry tells about its image without reading the row.
#[derive(Serialize, Deserialize)]
struct Facts {
    category: Category,
    public: bool,
}

/// How a page is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// By name, `a` first.
    NameAsc,
    /// By name, `z` first.
    NameDesc,
    /// Most recently updated first.
    NewestFirst,
    /// Least recently updated first.
    OldestFirst,
}

/// Which images a listing walks.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Every image an account owns.
    Account(Option<AccountName>),
    /// Every image of one organization.
    Org(OrgName),
}

/// The image list read model.
#[derive(Clone)]
pub struct Images {
    pub(crate) rows: Table,
    pub(crate) by_owner_name: Table,
    pub(crate) by_owner_time: Table,
    pub(crate) by_org_time: Table,
    /// The organizations' rows, read for the owner of a new repository.
    orgs: Table,
    /// The tags' rows, read for the size a tag had before it moved.
    tags: Table,
}

fn owner_prefix(owner: Option<&AccountName>) -> Vec<u8> {
    let mut k = owner.map_or("", |a| a.as_str()).as_bytes().to_vec();
    k.push(0);
    k
}

/// Newest first in key order: the time, inverted, big-endian.
fn inverted(t: DateTime<Utc>) -> [u8; 8] {
    let micros = u64::try_from(t.timestamp_micros()).unwrap_or(0);
    (u64::MAX - micros).to_be_bytes()
}

fn owner_name_key(owner: Option<&AccountName>, repo: &str) -> Vec<u8> {
    let mut k = owner_prefix(owner);
    k.extend_from_slice(repo.as_bytes());
    k
}

fn owner_time_key(owner: Option<&AccountName>, t: DateTime<Utc>, repo: &str) -> Vec<u8> {
    let mut k = owner_prefix(owner);
    k.extend_from_slice(&inverted(t));
    k.extend_from_slice(repo.as_bytes());
    k
}

fn org_time_key(repo: &RepoPath, t: DateTime<Utc>) -> Vec<u8> {
    let mut k = repo.org().as_str().as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&inverted(t));
    k.extend_from_slice(repo.to_string().as_bytes());
    k
}

impl Images {
    pub(crate) fn open(log: &EventLog, orgs: Table, tags: Table) -> Result<Self, StoreError> {
        Ok(Self {
            rows: log.table("p_images")?,
            by_owner_name: log.table("p_images_by_owner_name")?,
            by_owner_time: log.table("p_images_by_owner_time")?,
            by_org_time: log.table("p_images_by_org_time")?,
            orgs,
            tags,
        })
    }

    fn unindex(&self, batch: &mut Batch, repo: &RepoPath, row: &ImageRow) {
        let name = repo.to_string();
        batch.remove(
            &self.by_owner_name,
            owner_name_key(row.owner.as_ref(), &name),
        );
        batch.remove(
            &self.by_owner_time,
            owner_time_key(row.owner.as_ref(), row.updated_at, &name),
        );
        batch.remove(&self.by_org_time, org_time_key(repo, row.updated_at));
    }

    fn store(&self, batch: &mut Batch, repo: &RepoPath, row: &ImageRow) {
        batch.insert(&self.rows, repo.to_string(), encode(row));
        self.index(batch, repo, row, true);
    }

    /// Writes a row's index entries: the time entries always, the name
    /// entry when `with_name`. Entries carry what listings filter on, so a
    /// filtered walk reads a row only for the images it keeps.
    fn index(&self, batch: &mut Batch, repo: &RepoPath, row: &ImageRow, with_name: bool) {
        let name = repo.to_string();
        let facts = encode(&Facts {
            category: row.category,
            public: row.public,
        });
        if with_name {
            batch.insert(
                &self.by_owner_name,
                owner_name_key(row.owner.as_ref(), &name),
                &facts,
            );
        }
        batch.insert(
            &self.by_owner_time,
            owner_time_key(row.owner.as_ref(), row.updated_at, &name),
            &facts,
        );
        batch.insert(
            &self.by_org_time,
            org_time_key(repo, row.updated_at),
            &facts,
        );
    }

    /// Rewrites a row after `change`. Index entries are written only where
    /// they change: the time entries move when the update time moves, and
    /// every entry is rewritten when the facts it carries change. (Most
    /// updates of a busy image within one commit keep its time.)
    fn update(
        &self,
        batch: &mut Batch,
        repo: &RepoPath,
        touch: Option<DateTime<Utc>>,
        change: impl FnOnce(&mut ImageRow),
    ) -> Result<(), StoreError> {
        let Some(bytes) = batch.get(&self.rows, repo.to_string())? else {
            return Ok(());
        };
        let before: ImageRow = decode(&bytes)?;
        let mut row = before.clone();
        change(&mut row);
        if let Some(t) = touch {
            row.updated_at = t;
        }
        batch.insert(&self.rows, repo.to_string(), encode(&row));
        let moved = before.updated_at != row.updated_at;
        let facts_changed = before.category != row.category || before.public != row.public;
        if moved {
            let name = repo.to_string();
            batch.remove(
                &self.by_owner_time,
                owner_time_key(before.owner.as_ref(), before.updated_at, &name),
            );
            batch.remove(&self.by_org_time, org_time_key(repo, before.updated_at));
        }
        if moved || facts_changed {
            self.index(batch, repo, &row, facts_changed);
        }
        Ok(())
    }

    /// The size a tag's image had before this event moves or removes it.
    fn tag_size(&self, batch: &Batch, repo_id: Uuid, tag: &str) -> Result<u64, StoreError> {
        let key = crate::keys::repo_key(repo_id, tag.as_bytes());
        Ok(match batch.get(&self.tags, key)? {
            Some(v) => decode::<crate::tags::TagRow>(&v)?.size,
            None => 0,
        })
    }

    /// Must run before the tags read model applies the same event: it reads
    /// the tag row as it was.
    pub(crate) fn apply(&self, batch: &mut Batch, rec: &Recorded) -> Result<(), StoreError> {
        let at = rec.envelope.occurred_at;
        match &rec.event {
            Event::RepositoryCreated { repo_id, repo, .. } => {
                let owner = owner_as_batch_leaves(batch, &self.orgs, repo.org().as_str())?;
                let row = ImageRow {
                    id: *repo_id,
                    owner,
                    public: false,
                    category: Category::Other,
                    description: Description::default(),
                    created_at: at,
                    updated_at: at,
                    num_images: 0,
                    size: 0,
                    num_download: 0,
                };
                self.store(batch, repo, &row);
            }
            Event::TagPointed {
                repo_id,
                repo,
                tag,
                size,
                previous,
                ..
            } => {
                // A new tag had no size: its row is not read.
                let before = match previous {
                    Some(_) => self.tag_size(batch, *repo_id, tag.as_str())?,
                    None => 0,
                };
                let added = u64::from(previous.is_none());
                self.update(batch, repo, Some(at), |r| {
                    r.num_images += added;
                    r.size = r.size.saturating_sub(before) + size;
                })?;
            }
            Event::TagDeleted {
                repo_id, repo, tag, ..
            } => {
                let before = self.tag_size(batch, *repo_id, tag.as_str())?;
                self.update(batch, repo, Some(at), |r| {
                    r.num_images = r.num_images.saturating_sub(1);
                    r.size = r.size.saturating_sub(before);
                })?;
            }
            Event::ManifestPushed { repo, .. } | Event::ManifestDeleted { repo, .. } => {
                self.update(batch, repo, Some(at), |_| {})?;
            }
            Event::RepositoryVisibilityChanged { repo, public, .. } => {
                self.update(batch, repo, Some(at), |r| r.public = *public)?;
            }
            Event::RepositoryAttributesChanged {
                repo,
                category,
                description,
                ..
            } => {
                self.update(batch, repo, Some(at), |r| {
                    r.category = *category;
                    r.description = description.clone();
                })?;
            }
            Event::PullsCounted { repo, pulls, .. } => {
                self.update(batch, repo, None, |r| r.num_download += pulls)?;
            }
            Event::RepositoryDeleted { repo, .. } => {
                if let Some(v) = batch.get(&self.rows, repo.to_string())? {
                    let row: ImageRow = decode(&v)?;
                    self.unindex(batch, repo, &row);
                    batch.remove(&self.rows, repo.to_string());
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// One image.
    pub fn get(&self, repo: &RepoPath) -> Result<Option<ImageRow>, StoreError> {
        self.rows
            .get(repo.to_string())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Walks a scope's images in `order`, starting after the sort key
    /// `after` (one this function gave, or [`sort_key`] made). Images that
    /// `keep` refuses (by `org/name`, category and visibility, read from the
    /// index alone) are passed over; `visit` gets each other image's name,
    /// row and sort key until it returns `false`.
    pub fn walk(
        &self,
        scope: &Scope,
        order: Order,
        after: Option<&[u8]>,
        keep: impl Fn(&str, Category, bool) -> bool,
        mut visit: impl FnMut(RepoPath, ImageRow, Vec<u8>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        // Which table, which prefix, and how many bytes of key come between
        // the prefix and the repository name (the inverted time).
        let (table, prefix, gap) = match (scope, order) {
            (Scope::Account(owner), Order::NameAsc | Order::NameDesc) => {
                (&self.by_owner_name, owner_prefix(owner.as_ref()), Some(0))
            }
            (Scope::Account(owner), _) => {
                (&self.by_owner_time, owner_prefix(owner.as_ref()), Some(8))
            }
            (Scope::Org(org), Order::NameAsc | Order::NameDesc) => {
                (&self.rows, format!("{org}/").into_bytes(), None)
            }
            (Scope::Org(org), _) => {
                let mut p = org.as_str().as_bytes().to_vec();
                p.push(0);
                (&self.by_org_time, p, Some(8))
            }
        };
        let forward = matches!(order, Order::NameAsc | Order::NewestFirst);
        let after = after.map(|a| [prefix.as_slice(), a].concat());
        let rows = match (forward, after.as_deref()) {
            (true, Some(a)) => table.range::<&[u8], _>((
                Bound::Excluded(a),
                prefix_end(&prefix)
                    .as_deref()
                    .map_or(Bound::Unbounded, Bound::Excluded),
            )),
            (true, None) => table.prefix(&prefix),
            (false, Some(a)) => table
                .range_rev::<&[u8], _>((Bound::Included(prefix.as_slice()), Bound::Excluded(a))),
            (false, None) => table.prefix_rev(&prefix),
        };
        for item in rows {
            let (key, value) = item?;
            let (name, row) = match gap {
                // The rows table itself: the key is the name, the value the row.
                None => (key.as_ref(), Some(decode::<ImageRow>(&value)?)),
                Some(gap) => (key.get(prefix.len() + gap..).unwrap_or_default(), None),
            };
            let facts = match &row {
                Some(r) => Facts {
                    category: r.category,
                    public: r.public,
                },
                None => decode(&value)?,
            };
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            if !keep(name, facts.category, facts.public) {
                continue;
            }
            let Ok(repo) = RepoPath::parse(name) else {
                continue;
            };
            let row = match row {
                Some(r) => r,
                None => match self.get(&repo)? {
                    Some(r) => r,
                    None => continue,
                },
            };
            let sort = key.get(prefix.len()..).unwrap_or_default().to_vec();
            if !visit(repo, row, sort)? {
                break;
            }
        }
        Ok(())
    }
}

/// Where an image stands in a listing in `order`, as [`Images::walk`]
/// reports it: by name, the name; by time, the inverted update time then
/// the name. Listings that merge other images (shared ones) place them with
/// it.
pub fn sort_key(order: Order, repo: &RepoPath, row: &ImageRow) -> Vec<u8> {
    match order {
        Order::NameAsc | Order::NameDesc => repo.to_string().into_bytes(),
        Order::NewestFirst | Order::OldestFirst => [
            inverted(row.updated_at).as_slice(),
            repo.to_string().as_bytes(),
        ]
        .concat(),
    }
}

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
