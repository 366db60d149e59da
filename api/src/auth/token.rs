//! Signed tokens: registry bearer tokens (the Docker token flow) and
//! management sessions, both HS256 JWTs under the server's key. Only HS256 is
//! accepted; `alg: none`, other algorithms, bad signatures, expired tokens,
//! tokens for another audience and tokens of the other kind are refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use berth_domain::CredentialKind;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The server's token signing key (32 random bytes kept in the data dir).
#[derive(Clone)]
pub struct SigningKey(pub [u8; 32]);

/// One granted scope entry, in the Docker token spec's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// Resource type (`repository`, `registry`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Resource name (`org/repo`, `catalog`).
    pub name: String,
    /// Granted actions.
    pub actions: Vec<String>,
}

/// Claims of every token Berth issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer, always `berth`.
    pub iss: String,
    /// `account/user`, or empty for an anonymous registry token.
    pub sub: String,
    /// The service (registry tokens) or `berth-manage` (sessions).
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not before.
    pub nbf: i64,
    /// Issued at.
    pub iat: i64,
    /// Unique id.
    pub jti: String,
    /// Granted access (registry tokens).
    #[serde(default)]
    pub access: Vec<Access>,
    /// The docker credential the token was issued for, re-checked on every
    /// request so a disabled key stops working at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred: Option<String>,
    /// How the subject proved who they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CredentialKind>,
}

/// Audience of management sessions; registry tokens use the service name.
pub const SESSION_AUDIENCE: &str = "berth-manage";

/// Why a token was refused (never shown beyond "invalid token").
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url JSON parts.
    Malformed,
    /// Algorithm other than HS256.
    Algorithm,
    /// Signature does not match.
    Signature,
    /// Past `exp` or before `nbf`.
    Expired,
    /// Issued for another audience.
    Audience,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
}

fn mac(key: &SigningKey) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes keys of any length")
}

/// Signs claims.
pub fn sign(key: &SigningKey, claims: &Claims) -> String {
    let header = Header {
        alg: "HS256".into(),
        typ: "JWT".into(),
    };
    let head = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("plain data encodes"));
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("plain data encodes"));
    let signing_input = format!("{head}.{body}");
    let mut m = mac(key);
    m.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Verifies a token for `audience` at time `now` (seconds).
pub fn verify(
    key: &SigningKey,
    token: &str,
    audience: &str,
    now: i64,
) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(head)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Malformed)?;
    if header.alg != "HS256" {
        return Err(TokenError::Algorithm);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed)?;
    let mut m = mac(key);
    m.update(head.as_bytes());
    m.update(b".");
    m.update(body.as_bytes());
    m.verify_slice(&sig).map_err(|_| TokenError::Signature)?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Malformed)?;
    if now >= claims.exp || now < claims.nbf {
        return Err(TokenError::Expired);
    }
    if claims.aud != audience {
        return Err(TokenError::Audience);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: SigningKey = SigningKey([7; 32]);

    fn claims(aud: &str, exp: i64) -> Claims {
        Claims {
            iss: "berth".into(),
            sub: "acme/alice".into(),
            aud: aud.into(),
            exp,
            nbf: 100,
            iat: 100,
            jti: "j".into(),
            access: vec![Access {
                kind: "repository".into(),
                name: "acme/web".into(),
                actions: vec!["pull".into()],
            }],
            cred: Some("AK".into()),
            kind: Some(CredentialKind::AccessKey),
        }
    }

    #[test]
    fn round_trip() {
        let t = sign(&KEY, &claims("berth", 200));
        assert_eq!(verify(&KEY, &t, "berth", 150), Ok(claims("berth", 200)));
    }

    #[test]
    fn refusals() {
        let t = sign(&KEY, &claims("berth", 200));
        assert_eq!(verify(&KEY, &t, "berth", 200), Err(TokenError::Expired));
        assert_eq!(verify(&KEY, &t, "berth", 99), Err(TokenError::Expired));
        assert_eq!(verify(&KEY, &t, "other", 150), Err(TokenError::Audience));
        assert_eq!(
            verify(&SigningKey([8; 32]), &t, "berth", 150),
            Err(TokenError::Signature)
        );
        // alg: none with an empty signature.
        let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = t.split('.').nth(1).unwrap();
        assert_eq!(
            verify(&KEY, &format!("{head}.{body}."), "berth", 150),
            Err(TokenError::Algorithm)
        );
        // A body swapped under a valid signature.
        let other = sign(&KEY, &claims("berth", 10_000));
        let forged = format!(
            "{}.{}.{}",
            t.split('.').next().unwrap(),
            other.split('.').nth(1).unwrap(),
            t.split('.').nth(2).unwrap()
        );
        assert_eq!(
            verify(&KEY, &forged, "berth", 150),
            Err(TokenError::Signature)
        );
        assert_eq!(
            verify(&KEY, "a.b", "berth", 150),
            Err(TokenError::Malformed)
        );
    }
}
