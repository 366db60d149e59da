//! What every request carries before any handler looks at it: its id, the
//! client's address and user agent, and its query string, decoded once.

use std::collections::HashMap;

use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderMap};
use uuid::Uuid;

/// The id given to each request, shared by the access log and the events it
/// causes.
#[derive(Debug, Clone, Copy)]
pub struct RequestId(pub Uuid);

/// Where a request came from and how to name it in logs and events.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The request id.
    pub request_id: Uuid,
    /// The client's address as this server sees it (tests that drive the
    /// router without a socket have none).
    pub client_addr: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
}

impl Origin {
    /// The origin of a request, from its extensions and headers.
    pub fn of(extensions: &Extensions, headers: &HeaderMap) -> Self {
        Self {
            request_id: extensions
                .get::<RequestId>()
                .map_or_else(Uuid::new_v4, |r| r.0),
            client_addr: extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }
    }

    /// The origin of a request, from its parts.
    pub fn of_parts(parts: &Parts) -> Self {
        Self::of(&parts.extensions, &parts.headers)
    }
}

/// The decoded `key=value` pairs of a query string, in order.
pub fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
}

/// The query as a map; the first of repeated keys wins.
pub fn query_map(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in query_pairs(query) {
        out.entry(k).or_insert(v);
    }
    out
}

/// Decodes `%XX` escapes and `+` (query-string form).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len()
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(b[i + 1]) << 4 | hex(b[i + 2]));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = query_map(Some("n=10&last=a%2Fb&mount=sha256%3Aab&x&n=99"));
        assert_eq!(q["n"], "10");
        assert_eq!(q["last"], "a/b");
        assert_eq!(q["mount"], "sha256:ab");
        assert_eq!(q["x"], "");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
