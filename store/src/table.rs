//! Tables and batches: the store's own face over fjall keyspaces, so read
//! models keep rows in the log's database (one atomic batch covers events
//! and rows) without fjall types leaving this crate. Rows come back as
//! [`Bytes`].

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeBounds;
use std::sync::Arc;

use bytes::Bytes;
use fjall::{Keyspace, OwnedWriteBatch};

use crate::error::StoreError;

/// One keyspace of rows, ordered by key.
#[derive(Clone)]
pub struct Table {
    pub(crate) keyspace: Keyspace,
    pub(crate) name: Arc<str>,
}

/// A key and its value.
pub type Row = (Bytes, Bytes);

/// Rows in key order; a read failure ends the iteration with its error.
pub type Rows<'a> = Box<dyn Iterator<Item = Result<Row, StoreError>> + 'a>;

fn rows<'a, I>(items: I) -> Rows<'a>
where
    I: Iterator<Item = fjall::Guard> + 'a,
{
    Box::new(items.map(|item| {
        let (k, v) = item.into_inner()?;
        Ok((Bytes::copy_from_slice(&k), Bytes::copy_from_slice(&v)))
    }))
}

impl Table {
    /// The value under `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, StoreError> {
        Ok(self.keyspace.get(key)?.map(|v| Bytes::copy_from_slice(&v)))
    }

    /// Whether `key` holds a value.
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(self.keyspace.contains_key(key)?)
    }

    /// Every row whose key starts with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Rows<'_> {
        rows(self.keyspace.prefix(prefix))
    }

    /// Every row whose key lies in `range`.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Rows<'_> {
        rows(self.keyspace.range(range))
    }

    /// Every row whose key starts with `prefix`, last key first.
    pub fn prefix_rev(&self, prefix: impl AsRef<[u8]>) -> Rows<'_> {
        rows(self.keyspace.prefix(prefix).rev())
    }

    /// Every row whose key lies in `range`, last key first.
    pub fn range_rev<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Rows<'_> {
        rows(self.keyspace.range(range).rev())
    }

    /// Every row.
    pub fn iter(&self) -> Rows<'_> {
        rows(self.keyspace.iter())
    }

    /// Removes every row (a read-model rebuild starts from nothing).
    pub fn clear(&self) -> Result<(), StoreError> {
        Ok(self.keyspace.clear()?)
    }
}

/// Writes gathered for one atomic commit: the writer's events and every
/// read model's rows go into the same batch. Row writes are combined (only
/// the last value of each key reaches the database) and reach it in key
/// order, table by table: a memtable takes sorted inserts far faster than
/// scattered ones. A read model that keeps a running figure (a count, a
/// total) reads its row through the batch, so it sees the rows earlier
/// events of the same batch wrote: several commands in one batch never lose
/// an update.
pub struct Batch {
    pub(crate) inner: OwnedWriteBatch,
    /// The latest write of each key of each table.
    pending: HashMap<Arc<str>, (Keyspace, Combined)>,
    /// Rows written once and never read back in the batch, by table.
    appended: HashMap<Arc<str>, (Keyspace, Appended)>,
}

/// Rows of one table written once each, in the order they came.
type Appended = Vec<(Vec<u8>, Bytes)>;

/// The latest write of each key of one table, in key order.
type Combined = BTreeMap<Vec<u8>, Write>;

/// The latest write of one key in a batch.
enum Write {
    /// Set to a value.
    Put(Bytes),
    /// Removed.
    Remove,
    /// Removed after this batch set it: a key that only lived inside the
    /// batch (an index entry that moved twice) needs no tombstone, so the
    /// database is asked at commit whether it holds the key.
    RemoveSet,
}

impl Batch {
    pub(crate) fn new(inner: OwnedWriteBatch) -> Self {
        Self {
            inner,
            pending: HashMap::new(),
            appended: HashMap::new(),
        }
    }

    /// Adds a row that nothing else in this batch writes or reads (an
    /// index entry keyed by its event's sequence number): it skips the
    /// combining map, and is sorted with its table's others at commit.
    pub fn append(&mut self, table: &Table, key: Vec<u8>, value: impl AsRef<[u8]>) {
        let (_, rows) = self
            .appended
            .entry(table.name.clone())
            .or_insert_with(|| (table.keyspace.clone(), Vec::new()));
        rows.push((key, Bytes::copy_from_slice(value.as_ref())));
    }

    fn rows(&mut self, table: &Table) -> &mut Combined {
        &mut self
            .pending
            .entry(table.name.clone())
            .or_insert_with(|| (table.keyspace.clone(), BTreeMap::new()))
            .1
    }

    /// Sets `key` in `table`.
    pub fn insert(&mut self, table: &Table, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let value = Bytes::copy_from_slice(value.as_ref());
        self.rows(table)
            .insert(key.as_ref().to_vec(), Write::Put(value));
    }

    /// Removes `key` from `table`.
    pub fn remove(&mut self, table: &Table, key: impl AsRef<[u8]>) {
        let rows = self.rows(table);
        match rows.get_mut(key.as_ref()) {
            Some(w @ Write::Put(_)) => *w = Write::RemoveSet,
            Some(_) => {}
            None => {
                rows.insert(key.as_ref().to_vec(), Write::Remove);
            }
        }
    }

    /// The value under `key` as this batch leaves it: its own write if it
    /// made one, else the committed value.
    pub fn get(&self, table: &Table, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, StoreError> {
        let key = key.as_ref();
        match self
            .pending
            .get(&*table.name)
            .and_then(|(_, rows)| rows.get(key))
        {
            Some(Write::Put(v)) => Ok(Some(v.clone())),
            Some(Write::Remove | Write::RemoveSet) => Ok(None),
            None => table.get(key),
        }
    }

    /// The keys of `table` below `end` as this batch leaves them: the
    /// committed ones it did not remove, and those it set. A read model
    /// that expires rows by age sees the same rows whether the events that
    /// wrote them were committed one batch each (live) or in one long
    /// batch (a rebuild).
    pub fn keys_below(&self, table: &Table, end: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let pending = self.pending.get(&*table.name).map(|(_, rows)| rows);
        let mut keys = std::collections::BTreeSet::new();
        for row in table.range(..end) {
            let (key, _) = row?;
            if !matches!(
                pending.and_then(|rows| rows.get(key.as_ref())),
                Some(Write::Remove | Write::RemoveSet)
            ) {
                keys.insert(key.to_vec());
            }
        }
        if let Some(rows) = pending {
            for (key, write) in
                rows.range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Excluded(end)))
            {
                if matches!(write, Write::Put(_)) {
                    keys.insert(key.clone());
                }
            }
        }
        Ok(keys.into_iter().collect())
    }

    /// The database batch with every combined write in it, to commit.
    pub(crate) fn into_writes(mut self) -> Result<OwnedWriteBatch, StoreError> {
        for (_, (keyspace, mut rows)) in self.appended.drain() {
            rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (key, value) in rows {
                self.inner.insert(&keyspace, key, value.as_ref());
            }
        }
        for (_, (keyspace, rows)) in self.pending.drain() {
            for (key, value) in rows {
                match value {
                    Write::Put(v) => self.inner.insert(&keyspace, key, v.as_ref()),
                    Write::RemoveSet if !keyspace.contains_key(&key)? => {}
                    Write::Remove | Write::RemoveSet => self.inner.remove(&keyspace, key),
                }
            }
        }
        Ok(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use crate::EventLog;

    #[test]
    fn a_key_set_then_removed_in_one_batch_is_gone_whether_or_not_it_was_stored() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        let table = log.table("t").unwrap();
        let mut batch = log.batch();
        batch.insert(&table, b"stored", b"1");
        log.commit(batch).unwrap();

        let mut batch = log.batch();
        for key in [&b"stored"[..], b"fresh"] {
            batch.insert(&table, key, b"2");
            batch.remove(&table, key);
            assert_eq!(batch.get(&table, key).unwrap(), None);
        }
        log.commit(batch).unwrap();
        assert_eq!(table.get(b"stored").unwrap(), None);
        assert_eq!(table.get(b"fresh").unwrap(), None);
        assert_eq!(table.iter().count(), 0);
    }

    #[test]
    fn keys_below_an_end_are_read_through_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        let table = log.table("t").unwrap();
        let mut batch = log.batch();
        for key in [&b"a"[..], b"b", b"x"] {
            batch.insert(&table, key, b"");
        }
        log.commit(batch).unwrap();

        let mut batch = log.batch();
        batch.remove(&table, b"a");
        batch.insert(&table, b"c", b"");
        batch.insert(&table, b"d", b"");
        batch.remove(&table, b"d");
        batch.insert(&table, b"y", b"");
        assert_eq!(
            batch.keys_below(&table, b"m").unwrap(),
            vec![b"b".to_vec(), b"c".to_vec()]
        );
    }
}
