//! Listings: the paging every list route takes (`sort`, `order`, `limit`,
//! `cursor`), and the image listing that walks an index of the caller's
//! images and merges in those shared with their account.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use berth_domain::policy::{allows, manages_account};
use berth_domain::{Category, Level, OrgName, Principal, RepoPath};
use berth_projections::{sort_key, ImageRow, Order, ReadModels, Scope};
use berth_store::StoreError;

use super::{field, Query, Refusal};
use crate::auth::levels;
use crate::error::ApiError;
use crate::state::Parts;

/// Entries on a page unless asked.
const DEFAULT_LIMIT: usize = 100;

/// The order and size of a page.
pub(super) struct Paging {
    /// By name rather than by update time.
    pub by_name: bool,
    /// Last first.
    pub descending: bool,
    /// Entries per page.
    pub limit: usize,
}

impl Paging {
    /// Reads `sort` (`updated_at`, the default, or `name`), `order` (`asc`
    /// or `desc`; newest first and a to z unless asked) and `limit` (1–1000,
    /// default 100).
    pub(super) fn parse(q: &Query) -> Result<Self, Refusal> {
        let by_name = match q.get("sort").unwrap_or("updated_at") {
            "name" => true,
            "updated_at" => false,
            other => {
                return Err(Refusal(ApiError::Invalid {
                    field: "sort".into(),
                    message: format!("sort must be updated_at or name, not {other:?}"),
                }))
            }
        };
        let descending = q
            .parsed(
                "order",
                |o| match o {
                    "asc" => Some(false),
                    "desc" => Some(true),
                    _ => None,
                },
                "asc or desc",
            )?
            .unwrap_or(!by_name);
        let limit = q.limit(DEFAULT_LIMIT)?;
        Ok(Self {
            by_name,
            descending,
            limit,
        })
    }
}

/// A listing request, parsed and checked.
pub(super) struct Listing {
    pub namespace: Option<OrgName>,
    /// Only shared images (`true`), none (`false`), or both.
    shared: Option<bool>,
    name: Option<String>,
    public: Option<bool>,
    category: Option<Category>,
    order: Order,
    limit: usize,
    after: Option<Vec<u8>>,
}

impl Listing {
    pub(super) fn parse(raw: Option<&str>, namespace: Option<OrgName>) -> Result<Self, Refusal> {
        let mut known = vec![
            "name",
            "is_public",
            "category",
            "sort",
            "order",
            "limit",
            "cursor",
        ];
        if namespace.is_none() {
            known.extend(["namespace", "shared"]);
        }
        let q = Query::parse(raw, &known)?;
        let namespace = match namespace {
            Some(ns) => Some(ns),
            None => q
                .get("namespace")
                .map(|n| field("namespace", n, OrgName::parse))
                .transpose()?,
        };
        let paging = Paging::parse(&q)?;
        let order = match (paging.by_name, paging.descending) {
            (true, false) => Order::NameAsc,
            (true, true) => Order::NameDesc,
            (false, true) => Order::NewestFirst,
            (false, false) => Order::OldestFirst,
        };
        let limit = paging.limit;
        let after = q.parsed(
            "cursor",
            |c| URL_SAFE_NO_PAD.decode(c).ok(),
            "a cursor this route returned",
        )?;
        Ok(Self {
            namespace,
            shared: q.parsed("shared", |b| b.parse().ok(), "true or false")?,
            name: q.get("name").map(str::to_owned),
            public: q.parsed("is_public", |b| b.parse().ok(), "true or false")?,
            category: q
                .get("category")
                .map(|c| field("category", c, Category::parse))
                .transpose()?,
            order,
            limit,
            after,
        })
    }

    /// Whether an image (`org/name`) passes the filters; the name filter
    /// looks at the part after the organization.
    fn matches(&self, path: &str, category: Category, public: bool) -> bool {
        self.public.is_none_or(|p| p == public)
            && self.category.is_none_or(|c| c == category)
            && self.name.as_deref().is_none_or(|n| {
                path.split_once('/')
                    .is_some_and(|(_, name)| name.contains(n))
            })
    }

    /// Whether `key` comes after the cursor in this listing's direction.
    fn after_cursor(&self, key: &[u8]) -> bool {
        let forward = matches!(self.order, Order::NameAsc | Order::NewestFirst);
        self.after
            .as_deref()
            .is_none_or(|a| if forward { key > a } else { key < a })
    }
}

/// One listed image and where it stands.
pub(super) struct Listed {
    pub key: Vec<u8>,
    pub repo: RepoPath,
    pub row: ImageRow,
    pub shared: bool,
}

/// Whether the caller may see an image: everything in an account they
/// administer, else what they hold a level on.
fn may_see(
    parts: &Parts,
    p: &Principal,
    repo: &RepoPath,
    row: &ImageRow,
) -> Result<bool, StoreError> {
    if row.owner.as_ref().is_some_and(|o| manages_account(p, o)) || p.is_operator() {
        return Ok(true);
    }
    let level = levels::repo_level(&parts.models, &parts.settings, Some(p), repo)?;
    Ok(allows(level, Level::Read))
}

/// The images shared with the caller's account, live ones only, placed
/// for this listing.
fn shared_with(parts: &Parts, p: &Principal, listing: &Listing) -> Result<Vec<Listed>, StoreError> {
    let models: &ReadModels = &parts.models;
    let now = parts.settings.clock.now();
    let mut out = Vec::new();
    for share in models.shares.shared_with(&p.account)? {
        if !share.deadline.holds_at(now) {
            continue;
        }
        let Some(row) = models.images.get(&share.repo)? else {
            continue;
        };
        let key = sort_key(listing.order, &share.repo, &row);
        if listing.matches(&share.repo.to_string(), row.category, row.public)
            && listing.after_cursor(&key)
        {
            out.push(Listed {
                key,
                repo: share.repo,
                row,
                shared: true,
            });
        }
    }
    Ok(out)
}

/// Runs a listing: the scope's own images, with shared ones merged in when
/// listing across organizations; a page and whether more follow.
pub(super) fn run(
    parts: &Parts,
    p: &Principal,
    listing: &Listing,
) -> Result<(Vec<Listed>, bool), StoreError> {
    let scope = match &listing.namespace {
        Some(org) => Scope::Org(org.clone()),
        None => Scope::Account(Some(p.account.clone())),
    };
    let mut own = Vec::new();
    if listing.shared != Some(true) {
        parts.models.images.walk(
            &scope,
            listing.order,
            listing.after.as_deref(),
            |repo, category, public| listing.matches(repo, category, public),
            |repo, row, key| {
                if may_see(parts, p, &repo, &row)? {
                    own.push(Listed {
                        key,
                        repo,
                        row,
                        shared: false,
                    });
                }
                Ok(own.len() <= listing.limit)
            },
        )?;
    }
    let mut all = own;
    if listing.namespace.is_none() && listing.shared != Some(false) {
        all.extend(shared_with(parts, p, listing)?);
        let forward = matches!(listing.order, Order::NameAsc | Order::NewestFirst);
        all.sort_by(|a, b| {
            if forward {
                a.key.cmp(&b.key)
            } else {
                b.key.cmp(&a.key)
            }
        });
    }
    let more = all.len() > listing.limit;
    all.truncate(listing.limit);
    Ok((all, more))
}
