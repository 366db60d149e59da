//! Form tokens. Each browser gets a random token in the `berth_csrf`
//! cookie (HttpOnly, SameSite=Strict); every form carries it in a hidden
//! field, and a form whose field differs from the cookie is refused. A page
//! of another site can neither read the cookie nor make the browser send
//! it, so it cannot forge the field. The session cookie is SameSite=Strict
//! too: the token is the second lock, and the only one a browser without
//! SameSite support has.

use axum::http::{header, HeaderMap, HeaderValue};

/// The cookie's name.
pub const COOKIE: &str = "berth_csrf";
/// The form field's name.
pub const FIELD: &str = "_csrf";

/// The browser's token, if it has one.
pub fn of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")))
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

/// A new token: 244 random bits from the operating system.
pub fn fresh() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The `Set-Cookie` value that gives the browser its token.
pub fn cookie(token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/console"
    ))
    .ok()
}

/// Whether a form's token is the browser's, compared in constant time.
pub fn matches(expected: &str, sent: &str) -> bool {
    expected.len() == sent.len()
        && expected
            .bytes()
            .zip(sent.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_read_back_and_compared_whole() {
        let token = fresh();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("a=1; {COOKIE}={token}").parse().unwrap(),
        );
        assert_eq!(of(&headers).as_deref(), Some(token.as_str()));
        assert!(matches(&token, &token));
        assert!(!matches(&token, &token[..63]));
        assert!(!matches(&token, &fresh()));
        headers.insert(header::COOKIE, format!("{COOKIE}=short").parse().unwrap());
        assert_eq!(of(&headers), None);
    }
}
