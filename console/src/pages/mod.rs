//! The console's pages, one module per part of the navigation.

mod format;
pub mod images;
pub mod orgs;
pub mod session;

use axum::response::{IntoResponse, Redirect, Response};

use crate::call::Visitor;
use crate::{to_signin, Console, Me};

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
