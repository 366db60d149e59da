//! Reading the management API's JSON answers: a text field, or the items
//! of a list field, with a missing one read as empty.

use serde_json::Value;

/// A text field, or empty.
pub fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// The items of a list field, or none.
pub fn each<'v>(v: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    v[key].as_array().into_iter().flatten()
}
