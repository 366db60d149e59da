//! Audit records as readers get them: one JSON object, or one CSV row,
//! per event, and exports that stream a whole query in either.

use std::ops::ControlFlow;

use berth_domain::policy::AuditScope;
use berth_store::{EventLog, Recorded, StoreError};
use serde_json::json;

use super::{Audit, Filter, Order};

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
}
