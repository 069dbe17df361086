//! `compute`: an atomic read-modify-write of one key, by compare-and-swap of the entry.
//!
//! Pinned, the caller finds the key's live entry (or none), shows it to the closure, and
//! applies the closure's [`Op`] only if the entry is still the one it saw: a `Put` goes in
//! through `Table::insert_when` with `keep` refusing every entry but the one seen (and
//! refusing to fill a vacant key unless none was seen), a `Remove` takes out that very
//! node (`Table::remove_node`). If another write got there first, the closure runs again on
//! what is there now. The pin lasts from the read to the swap, so the entry seen cannot be
//! freed and its address reused in between: comparing nodes by address is exact.
//!
//! Lock-free like every other write (papaya's `compute` works the same way; moka's
//! `and_compute_with` takes a per-key lock instead), so under contention the closure may
//! run more than once, and it runs pinned: it must be short and must not block.

use super::departures::Departures;
use super::{Deadline, Inner};
use crate::entry::node::NodePtr;
use crate::entry::RemovalCause;
use crate::table::Insert;
use crossbeam_epoch as epoch;
use std::hash::{BuildHasher, Hash};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// What a [`Cache::compute`](super::Cache::compute) closure asks for (moka's `compute::Op`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<V> {
    /// Leave the entry (or its absence) as it is.
    Nop,
    /// Store this value under the key, with the cache's default TTL (or the earlier
    /// deadline an [`Expiry`](crate::Expiry) policy gives it).
    Put(V),
    /// Remove the entry (heard by the listener as `Explicit`).
    Remove,
}

/// What a [`Cache::compute`](super::Cache::compute) call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Computed {
    /// There was no live entry; the closure's value was stored.
    Inserted,
    /// The live entry was replaced by the closure's value.
    Updated,
    /// The live entry was removed.
    Removed,
    /// There was a live entry and the closure left it (`Op::Nop`).
    Unchanged,
    /// There was no live entry and none was stored (`Op::Nop` or `Op::Remove`).
    StillNone,
    /// The closure's value was not stored because the cache refuses it (a zero TTL,
    /// time-to-idle or policy answer, heavier than the whole bound, or a key whose hash
    /// over 65,000 others in its segment share, see [`CacheBuilder::hasher`](crate::CacheBuilder::hasher)): the entry the
    /// closure saw, if any, was removed (`Replaced`), and the value went to the listener
    /// as `Expired` or `Evicted`.
    Refused,
}

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    pub(super) fn compute(&self, key: K, mut f: impl FnMut(Option<&V>) -> Op<V>) -> Computed {
        self.compute_with(key, None, |seen, _| f(seen))
    }

    /// `compute`, with a value kept across attempts: `spare` starts as given, the closure
    /// may take it, and a value a lost race hands back goes there again (so `insert` with a
    /// policy can retry with its one value). What is left in it is dropped unpinned.
    pub(super) fn compute_with(
        &self,
        key: K,
        mut spare: Option<V>,
        mut f: impl FnMut(Option<&V>, &mut Option<V>) -> Op<V>,
    ) -> Computed {
        let (hash, index) = self.locate(&key);
        let segment = &self.segments[index];
        let mut key = key;
        loop {
            let reading = self.ticker.read();
            let now = reading.tick();
            // Declared before the pin, so dropped after it (also when `f` panics).
            let mut out = Departures::new(self, index);
            let guard = epoch::pin();
            let seen = self.find(hash, index, &key, &guard, false, false);
            let value = match f(seen.map(|n| &n.get().value), &mut spare) {
                Op::Nop => {
                    return if seen.is_some() {
                        Computed::Unchanged
                    } else {
                        Computed::StillNone
                    }
                }
                Op::Remove => {
                    let Some(node) = seen else {
                        return Computed::StillNone;
                    };
                    if !segment.table.remove_node(&node, &guard) {
                        continue; // removed or replaced meanwhile: look again
                    }
                    self.departed_by_caller(index, node, RemovalCause::Explicit, now, &mut out);
                    self.turn_pinned(index, now, &guard, &mut out);
                    drop(guard);
                    out.finish();
                    return Computed::Removed;
                }
                Op::Put(value) => value,
            };
            let zero_limit =
                self.ttl.is_some_and(|t| t.is_zero()) || self.tti.is_some_and(|t| t.is_zero());
            // The weigher and the policy (user code) run here, pinned; if one panics, the
            // value is dropped after the pin, as every value is.
            let asked = catch_unwind(AssertUnwindSafe(|| {
                let weight = self.weigh(&key, &value);
                let deadline = if zero_limit {
                    None
                } else {
                    self.write_deadline(&key, &value, seen, reading)
                };
                (weight, deadline)
            }));
            let (weight, deadline) = match asked {
                Ok(asked) => asked,
                Err(panic) => {
                    drop(guard);
                    drop(value);
                    resume_unwind(panic);
                }
            };
            let refused = match deadline {
                None => Some(RemovalCause::Expired),
                Some(_) if self.refused(weight) => Some(RemovalCause::Evicted),
                Some(_) => None,
            };
            if let Some(cause) = refused {
                // Still a write of the entry seen: that one leaves (`Replaced`) and the value
                // goes to the listener unstored. If it changed meanwhile, ask again; if none
                // was seen, nothing is removed (an entry there now is lapsed or newer).
                let replaced = match seen {
                    Some(node) => {
                        if !segment.table.remove_node(&node, &guard) {
                            drop(guard);
                            spare = Some(value);
                            continue;
                        }
                        let live = RemovalCause::Replaced;
                        self.departed_by_caller(index, node, live, now, &mut out) == live
                    }
                    None => false,
                };
                self.turn_pinned(index, now, &guard, &mut out);
                drop(guard);
                self.unstored(hash, key, value, cause, replaced, out);
                return Computed::Refused;
            }
            // Some here: a zero answer was refused above.
            let deadline = deadline.unwrap_or(Deadline::ttl(now));
            let node = self.node(hash, key, value, deadline, reading, weight);
            let charge = self.limits.charge_guard(weight);
            let expected = seen.map(NodePtr::as_ptr);
            let keep = |existing: NodePtr<'_, K, V>| match expected {
                Some(x) => existing.as_ptr() != x,
                // None was seen: an entry that lapsed may be replaced, a live one may not.
                None => !self.expired_at(&existing, now),
            };
            let inserted =
                segment
                    .table
                    .insert_when(node, |a, b| a == b, keep, expected.is_none(), &guard);
            let done = match inserted {
                Insert::New(new) => {
                    charge.keep();
                    self.linked_new(segment, new);
                    Computed::Inserted
                }
                Insert::Replaced { old, new } => {
                    charge.keep();
                    let done = if expected.is_some() {
                        Computed::Updated
                    } else {
                        Computed::Inserted
                    };
                    self.linked_over(index, old, new, now, &mut out);
                    done
                }
                Insert::Full { unused } => {
                    // No room for the key's hash (see `Insert::Full`): refused like a
                    // value heavier than the bound. The key was absent: nothing replaced.
                    drop(charge);
                    self.turn_pinned(index, now, &guard, &mut out);
                    drop(guard);
                    let (key, value) = unused.into_parts();
                    self.unstored(hash, key, value, RemovalCause::Evicted, false, out);
                    return Computed::Refused;
                }
                Insert::Kept { unused, .. } | Insert::Vacant { unused } => {
                    drop(charge);
                    drop(guard);
                    // Another write won: take the key back and ask again (the value
                    // waits in `spare`, and is dropped unpinned if nobody takes it).
                    let (k, v) = unused.into_parts();
                    key = k;
                    spare = Some(v);
                    continue;
                }
            };
            self.turn_pinned(index, now, &guard, &mut out);
            drop(guard);
            out.finish();
            return done;
        }
    }
}
