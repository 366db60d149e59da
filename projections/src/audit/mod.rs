//! The audit index: for every event, one empty key per thing an auditor
//! filters by (account concerned, user, organization, repository, action,
//! result, client address), each ending in the sequence number. A query
//! walks one index newest first (or the log itself when nothing is
//! filtered), probes the others by point lookup, and reads only the events
//! it returns from the log. Records are the log's events: nothing is
//! copied, so an export streams from the log and cannot disagree with it.

use std::collections::BTreeSet;
use std::ops::{ControlFlow, RangeInclusive};

use berth_domain::policy::AuditScope;
use berth_domain::{OrgName, Outcome, RepoPath};
use berth_store::{Batch, EventLog, Recorded, StoreError, Table};

use crate::orgs::owner_as_batch_leaves;

mod filter;
mod records;

pub use filter::{Filter, FilterError, FILTER_PARAMS};
pub use records::{csv_record, record_json, Export, Format, CSV_HEADER};

/// The audit index.
#[derive(Clone)]
pub struct Audit {
    pub(crate) rows: Table,
    orgs: Table,
}

/// What a record can be filtered by; each is one index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Dim {
    ClientAddr,
    Repo,
    User,
    Org,
    Action,
    Account,
    Outcome,
}

impl Dim {
    /// The key prefix byte. The enum's order is the order in which a query
    /// picks the index to walk: the one likely to hold fewest records.
    fn tag(self) -> u8 {
        match self {
            Self::ClientAddr => b'c',
            Self::Repo => b'r',
            Self::User => b'u',
            Self::Org => b'o',
            Self::Action => b'k',
            Self::Account => b'a',
            Self::Outcome => b's',
        }
    }
}

/// `tag ‖ len(value) as u16 ‖ value`.
fn prefix(dim: Dim, value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    let mut k = Vec::with_capacity(3 + bytes.len() + 8);
    k.push(dim.tag());
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(&bytes[..usize::from(len)]);
    k
}

fn key(dim: Dim, value: &str, seq: u64) -> Vec<u8> {
    let mut k = prefix(dim, value);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The order records come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Newest first (the query API's default).
    NewestFirst,
    /// Oldest first.
    OldestFirst,
}

impl Audit {
    pub(crate) fn open(log: &EventLog, orgs: Table) -> Result<Self, StoreError> {
        Ok(Self {
            rows: log.table("p_audit")?,
            orgs,
        })
    }

    /// Must run before the organizations read model applies the same
    /// event: a deleted organization's owner is read from its row.
    pub(crate) fn apply(&self, batch: &mut Batch, rec: &Recorded) -> Result<(), StoreError> {
        let facts = rec.event.audit();
        let actor = &rec.envelope.actor;
        let mut accounts: BTreeSet<String> =
            facts.accounts.iter().map(ToString::to_string).collect();
        accounts.extend(actor.account.clone());
        if let Some(org) = &facts.resource.org {
            if let Some(owner) = owner_as_batch_leaves(batch, &self.orgs, org)? {
                accounts.insert(owner.to_string());
            }
        }
        let mut users = BTreeSet::new();
        if let (Some(a), Some(u)) = (&actor.account, &actor.user) {
            users.insert(format!("{a}/{u}"));
        }
        users.extend(facts.resource.user.clone());
        let seq = rec.seq;
        let mut put = |dim: Dim, value: &str| batch.append(&self.rows, key(dim, value, seq), []);
        for a in &accounts {
            put(Dim::Account, a);
        }
        for u in &users {
            put(Dim::User, u);
        }
        if let Some(org) = &facts.resource.org {
            put(Dim::Org, org);
        }
        if let Some(repo) = &facts.resource.repo {
            put(Dim::Repo, repo);
        }
        put(Dim::Action, rec.event.kind());
        // Most records are successes: only refusals and failures carry an
        // outcome key, and a success is a record with neither.
        if facts.outcome != Outcome::Ok {
            put(Dim::Outcome, facts.outcome.as_str());
        }
        if let Some(addr) = &actor.client_addr {
            put(Dim::ClientAddr, addr);
        }
        Ok(())
    }

    /// Visits the records a filter selects, within what `scope` may read,
    /// in `order`, strictly past `cursor` (a sequence number this query
    /// returned), until `visit` says to stop.
    pub fn query(
        &self,
        log: &EventLog,
        filter: &Filter,
        scope: &AuditScope,
        order: Order,
        cursor: Option<u64>,
        mut visit: impl FnMut(Recorded) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<(), StoreError> {
        let Some(seqs) = bounds(log, filter, order, cursor)? else {
            return Ok(());
        };
        let mut conditions: Vec<(Dim, String)> = [
            (Dim::ClientAddr, filter.client_addr.clone()),
            (Dim::Repo, filter.repo.clone()),
            (Dim::User, filter.user.clone()),
            (Dim::Org, filter.org.clone()),
            (Dim::Action, filter.action.clone()),
            (Dim::Account, filter.account.clone()),
            (
                Dim::Outcome,
                filter
                    .outcome
                    .filter(|o| *o != Outcome::Ok)
                    .map(|o| o.as_str().to_owned()),
            ),
        ]
        .into_iter()
        .filter_map(|(dim, value)| value.map(|v| (dim, v)))
        .collect();
        if let AuditScope::Account(account) = scope {
            conditions.push((Dim::Account, account.to_string()));
        }
        conditions.sort();
        let only_ok = filter.outcome == Some(Outcome::Ok);
        let newest_first = order == Order::NewestFirst;
        let Some(((dim, value), probes)) = conditions.split_first() else {
            return log.each_in(seqs, newest_first, |rec| {
                if only_ok && rec.event.audit().outcome != Outcome::Ok {
                    return Ok(ControlFlow::Continue(()));
                }
                visit(rec)
            });
        };
        let p = prefix(*dim, value);
        let (lo, hi) = (
            key(*dim, value, *seqs.start()),
            key(*dim, value, *seqs.end()),
        );
        let span = lo.as_slice()..=hi.as_slice();
        let walk = if newest_first {
            self.rows.range_rev(span)
        } else {
            self.rows.range(span)
        };
        for item in walk {
            let (k, _) = item?;
            let seq = seq_of(&k, p.len());
            if !self.holds(probes, only_ok, seq)? {
                continue;
            }
            let Some(rec) = log.get(seq)? else { continue };
            if visit(rec)?.is_break() {
                break;
            }
        }
        Ok(())
    }
}

impl Audit {
    /// Whether the record at `seq` has every probed key, and, for
    /// `only_ok`, no refusal or failure key.
    fn holds(&self, probes: &[(Dim, String)], only_ok: bool, seq: u64) -> Result<bool, StoreError> {
        for (dim, value) in probes {
            if !self.rows.contains(key(*dim, value, seq))? {
                return Ok(false);
            }
        }
        if only_ok {
            for bad in [Outcome::Denied, Outcome::Failed] {
                if self.rows.contains(key(Dim::Outcome, bad.as_str(), seq))? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The sequence numbers of a resource's records after `after`, oldest
    /// first, at most `limit`: its timeline (what changed it, and what was
    /// refused on it), read by timelines and as-of folds.
    pub fn seqs(
        &self,
        resource: &Resource,
        after: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        let (dim, value) = match resource {
            Resource::Org(org) => (Dim::Org, org.to_string()),
            Resource::Repo(repo) => (Dim::Repo, repo.to_string()),
        };
        let p = prefix(dim, &value);
        let (lo, hi) = (
            key(dim, &value, after.saturating_add(1)),
            key(dim, &value, u64::MAX),
        );
        let mut out = Vec::new();
        for item in self.rows.range(lo.as_slice()..=hi.as_slice()) {
            if out.len() == limit {
                break;
            }
            let (k, _) = item?;
            out.push(seq_of(&k, p.len()));
        }
        Ok(out)
    }
}

/// What a timeline is of.
#[derive(Debug, Clone)]
pub enum Resource {
    /// An organization: its own records and all its repositories'.
    Org(OrgName),
    /// One repository name, across incarnations.
    Repo(RepoPath),
}

fn seq_of(key: &[u8], prefix_len: usize) -> u64 {
    key.get(prefix_len..)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// The sequence numbers a filter's time range and a cursor leave, or
/// `None` when they leave none.
fn bounds(
    log: &EventLog,
    filter: &Filter,
    order: Order,
    cursor: Option<u64>,
) -> Result<Option<RangeInclusive<u64>>, StoreError> {
    let head = log.head()?.seq;
    let mut lo = match filter.since {
        // The first event after the last one before `since`.
        Some(t) => log.seq_at(t - chrono::Duration::microseconds(1))? + 1,
        None => 1,
    };
    let mut hi = match filter.until {
        Some(t) => log.seq_at(t)?,
        None => head,
    };
    match (order, cursor) {
        (Order::NewestFirst, Some(c)) => hi = hi.min(c.saturating_sub(1)),
        (Order::OldestFirst, Some(c)) => lo = lo.max(c.saturating_add(1)),
        (_, None) => {}
    }
    Ok((lo <= hi).then_some(lo..=hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_of_one_value_sort_by_sequence_number() {
        let (a, b) = (
            key(Dim::Repo, "acme/web", 2),
            key(Dim::Repo, "acme/web", 10),
        );
        assert!(a < b);
        assert!(a.starts_with(&prefix(Dim::Repo, "acme/web")));
        assert!(!key(Dim::Repo, "acme/webx", 1).starts_with(&prefix(Dim::Repo, "acme/web")));
    }
}
