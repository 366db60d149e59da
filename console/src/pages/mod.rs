//! The console's pages, one module per part of the navigation.

pub mod account;
pub mod audit;
mod format;
pub mod image;
pub mod images;
mod json;
pub mod orgs;
pub mod session;
pub mod uploads;

use askama::Template;
use axum::response::{IntoResponse, Redirect, Response};

use crate::call::Visitor;
use crate::{to_signin, Chrome, Console, Me};

/// A page for what the visitor may not see or that does not exist (the
/// API does not tell the two apart, and neither does the console).
#[derive(Template)]
#[template(path = "notfound.html")]
pub struct NotFound {
    /// The chrome.
    pub c: Chrome,
    /// The refusal in words.
    pub text: String,
}

/// `/console/`: the images of whoever is signed in.
pub async fn home() -> Response {
    Redirect::to("/console/images").into_response()
}

/// Who is signed in, or the way to the sign-in page.
pub async fn me(console: &Console, visitor: &Visitor) -> Result<Me, Response> {
    match console.get(visitor, "/session").await {
        Ok(v) => Ok(Me::from_json(&v)),
        Err(_) => Err(to_signin(visitor)),
    }
}
