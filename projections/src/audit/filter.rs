//! The audit filter and the one parser that reads it from named
//! parameters, for the query API and the command line alike.

use berth_domain::audit::OTHER_ADDRESSES;
use berth_domain::{AccountName, Event, OrgName, Outcome, RepoName, UserName};
use chrono::{DateTime, Utc};

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
