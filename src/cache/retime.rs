//! `set_ttl`: a live entry's deadline changed in place of the whole entry.
//!
//! A node's TTL deadline is immutable once published (readers load it with no
//! synchronisation, and the wheel files the node by it), so a new deadline comes with a
//! new node: the same key and value (clones: for an `Arc` value, the same allocation),
//! swapped in by compare-and-swap against the node seen, as `compute` does. The swap is
//! not a departure: the listener hears nothing and no counter moves, and the old node is
//! retired as a replaced one is. If the entry changed or left meanwhile, it looks again.

use super::departures::Departures;
use super::expiry::Deadline;
use super::read::Look;
use super::Inner;
use crate::entry::RemovalCause;
use crate::stats::Event;
use crate::table::Insert;
use crossbeam_epoch as epoch;
use equivalent::Equivalent;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// See [`Cache::set_ttl`](super::Cache::set_ttl).
    pub(super) fn set_ttl<Q>(&self, key: &Q, ttl: Duration) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let (hash, index) = self.locate(key);
        let segment = &self.segments[index];
        loop {
            let reading = self.ticker.read();
            let now = reading.tick();
            // Declared before the pin, so dropped (and delivered) after it.
            let mut out = Departures::new(self, index);
            let mut unused = None;
            let done = {
                let guard = epoch::pin();
                let Some(seen) = self.find(hash, index, key, &guard, Look::Peek) else {
                    return false;
                };
                if ttl.is_zero() {
                    // As `insert_with_ttl` with a zero TTL: the entry leaves as `Expired`.
                    let gone = segment.table.remove_node(&seen, &guard);
                    if gone {
                        self.stats.record(Event::Expiration);
                        self.departed_by_caller(index, seen, RemovalCause::Expired, now, &mut out);
                        self.turn_pinned(index, now, &guard, &mut out);
                    }
                    gone
                } else {
                    // User code (`Clone`) runs pinned here; a panic changes nothing.
                    let (k, v) = (seen.key.clone(), seen.value.clone());
                    let weight = seen.weight();
                    let deadline = Deadline::ttl(Self::deadline(Some(ttl), reading));
                    let node = self.node(hash, k, v, deadline, reading, weight);
                    let charge = self.limits.charge_guard(weight);
                    let keep = |existing: crate::entry::node::NodePtr<'_, K, V>| {
                        existing.as_ptr() != seen.as_ptr()
                    };
                    let inserted =
                        segment
                            .table
                            .insert_when(node, |a, b| a == b, keep, false, &guard);
                    match inserted {
                        Insert::Replaced { old, new } => {
                            charge.keep();
                            // Not a departure: no listener, no counter.
                            segment.removed(old, false);
                            segment.linked(new);
                            self.turn_pinned(index, now, &guard, &mut out);
                            true
                        }
                        Insert::New(_) => unreachable!("a replacement only: vacant is refused"),
                        Insert::Kept { unused: n, .. }
                        | Insert::Vacant { unused: n }
                        | Insert::Full { unused: n } => {
                            drop(charge);
                            unused = Some(n.into_parts());
                            false
                        }
                    }
                }
            };
            // The spare clones are dropped unpinned, as every value is.
            drop(unused);
            out.finish();
            if done {
                return true;
            }
        }
    }
}
