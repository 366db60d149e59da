//! Leases for the singletons of a cluster: scheduled garbage collection and
//! scheduled checkpoints run on one node at a time. A node takes a lease
//! and keeps it while it lives; the others find it held and stand by, and
//! take it over when its holder dies. A node alone holds every lease.

use crate::error::StoreError;

/// What keeps a lease: dropping it gives the lease up.
pub trait Hold: Send + 'static {
    /// Whether the lease is still held (the connection holding it may have
    /// been lost, and with it the lease). Blocks.
    fn alive(&mut self) -> bool;
}

/// A lease, held until it is dropped.
pub struct Lease(Box<dyn Hold>);

impl Lease {
    /// A lease kept by `hold`.
    pub fn new(hold: impl Hold) -> Self {
        Self(Box::new(hold))
    }

    /// Whether it is still held. Blocks.
    pub fn alive(&mut self) -> bool {
        self.0.alive()
    }
}

/// Where leases come from.
pub trait Leases: Send + Sync + 'static {
    /// The lease called `name` if no other node holds it now; `None` if
    /// another does. Blocks: call it off the async workers.
    fn try_take(&self, name: &str) -> Result<Option<Lease>, StoreError>;
}

/// A node alone: every lease is its own, for good.
pub struct Alone;

struct Forever;

impl Hold for Forever {
    fn alive(&mut self) -> bool {
        true
    }
}

impl Leases for Alone {
    fn try_take(&self, _name: &str) -> Result<Option<Lease>, StoreError> {
        Ok(Some(Lease::new(Forever)))
    }
}
