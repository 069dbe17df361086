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
use super::read::Look;
use super::Inner;
use crate::clock::Reading;
use crate::entry::node::NodePtr;
use crate::entry::RemovalCause;
use crate::table::Insert;
use crossbeam_epoch::{self as epoch, Guard};
use std::any::Any;
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

/// How one attempt at a `Put` ended (see [`Inner::compute_put`]); the caller ends its pin
/// and then acts on it.
enum Step<K, V> {
    /// Done: the departures are delivered when the operation's `Departures` drops.
    Done(Computed),
    /// Not stored (see [`Computed::Refused`]): `replaced` if a live entry was removed.
    Refused {
        key: K,
        value: V,
        cause: RemovalCause,
        replaced: bool,
    },
    /// Another write got there first: ask the closure again.
    Retry { key: K, value: V },
    /// The weigher or the policy panicked: drop the value unpinned and resume.
    Panicked(Box<dyn Any + Send>, V),
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
        let mut key = key;
        loop {
            let reading = self.ticker.read();
            // Declared before the pin, so dropped after it (also when `f` panics).
            let mut out = Departures::new(self, index);
            let guard = epoch::pin();
            let seen = self.find(hash, index, &key, &guard, Look::Peek);
            let value = match f(seen.map(|n| &n.get().value), &mut spare) {
                Op::Nop if seen.is_some() => return Computed::Unchanged,
                Op::Nop => return Computed::StillNone,
                Op::Remove => {
                    let Some(node) = seen else {
                        return Computed::StillNone;
                    };
                    if !self.segments[index].table.remove_node(&node, &guard) {
                        continue; // removed or replaced meanwhile: look again
                    }
                    let now = reading.tick();
                    self.departed_by_caller(index, node, RemovalCause::Explicit, now, &mut out);
                    self.turn_pinned(index, now, &guard, &mut out);
                    drop(guard);
                    out.finish();
                    return Computed::Removed;
                }
                Op::Put(value) => value,
            };
            let step = self.compute_put((hash, index), key, value, seen, reading, &guard, &mut out);
            drop(guard);
            match step {
                Step::Done(done) => return done,
                Step::Refused {
                    key,
                    value,
                    cause,
                    replaced,
                } => {
                    self.unstored(hash, key, value, cause, replaced, out);
                    return Computed::Refused;
                }
                Step::Retry { key: k, value } => {
                    // The value waits in `spare`, and is dropped unpinned if nobody takes it.
                    key = k;
                    spare = Some(value);
                }
                Step::Panicked(panic, value) => {
                    drop(value);
                    resume_unwind(panic);
                }
            }
        }
    }

    /// A `Put` the admission refused as `cause`. Still a write of the entry seen: that one
    /// leaves (`Replaced`) and the value goes to the listener unstored. If it changed
    /// meanwhile, ask again; if none was seen, nothing is removed (one there now is lapsed
    /// or newer).
    #[allow(clippy::too_many_arguments)]
    fn compute_refused(
        &self,
        (index, now): (usize, u64),
        key: K,
        value: V,
        cause: RemovalCause,
        seen: Option<NodePtr<'_, K, V>>,
        guard: &Guard,
        out: &mut Departures<'_, K, V, S>,
    ) -> Step<K, V> {
        let replaced = match seen {
            Some(node) if !self.segments[index].table.remove_node(&node, guard) => {
                return Step::Retry { key, value };
            }
            Some(node) => {
                let live = RemovalCause::Replaced;
                self.departed_by_caller(index, node, live, now, out) == live
            }
            None => false,
        };
        self.turn_pinned(index, now, guard, out);
        Step::Refused {
            key,
            value,
            cause,
            replaced,
        }
    }

    /// One attempt at storing `value` in place of `seen` (pinned by `guard`): admitted or
    /// not, then swapped in if the entry is still the one seen.
    #[allow(clippy::too_many_arguments)]
    fn compute_put(
        &self,
        (hash, index): (u64, usize),
        key: K,
        value: V,
        seen: Option<NodePtr<'_, K, V>>,
        reading: Reading,
        guard: &Guard,
        out: &mut Departures<'_, K, V, S>,
    ) -> Step<K, V> {
        let now = reading.tick();
        let segment = &self.segments[index];
        // The weigher and the policy (user code) run here, pinned; if one panics, the
        // value is dropped after the pin, as every value is.
        let admitted = catch_unwind(AssertUnwindSafe(|| {
            self.admit(&key, &value, self.ttl, seen, reading, true)
        }));
        let (deadline, weight) = match admitted {
            Ok(Ok(admitted)) => admitted,
            Ok(Err(cause)) => {
                return self.compute_refused((index, now), key, value, cause, seen, guard, out)
            }
            Err(panic) => return Step::Panicked(panic, value),
        };
        let node = self.node(hash, key, value, deadline, reading, weight);
        let charge = self.limits.charge_guard(weight);
        let expected = seen.map(NodePtr::as_ptr);
        let keep = |existing: NodePtr<'_, K, V>| match expected {
            Some(x) => existing.as_ptr() != x,
            // None was seen: an entry that lapsed may be replaced, a live one may not.
            None => !self.expired_at(&existing, now),
        };
        let vacant_ok = expected.is_none();
        let inserted = segment
            .table
            .insert_when(node, |a, b| a == b, keep, vacant_ok, guard);
        let done = match inserted {
            Insert::New(new) => {
                charge.keep();
                self.linked_new(segment, new);
                Computed::Inserted
            }
            Insert::Replaced { old, new } => {
                charge.keep();
                self.linked_over(index, old, new, now, out);
                if vacant_ok {
                    Computed::Inserted
                } else {
                    Computed::Updated
                }
            }
            Insert::Full { unused } => {
                // No room for the key's hash (see `Insert::Full`): refused like a value
                // heavier than the bound. The key was absent: nothing was replaced.
                drop(charge);
                self.turn_pinned(index, now, guard, out);
                let (key, value) = unused.into_parts();
                let cause = RemovalCause::Evicted;
                return Step::Refused {
                    key,
                    value,
                    cause,
                    replaced: false,
                };
            }
            Insert::Kept { unused, .. } | Insert::Vacant { unused } => {
                // Another write won: take the key back and ask again.
                drop(charge);
                let (key, value) = unused.into_parts();
                return Step::Retry { key, value };
            }
        };
        self.turn_pinned(index, now, guard, out);
        Step::Done(done)
    }
}
