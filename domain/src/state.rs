//! Decision state: the slice of the registry that commands are decided on,
//! folded from events by [`Registry::evolve`].

use std::collections::HashMap;

use uuid::Uuid;

use crate::digest::Digest;
use crate::event::Event;
use crate::names::{AccountName, OrgName, RepoPath, TagName, UserName};

/// An organization as decisions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgState {
    /// Stream id.
    pub id: Uuid,
    /// Events in the stream so far.
    pub version: u64,
    /// Owning account (`None` for organizations from before accounts).
    pub owner: Option<AccountName>,
}

/// A manifest as decisions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestMeta {
    /// Media type.
    pub media_type: String,
    /// Manifest size plus the size of the content it references.
    pub total_size: u64,
    /// Its subject, if it is a referrer.
    pub subject: Option<Digest>,
}

/// A repository incarnation as decisions see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepoState {
    /// Stream id.
    pub id: Uuid,
    /// Events in the stream so far.
    pub version: u64,
    /// Linked blobs and their sizes.
    pub blobs: HashMap<Digest, u64>,
    /// Stored manifests.
    pub manifests: HashMap<Digest, ManifestMeta>,
    /// Tags and the manifest each points at.
    pub tags: HashMap<TagName, Digest>,
    /// Whether the repository is public.
    pub public: bool,
}

/// A user as decisions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    /// Stream id.
    pub id: Uuid,
    /// Events in the stream so far.
    pub version: u64,
    /// Access keys and whether each is enabled.
    pub keys: HashMap<String, bool>,
    /// Whether the user is disabled.
    pub disabled: bool,
}

/// An account and its users as decisions see them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountState {
    /// Stream id.
    pub id: Uuid,
    /// Events in the stream so far.
    pub version: u64,
    /// Users by name.
    pub users: HashMap<UserName, UserState>,
    /// Organizations the account owns (for the quota).
    pub orgs: usize,
}

/// The part of the registry loaded for deciding. A name absent from the maps
/// is a name that does not exist: the engine loads every name a command
/// [touches](crate::Command::touches) before deciding.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Organizations by name.
    pub orgs: HashMap<OrgName, OrgState>,
    /// Repositories by name.
    pub repos: HashMap<RepoPath, RepoState>,
    /// Accounts by name.
    pub accounts: HashMap<AccountName, AccountState>,
}

impl Registry {
    /// Folds one event in and returns the new version of its stream.
    pub fn evolve(&mut self, event: &Event) -> u64 {
        match event {
            Event::OrgCreated { org_id, org, .. } => {
                self.orgs.insert(
                    org.clone(),
                    OrgState {
                        id: *org_id,
                        version: 1,
                        owner: None,
                    },
                );
                1
            }
            Event::NamespaceCreated {
                org_id,
                org,
                account,
                ..
            } => {
                self.orgs.insert(
                    org.clone(),
                    OrgState {
                        id: *org_id,
                        version: 1,
                        owner: Some(account.clone()),
                    },
                );
                if let Some(owner) = self.accounts.get_mut(account) {
                    owner.orgs += 1;
                }
                1
            }
            Event::OrgAccessGranted { org, .. } => match self.orgs.get_mut(org) {
                Some(state) => {
                    state.version += 1;
                    state.version
                }
                None => 0,
            },
            Event::RepositoryVisibilityChanged { repo, public, .. } => self.with_repo(repo, |r| {
                r.public = *public;
            }),
            Event::RepoAccessGranted { repo, .. } => self.with_repo(repo, |_| {}),
            Event::AccessKeyCreated {
                account, user, ak, ..
            } => self.with_user(account, user, |u| {
                u.keys.insert(ak.clone(), true);
            }),
            Event::AccessKeyEnabledChanged {
                account,
                user,
                ak,
                enabled,
                ..
            } => self.with_user(account, user, |u| {
                u.keys.insert(ak.clone(), *enabled);
            }),
            Event::AccessKeyDeleted {
                account, user, ak, ..
            } => self.with_user(account, user, |u| {
                u.keys.remove(ak);
            }),
            Event::TemporaryLoginIssued { account, user, .. }
            | Event::AccessDenied { account, user, .. }
            | Event::UserPasswordChanged { account, user, .. } => {
                self.with_user(account, user, |_| {})
            }
            Event::UserDisabled { account, user, .. } => {
                self.with_user(account, user, |u| u.disabled = true)
            }
            Event::UserEnabled { account, user, .. } => {
                self.with_user(account, user, |u| u.disabled = false)
            }
            Event::RepositoryCreated { repo_id, repo, .. } => {
                self.repos.insert(
                    repo.clone(),
                    RepoState {
                        id: *repo_id,
                        version: 1,
                        ..RepoState::default()
                    },
                );
                1
            }
            Event::BlobUploaded {
                repo, digest, size, ..
            }
            | Event::BlobMounted {
                repo, digest, size, ..
            } => self.with_repo(repo, |r| {
                r.blobs.insert(digest.clone(), *size);
            }),
            Event::ManifestPushed {
                repo,
                digest,
                media_type,
                size,
                content_size,
                subject,
                ..
            } => self.with_repo(repo, |r| {
                r.manifests.insert(
                    digest.clone(),
                    ManifestMeta {
                        media_type: media_type.clone(),
                        total_size: size + content_size,
                        subject: subject.clone(),
                    },
                );
            }),
            Event::TagPointed {
                repo, tag, digest, ..
            } => self.with_repo(repo, |r| {
                r.tags.insert(tag.clone(), digest.clone());
            }),
            Event::TagDeleted { repo, tag, .. } => self.with_repo(repo, |r| {
                r.tags.remove(tag);
            }),
            Event::ManifestDeleted { repo, digest, .. } => self.with_repo(repo, |r| {
                r.manifests.remove(digest);
            }),
            Event::BlobDeleted { repo, digest, .. } => self.with_repo(repo, |r| {
                r.blobs.remove(digest);
            }),
            Event::AccountCreated {
                account_id,
                account,
            } => {
                let state = self.accounts.entry(account.clone()).or_default();
                state.id = *account_id;
                state.version += 1;
                state.version
            }
            Event::UserCreated {
                user_id,
                account,
                user,
                ..
            } => {
                let account = self.accounts.entry(account.clone()).or_default();
                let state = account.users.entry(user.clone()).or_insert(UserState {
                    id: *user_id,
                    version: 0,
                    keys: HashMap::new(),
                    disabled: false,
                });
                state.version += 1;
                state.version
            }
        }
    }

    /// Folds an event of a user's stream. The account is always loaded
    /// before such a command is decided; an unloaded one is left alone.
    fn with_user(
        &mut self,
        account: &AccountName,
        user: &UserName,
        f: impl FnOnce(&mut UserState),
    ) -> u64 {
        match self
            .accounts
            .get_mut(account)
            .and_then(|a| a.users.get_mut(user))
        {
            Some(state) => {
                f(state);
                state.version += 1;
                state.version
            }
            None => 0,
        }
    }

    fn with_repo(&mut self, repo: &RepoPath, f: impl FnOnce(&mut RepoState)) -> u64 {
        let state = self.repos.entry(repo.clone()).or_default();
        f(state);
        state.version += 1;
        state.version
    }
}
