//! The audit view: records filtered by time, who, where and what, with an
//! export of the same records; one image's or organization's timeline; and
//! its state as of any past instant.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::format::time;
use super::json::{each, text};
use super::me;
use crate::call::Visitor;
use crate::{encode, render, Chrome, Console, Problem};

/// The view and its filters, as the form sends them.
#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    view: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    repo: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    result: String,
    #[serde(default)]
    at: String,
}

/// One audit record.
pub struct Record {
    seq: u64,
    time: String,
    actor: String,
    from: String,
    action: String,
    resource: String,
    result: String,
    code: String,
}

fn record(v: &Value) -> Record {
    let actor = &v["actor"];
    let r = &v["resource"];
    let mut resource = text(r, "org");
    for (sep, key) in [
        ("/", "repo"),
        (":", "tag"),
        ("@", "digest"),
        (" → ", "target_user"),
        (" → ", "share"),
    ] {
        let part = text(r, key);
        if !part.is_empty() {
            resource.push_str(sep);
            resource.push_str(&part);
        }
    }
    Record {
        seq: v["seq"].as_u64().unwrap_or_default(),
        time: text(v, "time"),
        actor: match (text(actor, "user"), text(actor, "account")) {
            (u, a) if u.is_empty() && a.is_empty() => "—".to_owned(),
            (u, a) => format!("{u} · {a}"),
        },
        from: text(actor, "client_addr"),
        action: text(v, "action"),
        resource,
        result: text(v, "result"),
        code: text(v, "code"),
    }
}

/// A past state as rows of a definition list: each field, with lists
/// joined into one line.
fn state_rows(v: &Value) -> Vec<(String, String)> {
    let shown = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let value = match v {
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::Object(o) => o.values().map(shown).collect::<Vec<_>>().join(" · "),
                        other => shown(other),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                other => shown(other),
            };
            (k.clone(), value)
        })
        .collect()
}

/// A `datetime-local` value (`2026-11-30T09:15`) as RFC 3339 UTC; other
/// text as it is, for the API to judge.
fn instant(value: &str) -> String {
    if value.len() == 16 && value.as_bytes().get(10) == Some(&b'T') {
        format!("{value}:00Z")
    } else {
        value.to_owned()
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    c: Chrome,
    view: &'static str,
    f: Filters,
    records: Vec<Record>,
    state: Vec<(String, String)>,
    export_csv: String,
    export_ndjson: String,
    problem: Option<Problem>,
}

/// `GET /console/audit?view=events|timeline|as-of&…`
pub async fn audit(
    State(console): State<Console>,
    visitor: Visitor,
    Query(f): Query<Filters>,
) -> Response {
    let me = match me(&console, &visitor).await {
        Ok(me) => me,
        Err(signin) => return signin,
    };
    let view = match f.view.as_str() {
        "timeline" => "timeline",
        "as-of" => "as-of",
        _ => "events",
    };
    let mut query = String::new();
    let pairs = [
        ("from", instant(&f.from)),
        ("to", instant(&f.to)),
        ("user", f.user.clone()),
        ("namespace", f.namespace.clone()),
        ("repo", f.repo.clone()),
        ("action", f.action.clone()),
        ("result", f.result.clone()),
    ];
    let scope: &[&str] = match view {
        "events" => &[
            "from",
            "to",
            "user",
            "namespace",
            "repo",
            "action",
            "result",
        ],
        _ => &["namespace", "repo"],
    };
    for (key, value) in &pairs {
        if !value.is_empty() && scope.contains(key) {
            query.push_str(&format!("&{key}={}", encode(value)));
        }
    }
    let (mut records, mut state, mut problem) = (Vec::new(), Vec::new(), None);
    let words = visitor.words;
    let route = match view {
        "events" => format!("/audit/events?limit=100&order=newest{query}"),
        "timeline" => format!("/audit/timeline?limit=200{query}"),
        _ => format!("/audit/as-of?at={}{query}", encode(&instant(&f.at))),
    };
    match console.get(&visitor, &route).await {
        Ok(v) if view == "as-of" => state = state_rows(&v),
        Ok(v) => {
            records = each(&v, "events").map(record).collect();
        }
        Err(e) => problem = Some(Problem::of(&e, &words, "audit")),
    }
    for r in &mut records {
        r.time = time(&r.time);
    }
    let page = AuditPage {
        c: Chrome::new(&visitor, Some(me), "audit"),
        view,
        export_csv: format!("/v2/manage/audit/events?format=csv{query}"),
        export_ndjson: format!("/v2/manage/audit/events?format=ndjson{query}"),
        f,
        records,
        state,
        problem,
    };
    render(&visitor, StatusCode::OK, &page)
}
