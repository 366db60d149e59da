//! Where an event is filed in the log, read without its payload: the
//! aggregate stream it belongs to, and its type name in the envelope.

use uuid::Uuid;

use crate::event::Event;

/// The stream of the failures counted per client address.
pub const FAILURES_STREAM: Uuid = Uuid::from_u128(0x6265_7274_682d_6661_696c_7572_6573_0000);

/// The stream of garbage-collection runs.
pub const GC_STREAM: Uuid = Uuid::from_u128(0x6265_7274_682d_6763_2d72_756e_7300_0000);

/// The stream of the log's own events (checkpoints).
pub const LOG_STREAM: Uuid = Uuid::from_u128(0x6265_7274_682d_6c6f_672d_7374_7265_616d);

impl Event {
    /// The aggregate stream the event belongs to.
    pub fn stream_id(&self) -> Uuid {
        match self {
            Self::OrgCreated { org_id, .. }
            | Self::NamespaceCreated { org_id, .. }
            | Self::OrgAccessGranted { org_id, .. }
            | Self::OrgAccessRevoked { org_id, .. }
            | Self::OrganizationDeleted { org_id, .. } => *org_id,
            Self::RepositoryCreated { repo_id, .. }
            | Self::BlobUploaded { repo_id, .. }
            | Self::BlobMounted { repo_id, .. }
            | Self::ManifestPushed { repo_id, .. }
            | Self::TagPointed { repo_id, .. }
            | Self::TagDeleted { repo_id, .. }
            | Self::ManifestDeleted { repo_id, .. }
            | Self::BlobDeleted { repo_id, .. }
            | Self::RepositoryVisibilityChanged { repo_id, .. }
            | Self::RepoAccessGranted { repo_id, .. }
            | Self::RepositoryAttributesChanged { repo_id, .. }
            | Self::RepositoryDeleted { repo_id, .. }
            | Self::RepoAccessRevoked { repo_id, .. }
            | Self::ShareGranted { repo_id, .. }
            | Self::ShareChanged { repo_id, .. }
            | Self::ShareEnded { repo_id, .. }
            | Self::PullsCounted { repo_id, .. } => *repo_id,
            Self::CheckpointRecorded { .. } => LOG_STREAM,
            Self::FailuresCounted { .. } => FAILURES_STREAM,
            Self::GarbageCollected { .. } => GC_STREAM,
            Self::AccountCreated { account_id, .. } => *account_id,
            Self::UserCreated { user_id, .. }
            | Self::AccessKeyCreated { user_id, .. }
            | Self::AccessKeyEnabledChanged { user_id, .. }
            | Self::AccessKeyDeleted { user_id, .. }
            | Self::TemporaryLoginIssued { user_id, .. }
            | Self::AccessDenied { user_id, .. }
            | Self::UserPasswordChanged { user_id, .. }
            | Self::UserDisabled { user_id, .. }
            | Self::UserEnabled { user_id, .. }
            | Self::LoginFailed { user_id, .. }
            | Self::LoggedIn { user_id, .. }
            | Self::PushRejected { user_id, .. } => *user_id,
        }
    }

    /// Every event type name, in variant order: what an audit filter by
    /// action may name.
    pub const KINDS: &'static [&'static str] = &[
        "OrgCreated",
        "RepositoryCreated",
        "BlobUploaded",
        "BlobMounted",
        "ManifestPushed",
        "TagPointed",
        "TagDeleted",
        "ManifestDeleted",
        "BlobDeleted",
        "AccountCreated",
        "UserCreated",
        "NamespaceCreated",
        "RepositoryVisibilityChanged",
        "OrgAccessGranted",
        "AccessKeyCreated",
        "AccessKeyEnabledChanged",
        "AccessKeyDeleted",
        "TemporaryLoginIssued",
        "AccessDenied",
        "UserPasswordChanged",
        "UserDisabled",
        "UserEnabled",
        "RepoAccessGranted",
        "RepositoryAttributesChanged",
        "RepositoryDeleted",
        "OrgAccessRevoked",
        "RepoAccessRevoked",
        "OrganizationDeleted",
        "ShareGranted",
        "ShareChanged",
        "ShareEnded",
        "PullsCounted",
        "CheckpointRecorded",
        "LoginFailed",
        "PushRejected",
        "FailuresCounted",
        "LoggedIn",
        "GarbageCollected",
    ];

    /// The event type as written in the envelope, so audits can filter
    /// without decoding payloads.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OrgCreated { .. } => "OrgCreated",
            Self::RepositoryCreated { .. } => "RepositoryCreated",
            Self::BlobUploaded { .. } => "BlobUploaded",
            Self::BlobMounted { .. } => "BlobMounted",
            Self::ManifestPushed { .. } => "ManifestPushed",
            Self::TagPointed { .. } => "TagPointed",
            Self::TagDeleted { .. } => "TagDeleted",
            Self::ManifestDeleted { .. } => "ManifestDeleted",
            Self::BlobDeleted { .. } => "BlobDeleted",
            Self::AccountCreated { .. } => "AccountCreated",
            Self::UserCreated { .. } => "UserCreated",
            Self::NamespaceCreated { .. } => "NamespaceCreated",
            Self::RepositoryVisibilityChanged { .. } => "RepositoryVisibilityChanged",
            Self::OrgAccessGranted { .. } => "OrgAccessGranted",
            Self::AccessKeyCreated { .. } => "AccessKeyCreated",
            Self::AccessKeyEnabledChanged { .. } => "AccessKeyEnabledChanged",
            Self::AccessKeyDeleted { .. } => "AccessKeyDeleted",
            Self::TemporaryLoginIssued { .. } => "TemporaryLoginIssued",
            Self::AccessDenied { .. } => "AccessDenied",
            Self::UserPasswordChanged { .. } => "UserPasswordChanged",
            Self::UserDisabled { .. } => "UserDisabled",
            Self::UserEnabled { .. } => "UserEnabled",
            Self::RepoAccessGranted { .. } => "RepoAccessGranted",
            Self::RepositoryAttributesChanged { .. } => "RepositoryAttributesChanged",
            Self::RepositoryDeleted { .. } => "RepositoryDeleted",
            Self::OrgAccessRevoked { .. } => "OrgAccessRevoked",
            Self::RepoAccessRevoked { .. } => "RepoAccessRevoked",
            Self::OrganizationDeleted { .. } => "OrganizationDeleted",
            Self::ShareGranted { .. } => "ShareGranted",
            Self::ShareChanged { .. } => "ShareChanged",
            Self::ShareEnded { .. } => "ShareEnded",
            Self::PullsCounted { .. } => "PullsCounted",
            Self::CheckpointRecorded { .. } => "CheckpointRecorded",
            Self::LoginFailed { .. } => "LoginFailed",
            Self::PushRejected { .. } => "PushRejected",
            Self::FailuresCounted { .. } => "FailuresCounted",
            Self::LoggedIn { .. } => "LoggedIn",
            Self::GarbageCollected { .. } => "GarbageCollected",
        }
    }
}
