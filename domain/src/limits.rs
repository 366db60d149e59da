//! Named limits shared by validation, the HTTP layer and the API documents.

/// Longest organization name.
pub const MAX_ORG_NAME: usize = 64;
/// Longest account or user name.
pub const MAX_IDENTITY_NAME: usize = 64;
/// Longest repository name (the part after the organization).
pub const MAX_REPO_NAME: usize = 128;
/// Longest tag.
pub const MAX_TAG_NAME: usize = 128;
/// Largest manifest accepted on push; larger bodies are refused before parsing.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Default largest single blob (layer) accepted on push.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// Default largest file of a web upload, read or inflated: 2 GiB.
pub const DEFAULT_MAX_UPLOAD_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Longest repository description.
pub const MAX_DESCRIPTION_CHARS: usize = 30_000;
/// Longest share note.
pub const MAX_SHARE_NOTE_CHARS: usize = 1_000;
/// Default number of organizations an account may own.
pub const DEFAULT_ORG_QUOTA: usize = 5;
/// Access keys a user may hold at once.
pub const MAX_ACCESS_KEYS: usize = 2;
