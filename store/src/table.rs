//! Tables and batches: the store's own face over fjall keyspaces, so read
//! models keep rows in the log's database (one atomic batch covers events
//! and rows) without fjall types leaving this crate. Rows come back as
//! [`Bytes`].

use std::ops::RangeBounds;

use bytes::Bytes;
use fjall::{Keyspace, OwnedWriteBatch};

use crate::error::StoreError;

/// One keyspace of rows, ordered by key.
#[derive(Clone)]
pub struct Table(pub(crate) Keyspace);

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
        Ok(self.0.get(key)?.map(|v| Bytes::copy_from_slice(&v)))
    }

    /// Whether `key` holds a value.
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(self.0.contains_key(key)?)
    }

    /// Every row whose key starts with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Rows<'_> {
        rows(self.0.prefix(prefix))
    }

    /// Every row whose key lies in `range`.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Rows<'_> {
        rows(self.0.range(range))
    }

    /// Every row.
    pub fn iter(&self) -> Rows<'_> {
        rows(self.0.iter())
    }

    /// Removes every row (a read-model rebuild starts from nothing).
    pub fn clear(&self) -> Result<(), StoreError> {
        Ok(self.0.clear()?)
    }
}

/// Writes gathered for one atomic commit: the writer's events and every
/// read model's rows go into the same batch.
pub struct Batch(pub(crate) OwnedWriteBatch);

impl Batch {
    /// Sets `key` in `table`.
    pub fn insert(&mut self, table: &Table, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.0.insert(&table.0, key.as_ref(), value.as_ref());
    }

    /// Removes `key` from `table`.
    pub fn remove(&mut self, table: &Table, key: impl AsRef<[u8]>) {
        self.0.remove(&table.0, key.as_ref());
    }
}
