//! The `Idempotency-Key`s of the last 24 hours: for each caller's key, the
//! event that recorded it. The fingerprint and the answer stay in the log;
//! this index only finds them, so that a retry is answered from the log.

use berth_store::{Batch, EventLog, KeyScope, Recorded, StoreError, Table, KEY_MEMORY};
use chrono::{DateTime, Utc};

/// The request-keys read model.
#[derive(Clone)]
pub struct RequestKeys {
    /// Caller and key → the recording event's sequence and time.
    pub(crate) rows: Table,
    /// Time ‖ caller and key, for expiry in time order.
    pub(crate) by_time: Table,
}

/// `len ‖ account ‖ len ‖ user ‖ key`: lengths keep the parts apart
/// whatever they hold.
fn scope_key(scope: &KeyScope) -> Vec<u8> {
    let mut k = Vec::new();
    for part in [&scope.account, &scope.user] {
        let part = part.as_deref().unwrap_or_default().as_bytes();
        k.extend_from_slice(&(part.len() as u16).to_be_bytes());
        k.extend_from_slice(part);
    }
    k.extend_from_slice(scope.key.as_bytes());
    k
}

/// Microseconds since the epoch, ordered as bytes when big-endian: times
/// in the log are never before 1970, so the sign bit never flips order.
fn time_bytes(at: DateTime<Utc>) -> [u8; 8] {
    at.timestamp_micros().max(0).to_be_bytes()
}

impl RequestKeys {
    pub(crate) fn open(log: &EventLog) -> Result<Self, StoreError> {
        Ok(Self {
            rows: log.table("p_request_keys")?,
            by_time: log.table("p_request_keys_by_time")?,
        })
    }

    /// Records the key an event carries, and forgets the keys that have
    /// aged out by the event's time. Expiry follows the log's own times,
    /// so a rebuild forgets exactly what the live node forgot.
    pub(crate) fn apply(&self, batch: &mut Batch, rec: &Recorded) -> Result<(), StoreError> {
        let Some(keyed) = &rec.envelope.keyed else {
            return Ok(());
        };
        let at = rec.envelope.occurred_at;
        for old in batch.keys_below(&self.by_time, &time_bytes(at - KEY_MEMORY))? {
            batch.remove(&self.rows, old.get(8..).unwrap_or_default());
            batch.remove(&self.by_time, old);
        }
        let scope = scope_key(&KeyScope::of(&rec.envelope.actor, &keyed.key));
        // A key reused after it aged out (but before a later key expired
        // it) replaces its old entry.
        if let Some(old) = batch.get(&self.rows, &scope)? {
            let mut old_time = old.get(8..16).unwrap_or_default().to_vec();
            old_time.extend_from_slice(&scope);
            batch.remove(&self.by_time, old_time);
        }
        let mut row = rec.seq.to_be_bytes().to_vec();
        row.extend_from_slice(&time_bytes(at));
        batch.insert(&self.rows, &scope, row);
        let mut by_time = time_bytes(at).to_vec();
        by_time.extend_from_slice(&scope);
        batch.insert(&self.by_time, by_time, []);
        Ok(())
    }

    /// The sequence number of the event that recorded `scope`'s key, if it
    /// was recorded less than 24 hours before `now`.
    pub fn remembered(
        &self,
        scope: &KeyScope,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        let Some(row) = self.rows.get(scope_key(scope))? else {
            return Ok(None);
        };
        let field = |range: std::ops::Range<usize>| {
            row.get(range)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .ok_or_else(|| StoreError::RowDamaged("request key row is short".into()))
        };
        let seq = u64::from_be_bytes(field(0..8)?);
        let at = i64::from_be_bytes(field(8..16)?);
        let fresh = DateTime::from_timestamp_micros(at).is_some_and(|at| at + KEY_MEMORY > now);
        Ok(fresh.then_some(seq))
    }
}

#[cfg(test)]
mod tests {
    use berth_domain::{Actor, Event, OrgName};
    use berth_store::{Envelope, Keyed, SCHEMA_VERSION};
    use chrono::TimeDelta;
    use uuid::Uuid;

    use super::*;

    fn keyed_at(seq: u64, key: &str, at: DateTime<Utc>) -> Recorded {
        let event = Event::OrgCreated {
            org_id: Uuid::from_u128(seq.into()),
            org: OrgName::parse("acme").unwrap(),
            auto: false,
        };
        Recorded {
            seq,
            envelope: Envelope {
                schema: SCHEMA_VERSION,
                event_type: event.kind().into(),
                stream: event.stream_id(),
                stream_version: 1,
                occurred_at: at,
                actor: Actor::system(),
                request_id: Uuid::from_u128(seq.into()),
                prev_hash: [0; 32],
                payload: Vec::new(),
                keyed: Some(Keyed {
                    key: key.into(),
                    fingerprint: [0; 32],
                    answer: Vec::new(),
                }),
            },
            event,
        }
    }

    fn rows(keys: &RequestKeys) -> Vec<Vec<u8>> {
        keys.rows
            .iter()
            .chain(keys.by_time.iter())
            .map(|r| r.unwrap().0.to_vec())
            .collect()
    }

    /// Keys age out by the log's own times, the same whether each event
    /// was its own batch (live) or all were one (a rebuild).
    #[test]
    fn keys_age_out_alike_live_and_rebuilt() {
        let t0 = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let history = [
            keyed_at(1, "a", t0),
            keyed_at(2, "b", t0 + TimeDelta::hours(1)),
            keyed_at(3, "a", t0 + TimeDelta::hours(2)),
            keyed_at(4, "c", t0 + TimeDelta::hours(26)),
        ];
        let (live_dir, rebuilt_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (live_log, rebuilt_log) = (
            EventLog::open(live_dir.path()).unwrap(),
            EventLog::open(rebuilt_dir.path()).unwrap(),
        );
        let (live, rebuilt) = (
            RequestKeys::open(&live_log).unwrap(),
            RequestKeys::open(&rebuilt_log).unwrap(),
        );
        let mut one = rebuilt_log.batch();
        for rec in &history {
            let mut batch = live_log.batch();
            live.apply(&mut batch, rec).unwrap();
            live_log.commit(batch).unwrap();
            rebuilt.apply(&mut one, rec).unwrap();
        }
        rebuilt_log.commit(one).unwrap();
        assert_eq!(rows(&live), rows(&rebuilt));

        let scope = |key: &str| KeyScope::of(&Actor::system(), key);
        let now = t0 + TimeDelta::hours(26);
        // "a" was used again at 2 h: that use ages out at 26 h exactly.
        assert_eq!(live.remembered(&scope("a"), now).unwrap(), None);
        assert_eq!(live.remembered(&scope("b"), now).unwrap(), None);
        assert_eq!(live.remembered(&scope("c"), now).unwrap(), Some(4));
        let before = t0 + TimeDelta::hours(25);
        assert_eq!(live.remembered(&scope("a"), before).unwrap(), Some(3));
        // "b" (1 h) and the first "a" (0 h) are gone from both tables.
        assert_eq!(live.rows.iter().count(), 2);
        assert_eq!(live.by_time.iter().count(), 2);
    }
}
