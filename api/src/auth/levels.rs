//! The facts the policy needs, gathered from the read models, and the
//! level the policy gives: one gatherer for organizations and one for
//! repositories, whatever surface asks. Blocking: call from a storage
//! thread.

use berth_domain::policy::{self, OrgFacts, RepoFacts};
use berth_domain::{Level, OrgName, Principal, RepoPath};
use berth_projections::{OrgRow, ReadModels};
use berth_store::StoreError;

use super::Settings;

fn org_facts(
    models: &ReadModels,
    caller: Option<&Principal>,
    name: &OrgName,
    row: OrgRow,
) -> Result<OrgFacts, StoreError> {
    let grant = match caller {
        Some(p) => models.orgs.grant(name, &p.account, &p.user)?,
        None => None,
    };
    Ok(OrgFacts {
        owner: row.owner,
        creator: row.creator,
        grant,
    })
}

/// The level a principal holds on an organization itself (granting access
/// to it); `None` also when it does not exist.
pub fn org_level(
    models: &ReadModels,
    p: &Principal,
    org: &OrgName,
) -> Result<Option<Level>, StoreError> {
    let Some(row) = models.orgs.get(org)? else {
        return Ok(None);
    };
    Ok(policy::org_level(p, &org_facts(models, Some(p), org, row)?))
}

/// The level a caller holds on a repository. A repository in an
/// organization that does not exist yet is one the caller could create by
/// pushing, within their account's quota.
pub fn repo_level(
    models: &ReadModels,
    settings: &Settings,
    caller: Option<&Principal>,
    repo: &RepoPath,
) -> Result<Option<Level>, StoreError> {
    let Some(org) = models.orgs.get(repo.org())? else {
        let owned = match caller {
            Some(p) => models.orgs.count_owned(&p.account)?,
            None => 0,
        };
        return Ok(policy::unclaimed_level(caller, owned, settings.org_quota));
    };
    let org = org_facts(models, caller, repo.org(), org)?;
    let row = models.repos.get(repo)?;
    let repo_facts = RepoFacts {
        exists: row.is_some(),
        public: match &row {
            Some(r) => models.repos.is_public(r.id)?,
            None => false,
        },
        grant: match (&row, caller) {
            (Some(r), Some(p)) => models.repos.grant(r.id, &p.account, &p.user)?,
            _ => None,
        },
        // Checked against now on every authorization: an expired share
        // stops pulls at once.
        shared: match (&row, caller) {
            (Some(r), Some(p)) => models
                .shares
                .get(r.id, &p.account)?
                .is_some_and(|s| s.deadline.holds_at(settings.clock.now())),
            _ => false,
        },
    };
    Ok(policy::repo_level(
        caller,
        &org,
        &repo_facts,
        settings.anonymous_pull,
    ))
}
