//! Who did something and from where: carried by every event for the audit trail.

use serde::{Deserialize, Serialize};

/// How the actor proved who they are. New kinds are appended, never reordered:
/// the position is part of the encoded log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CredentialKind {
    /// No credentials were presented.
    Anonymous,
    /// The server itself (startup, maintenance commands).
    System,
    /// An account password (console and management API sessions).
    Password,
    /// A temporary docker login (24 h).
    Temporary,
    /// A long-term access-key login.
    AccessKey,
}

impl CredentialKind {
    /// The word audit records use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::System => "system",
            Self::Password => "password",
            Self::Temporary => "temporary",
            Self::AccessKey => "access-key",
        }
    }
}

/// The principal behind a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Account of the user, when known.
    pub account: Option<String>,
    /// User name inside the account, when known.
    pub user: Option<String>,
    /// How they authenticated.
    pub credential: CredentialKind,
    /// Client address as seen by the server.
    pub client_addr: Option<String>,
    /// The access key or temporary login id, for docker credentials.
    pub credential_id: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
}

impl Actor {
    /// An unauthenticated caller, identified only by address.
    pub fn anonymous(client_addr: Option<String>) -> Self {
        Self {
            account: None,
            user: None,
            credential: CredentialKind::Anonymous,
            client_addr,
            credential_id: None,
            user_agent: None,
        }
    }

    /// An authenticated user of an account.
    pub fn user(
        account: &crate::AccountName,
        user: &crate::UserName,
        credential: CredentialKind,
        client_addr: Option<String>,
    ) -> Self {
        Self {
            account: Some(account.to_string()),
            user: Some(user.to_string()),
            credential,
            client_addr,
            credential_id: None,
            user_agent: None,
        }
    }

    /// The server acting on its own behalf.
    pub fn system() -> Self {
        Self {
            account: None,
            user: None,
            credential: CredentialKind::System,
            client_addr: None,
            credential_id: None,
            user_agent: None,
        }
    }

    /// The same actor with the credential id and user agent the request
    /// came with.
    pub fn with_request(
        mut self,
        credential_id: Option<String>,
        user_agent: Option<String>,
    ) -> Self {
        self.credential_id = credential_id;
        self.user_agent = user_agent;
        self
    }
}
