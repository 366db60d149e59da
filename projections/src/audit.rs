//! The audit index: for every event, one empty key per thing an auditor
//! filters by (account concerned, user, organization, repository, action,
//! result, client address), each ending in the sequence number. A query
//! walks one index newest first (or the log itself when nothing is
//! filtered), probes the others by point lookup, and reads only the events
//! it returns from the log. Records are the log's events: nothing is
//! copied, so an export streams from the log and cannot disagree with it.

use std::collections::BTreeSet;
use std::ops::{ControlFlow, RangeInclusive};

use berth_domain::audit::OTHER_ADDRESSES;
use berth_domain::policy::AuditScope;
use berth_domain::{AccountName, Event, OrgName, Outcome, RepoName, RepoPath, UserName};
use berth_store::{Batch, EventLog, Recorded, StoreError, Table};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::orgs::owner_as_batch_leaves;

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

/// An audit query: every field is optional and they all must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Records at or before this time.
    pub until: Option<DateTime<Utc>>,
    /// Records about this account: its users' actions, its organizations
    /// and repositories, shares with it.
    pub account: Option<String>,
    /// Records of or about this user, `account/user`.
    pub user: Option<String>,
    /// Records about this organization or its repositories.
    pub org: Option<String>,
    /// Records about this repository, `org/name`.
    pub repo: Option<String>,
    /// Records of this event type (`TagPointed`, `LoginFailed`, ...).
    pub action: Option<String>,
    /// Records with this result.
    pub outcome: Option<Outcome>,
    /// Records of requests from this client address.
    pub client_addr: Option<String>,
}

/// A filter value that is not what its parameter takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// The parameter.
    pub field: &'static str,
    /// What it must be, to follow the parameter's name as each surface
    /// spells it (`result` in a query string, `--result` on the command
    /// line).
    pub message: String,
}

/// The parameters a filter reads, by name: the query API's query string
/// and `berth audit query`'s flags use the same names and the same checks.
pub const FILTER_PARAMS: [&str; 9] = [
    "from",
    "to",
    "account",
    "user",
    "namespace",
    "repo",
    "action",
    "result",
    "client_addr",
];

impl Filter {
    /// Reads a filter from named parameters, checking each value.
    pub fn parse<'a>(param: impl Fn(&str) -> Option<&'a str>) -> Result<Self, FilterError> {
        fn check<T>(
            field: &'static str,
            value: Option<&str>,
            parse: impl FnOnce(&str) -> Option<T>,
            expected: &str,
        ) -> Result<Option<T>, FilterError> {
            value
                .map(|v| {
                    parse(v).ok_or_else(|| FilterError {
                        field,
                        message: format!("must be {expected}, not {v:?}"),
                    })
                })
                .transpose()
        }
        let time = |field| {
            check(
                field,
                param(field),
                |t| {
                    DateTime::parse_from_rfc3339(t)
                        .ok()
                        .map(|t| t.with_timezone(&Utc))
                },
                "an RFC 3339 time",
            )
        };
        let name = |field, parse: fn(&str) -> bool, rule: &str| {
            check(
                field,
                param(field),
                |v| parse(v).then(|| v.to_owned()),
                rule,
            )
        };
        let org = name(
            "namespace",
            |v| OrgName::parse(v).is_ok(),
            "an organization name",
        )?;
        let repo = match (param("repo"), &org) {
            (Some(r), Some(org)) => check(
                "repo",
                Some(r),
                |v| RepoName::parse(v).ok(),
                "a repository name",
            )?
            .map(|n| format!("{org}/{n}")),
            (Some(_), None) => {
                return Err(FilterError {
                    field: "repo",
                    message: "names a repository inside namespace; give namespace too".into(),
                })
            }
            (None, _) => None,
        };
        Ok(Self {
            since: time("from")?,
            until: time("to")?,
            account: name(
                "account",
                |v| AccountName::parse(v).is_ok(),
                "an account name",
            )?,
            user: name(
                "user",
                |v| {
                    v.split_once('/').is_some_and(|(a, u)| {
                        AccountName::parse(a).is_ok() && UserName::parse(u).is_ok()
                    })
                },
                "account/user",
            )?,
            org,
            repo,
            action: name(
                "action",
                |v| Event::KINDS.contains(&v),
                "an event type such as TagPointed, LoginFailed or PushRejected",
            )?,
            outcome: check(
                "result",
                param("result"),
                Outcome::parse,
                "ok, denied or failed",
            )?,
            client_addr: name(
                "client_addr",
                |v| v.parse::<std::net::IpAddr>().is_ok() || v == OTHER_ADDRESSES,
                "an IP address",
            )?,
        })
    }
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

/// How an export writes each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line ([`record_json`]).
    Ndjson,
    /// CSV with a header row ([`csv_record`]).
    Csv,
}

/// One query of an export: what to select and how.
#[derive(Debug, Clone)]
pub struct Export {
    /// The filter.
    pub filter: Filter,
    /// What the reader may see.
    pub scope: AuditScope,
    /// The order.
    pub order: Order,
    /// Start past this sequence number.
    pub cursor: Option<u64>,
    /// Most records.
    pub limit: usize,
    /// How records are written.
    pub format: Format,
}

/// Bytes gathered before an export hands them on.
const EXPORT_CHUNK: usize = 128 * 1024;

impl Audit {
    /// Streams the records an export selects as text chunks to `sink`
    /// until it returns `false` (its reader went away).
    pub fn export(
        &self,
        log: &EventLog,
        export: &Export,
        mut sink: impl FnMut(String) -> bool,
    ) -> Result<(), StoreError> {
        let mut buf = String::with_capacity(EXPORT_CHUNK * 2);
        if export.format == Format::Csv {
            buf.push_str(CSV_HEADER);
        }
        let mut left = export.limit;
        let mut open = true;
        self.query(
            log,
            &export.filter,
            &export.scope,
            export.order,
            export.cursor,
            |rec| {
                if left == 0 {
                    return Ok(ControlFlow::Break(()));
                }
                left -= 1;
                match export.format {
                    Format::Csv => csv_record(&rec, &mut buf),
                    Format::Ndjson => {
                        buf.push_str(&record_json(&rec).to_string());
                        buf.push('\n');
                    }
                }
                if buf.len() >= EXPORT_CHUNK {
                    open = sink(std::mem::take(&mut buf));
                    if !open {
                        return Ok(ControlFlow::Break(()));
                    }
                    buf.reserve(EXPORT_CHUNK * 2);
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
        if open && !buf.is_empty() {
            sink(buf);
        }
        Ok(())
    }
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

/// One record as the query API and `berth audit query` show it: the time,
/// the actor with credential and address, the request id, the action, the
/// resource, the result with its code, how many attempts it stands for,
/// and the event's own fields.
pub fn record_json(rec: &Recorded) -> serde_json::Value {
    let facts = rec.event.audit();
    let actor = &rec.envelope.actor;
    json!({
        "seq": rec.seq,
        "time": rec.envelope.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "action": rec.event.kind(),
        "result": facts.outcome.as_str(),
        "code": facts.code,
        "count": facts.count,
        "actor": {
            "account": actor.account,
            "user": actor.user,
            "credential": actor.credential.as_str(),
            "credential_id": actor.credential_id,
            "client_addr": actor.client_addr,
            "user_agent": actor.user_agent,
        },
        "request_id": rec.envelope.request_id,
        "resource": facts.resource,
        "event": rec.payload_json(),
    })
}

/// The CSV header of [`csv_record`]'s rows.
pub const CSV_HEADER: &str = "seq,time,action,result,code,count,account,user,credential,credential_id,client_addr,user_agent,request_id,org,repo,tag,digest,target_user,share,key\r\n";

/// Appends one record as a CSV row (RFC 4180). The full event is in the
/// NDJSON export; the CSV carries the columns a spreadsheet filters by.
pub fn csv_record(rec: &Recorded, out: &mut String) {
    use std::fmt::Write as _;
    let facts = rec.event.audit();
    let actor = &rec.envelope.actor;
    let r = &facts.resource;
    let _ = write!(
        out,
        "{},{},{},{},",
        rec.seq,
        rec.envelope
            .occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        rec.event.kind(),
        facts.outcome.as_str()
    );
    csv_field(out, facts.code.as_deref());
    let _ = write!(out, ",{},", facts.count);
    for field in [actor.account.as_deref(), actor.user.as_deref()] {
        csv_field(out, field);
        out.push(',');
    }
    out.push_str(actor.credential.as_str());
    out.push(',');
    for field in [
        actor.credential_id.as_deref(),
        actor.client_addr.as_deref(),
        actor.user_agent.as_deref(),
    ] {
        csv_field(out, field);
        out.push(',');
    }
    let _ = write!(out, "{},", rec.envelope.request_id);
    let resource = [
        &r.org, &r.repo, &r.tag, &r.digest, &r.user, &r.share, &r.key,
    ];
    for (i, field) in resource.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, field.as_deref());
    }
    out.push_str("\r\n");
}

/// One CSV field: quoted when it holds a separator, a quote or a line
/// break; a leading `=`, `+`, `-`, `@`, tab or carriage return (which a
/// spreadsheet would run as a formula, and a client controls its user
/// agent) is neutralised with a leading `'`.
fn csv_field(out: &mut String, value: Option<&str>) {
    let Some(v) = value else { return };
    let formula = v.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula || v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if formula {
            out.push('\'');
        }
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        let mut out = String::new();
        csv_field(&mut out, Some("plain"));
        out.push('|');
        csv_field(&mut out, Some("a,\"b\""));
        out.push('|');
        csv_field(&mut out, Some("=HYPERLINK(\"x\")"));
        out.push('|');
        csv_field(&mut out, None);
        assert_eq!(out, "plain|\"a,\"\"b\"\"\"|\"'=HYPERLINK(\"\"x\"\")\"|");
    }

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
