//! Organizations by name: existence, id, and how they were created.

use berth_domain::{Event, OrgName, OrgState};
use berth_store::{Recorded, StoreError};
use chrono::{DateTime, Utc};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{decode, encode};

/// An organization row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRow {
    /// Stream id.
    pub id: Uuid,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Whether a push created it.
    pub auto: bool,
}

/// The organizations read model.
#[derive(Clone)]
pub struct Orgs {
    pub(crate) rows: Keyspace,
}

impl Orgs {
    pub(crate) fn open(db: &Database) -> Result<Self, StoreError> {
        Ok(Self {
            rows: db.keyspace("p_orgs", KeyspaceCreateOptions::default)?,
        })
    }

    pub(crate) fn apply(&self, batch: &mut OwnedWriteBatch, rec: &Recorded) {
        if let Event::OrgCreated { org_id, org, auto } = &rec.event {
            let row = OrgRow {
                id: *org_id,
                created_at: rec.envelope.occurred_at,
                auto: *auto,
            };
            batch.insert(&self.rows, org.as_str(), encode(&row));
        }
    }

    /// One organization.
    pub fn get(&self, name: &OrgName) -> Result<Option<OrgRow>, StoreError> {
        self.rows
            .get(name.as_str())?
            .map(|v| decode(&v))
            .transpose()
    }

    pub(crate) fn load(&self, name: &OrgName) -> Result<Option<OrgState>, StoreError> {
        Ok(self.get(name)?.map(|row| OrgState {
            id: row.id,
            version: 0,
        }))
    }
}
