//! Leases: what an operation in progress (a pull, a load) has stored but not yet made part of
//! an image. Garbage collection keeps every leased blob and layer, so `rmi` running beside a
//! pull cannot delete what the pull is about to use. Leases live in memory only: after a
//! crash nothing is in progress, and what was left stays until the next collection (which is
//! what lets an interrupted pull resume with the blobs it had finished).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use berth_reference::Digest;

use crate::{lock, Engine};

#[derive(Default)]
pub(crate) struct Leases {
    next: u64,
    held: HashMap<u64, HashSet<Digest>>,
}

impl Leases {
    /// Every digest some lease holds (blobs and chain IDs alike: they never collide).
    pub fn all(&self) -> HashSet<Digest> {
        self.held.values().flatten().cloned().collect()
    }
}

/// Held digests are released when the lease is dropped.
pub(crate) struct Lease {
    id: u64,
    leases: Arc<Mutex<Leases>>,
}

impl Lease {
    pub fn hold(&self, d: &Digest) {
        lock(&self.leases)
            .held
            .entry(self.id)
            .or_default()
            .insert(d.clone());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        lock(&self.leases).held.remove(&self.id);
    }
}

impl Engine {
    pub(crate) fn lease(&self) -> Lease {
        let mut l = lock(&self.inner.leases);
        l.next += 1;
        let id = l.next;
        l.held.insert(id, HashSet::new());
        Lease {
            id,
            leases: self.inner.leases.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_a_lease_releases_its_digests() {
        let leases = Arc::new(Mutex::new(Leases::default()));
        let d = Digest::sha256_of(b"x");
        let lease = Lease {
            id: 1,
            leases: leases.clone(),
        };
        lease.hold(&d);
        assert!(lock(&leases).all().contains(&d));
        drop(lease);
        assert!(lock(&leases).all().is_empty());
    }
}
