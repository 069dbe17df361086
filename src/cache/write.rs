//! The write path: building a node, storing it (or not), removing, and the remover's
//! duties in the pinned phase.

use super::expiry::Deadline;
use super::Inner;
use crate::clock::{Reading, NEVER};
use crate::entry::departure::Held;
use crate::entry::node::{ExtInit, NodeBox, NodePtr, DETACHED, REMOVED, UNLINKED};
use crate::entry::RemovalCause;
use crate::segment::Segment;
use crate::stats::Event;
use crate::sync::{self};
use crate::table::Insert;
use crossbeam_epoch::{self as epoch};
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    pub(super) fn deadline(ttl: Option<Duration>, now: Reading) -> u64 {
        ttl.map_or(NEVER, |t| now.deadline_after(t))
    }

    /// The weight of an entry about to be stored (runs the weigher: call unpinned).
    pub(super) fn weigh(&self, key: &K, value: &V) -> u32 {
        self.weigher.as_ref().map_or(1, |w| w(key, value))
    }

    /// A node for an entry written at `reading`, with an extension when the cache needs
    /// one, and a timer when the write asked the expiry policy.
    pub(super) fn node(
        &self,
        hash: u64,
        key: K,
        value: V,
        deadline: Deadline,
        reading: Reading,
        weight: u32,
    ) -> NodeBox<K, V> {
        let timer = deadline.policy.map(|p| (p, reading.nanos()));
        let ext = (self.limits.extended() || timer.is_some()).then_some(ExtInit {
            idle: reading.tick(),
            weight,
            timer,
        });
        NodeBox::new(hash, key, value, deadline.ttl, ext)
    }

    /// Whether an entry of `weight` is refused outright (heavier than the whole bound).
    pub(super) fn refused(&self, weight: u32) -> bool {
        u64::from(weight) > self.limits.max
    }

    pub(super) fn put(&self, key: K, value: V, ttl: Option<Duration>) {
        let now = self.ticker.read();
        if ttl.is_some_and(|t| t.is_zero()) || self.tti.is_some_and(|t| t.is_zero()) {
            return self.put_expired(key, value, now.tick(), RemovalCause::Expired);
        }
        let weight = self.weigh(&key, &value);
        if self.refused(weight) {
            return self.put_expired(key, value, now.tick(), RemovalCause::Evicted);
        }
        let (hash, index) = self.locate(&key);
        let segment = &self.segments[index];
        let mut fired = Vec::new();
        let node = self.node(
            hash,
            key,
            value,
            Deadline::ttl(Self::deadline(ttl, now)),
            now,
            weight,
        );
        let charge = self.limits.charge_guard(weight);
        let (departed, full, turned) = {
            let guard = epoch::pin();
            let inserted = segment.table.insert(node, |a, b| a == b, |_| false, &guard);
            let (departed, full) = match inserted {
                Insert::New(new) => {
                    charge.keep();
                    self.linked_new(segment, new);
                    (None, None)
                }
                Insert::Replaced { old, new } => {
                    charge.keep();
                    (self.linked_over(index, old, new, now.tick()), None)
                }
                Insert::Full { unused } => {
                    drop(charge);
                    (None, Some(unused))
                }
                Insert::Kept { .. } | Insert::Vacant { .. } => {
                    unreachable!("`keep` refused every existing entry, and vacant keys are taken")
                }
            };
            (
                departed,
                full,
                self.turn_pinned(index, now.tick(), &guard, &mut fired),
            )
        };
        if let Some(unused) = full {
            // No room for the key's hash (see `Insert::Full`): refused like a value
            // heavier than the bound. The key was absent, so nothing was replaced.
            let (key, value) = unused.into_parts();
            let cause = RemovalCause::Evicted;
            return self.unstored(hash, index, key, value, cause, None, fired, turned);
        }
        self.after_write(index, departed.into_iter().chain(fired), turned);
    }

    /// An entry that is not stored (a zero TTL or TTI: `Expired`; heavier than the bound:
    /// `Evicted`): remove what is there, and hand the value straight to the listener.
    pub(super) fn put_expired(&self, key: K, value: V, now: u64, cause: RemovalCause) {
        let (hash, index) = self.locate(&key);
        let segment = &self.segments[index];
        let mut fired = Vec::new();
        let (old, turned) = {
            let guard = epoch::pin();
            let old = segment
                .table
                .remove(hash, |n| n.key == key, &guard)
                .map(|old| self.departed_by_caller(index, old, RemovalCause::Replaced, now));
            (old, self.turn_pinned(index, now, &guard, &mut fired))
        };
        self.unstored(hash, index, key, value, cause, old, fired, turned);
    }

    /// The unpinned end of a write whose value is not stored: counts it (an update if it
    /// replaced a live entry, `old`), hands the value to the listener as `cause` with the
    /// other departures, and finishes the write.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn unstored(
        &self,
        hash: u64,
        index: usize,
        key: K,
        value: V,
        cause: RemovalCause,
        old: Option<(RemovalCause, Option<Held<K, V>>)>,
        fired: Vec<Held<K, V>>,
        turned: bool,
    ) {
        self.stats.record(
            if old
                .as_ref()
                .is_some_and(|(cause, _)| *cause == RemovalCause::Replaced)
            {
                Event::Update
            } else {
                Event::Insert
            },
        );
        self.stats.record(if cause == RemovalCause::Evicted {
            Event::Eviction
        } else {
            Event::Expiration
        });
        // The value was never stored: it leaves as a node that only its remover holds
        // (never linked, never scheduled), so it is told like any departure, and freed
        // through the reclamation like any node.
        let never_stored = self.notifier.wants().then(|| {
            let node = NodeBox::new(hash, key, value, NEVER, None);
            node.meta
                .fetch_or(REMOVED | UNLINKED | DETACHED, sync::Ordering::Relaxed);
            // SAFETY: from `NodeBox::into_raw`, alive until retired; this thread is its
            // only holder (its remover) and has not set RELEASED.
            unsafe { Held::new(NodePtr::from_raw(node.into_raw()), cause, index) }
        });
        let old = old.and_then(|(_, held)| held);
        let departed = old.into_iter().chain(never_stored).chain(fired);
        self.after_write(index, departed, turned);
    }

    /// Bookkeeping after linking a node under a new key (pinned phase).
    pub(super) fn linked_new(&self, segment: &Segment<K, V>, new: NodePtr<'_, K, V>) {
        self.stats.record(Event::Insert);
        segment.linked(new);
    }

    /// Bookkeeping after `new` replaced `old`, whose remover the caller is (pinned phase).
    pub(super) fn linked_over(
        &self,
        index: usize,
        old: NodePtr<'_, K, V>,
        new: NodePtr<'_, K, V>,
        now: u64,
    ) -> Option<Held<K, V>> {
        let (cause, held) = self.departed_by_caller(index, old, RemovalCause::Replaced, now);
        self.stats.record(if cause == RemovalCause::Replaced {
            Event::Update
        } else {
            Event::Insert
        });
        self.segments[index].linked(new);
        held
    }

    /// Remover duties for an entry a caller took out (pinned phase): its cause (`Expired` if
    /// it had lapsed), the count, the wheel hand-off, and a hold for the listener if any.
    pub(super) fn departed_by_caller(
        &self,
        index: usize,
        node: NodePtr<'_, K, V>,
        live_cause: RemovalCause,
        now: u64,
    ) -> (RemovalCause, Option<Held<K, V>>) {
        let cause = if self.expired_at(&node, now) {
            self.stats.record(Event::Expiration);
            RemovalCause::Expired
        } else {
            if live_cause == RemovalCause::Explicit {
                self.stats.record(Event::Removal);
            }
            live_cause
        };
        let hold = self.notifier.wants();
        self.segments[index].removed(node, hold);
        // SAFETY: we are the remover and `removed` left RELEASED unset (`hold`).
        let held = hold.then(|| unsafe { Held::new(node, cause, index) });
        (cause, held)
    }

    pub(super) fn remove<Q, R>(&self, key: &Q, read: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.ticker.now();
        let (hash, index) = self.locate(key);
        let mut fired = Vec::new();
        let (out, departed, turned) = {
            let guard = epoch::pin();
            let node =
                self.segments[index]
                    .table
                    .remove(hash, |n| n.key.borrow() == key, &guard)?;
            let (cause, held) = self.departed_by_caller(index, node, RemovalCause::Explicit, now);
            // Still pinned: the node cannot be freed under us even when not held.
            let out = (cause == RemovalCause::Explicit).then(|| read(&node.value));
            (out, held, self.turn_pinned(index, now, &guard, &mut fired))
        };
        self.after_write(index, departed.into_iter().chain(fired), turned);
        out
    }

    pub(super) fn get_or_insert_with(&self, key: K, init: impl FnOnce() -> V) -> V
    where
        V: Clone,
    {
        let (hash, index) = self.locate(&key);
        {
            let guard = epoch::pin();
            if let Some(node) = self.find(hash, index, &key, &guard, false, true) {
                return node.value.clone();
            }
        }
        // Unpinned: `init` may take seconds without holding back any reclamation.
        let value = init();
        let reading = self.ticker.read();
        let weight = self.weigh(&key, &value);
        // Unpinned too: the policy's answer for a new entry (what it replaces, if anything,
        // has lapsed, so this is a creation).
        let zero_limit =
            self.ttl.is_some_and(|t| t.is_zero()) || self.tti.is_some_and(|t| t.is_zero());
        let deadline = if zero_limit {
            None // nothing is stored whatever the policy says: not asked
        } else {
            self.write_deadline(&key, &value, None, reading)
        };
        let unstored = if deadline.is_none() {
            Some(RemovalCause::Expired)
        } else {
            self.refused(weight).then_some(RemovalCause::Evicted)
        };
        if let Some(cause) = unstored {
            // An entry stored while `init` ran wins, as below; otherwise the value goes to
            // the listener unstored, and nothing is removed (an entry there has lapsed).
            let live = {
                let guard = epoch::pin();
                self.find(hash, index, &key, &guard, false, false)
                    .map(|n| n.value.clone())
            };
            if let Some(live) = live {
                drop(value);
                return live;
            }
            let out = value.clone();
            self.unstored(hash, index, key, value, cause, None, Vec::new(), false);
            return out;
        }
        let now = reading.tick();
        let segment = &self.segments[index];
        // Some here: a zero answer was not stored above.
        let node = self.node(
            hash,
            key,
            value,
            deadline.unwrap_or(Deadline::ttl(now)),
            reading,
            weight,
        );
        let charge = self.limits.charge_guard(weight);
        let keep = |existing: NodePtr<'_, K, V>| !self.expired_at(&existing, now);
        let mut fired = Vec::new();
        let (out, departed, unused, refused, turned) = {
            let guard = epoch::pin();
            let inserted = segment.table.insert(node, |a, b| a == b, keep, &guard);
            // Settle the weight before any clone (user code) can unwind.
            if matches!(inserted, Insert::Kept { .. } | Insert::Full { .. }) {
                drop(charge);
            } else {
                charge.keep();
            }
            // Every clone runs before the turn: a panicking one must not drop the
            // departures the turn takes out.
            let (out, departed, unused, refused) = match inserted {
                Insert::New(new) => {
                    self.linked_new(segment, new);
                    (new.value.clone(), None, None, false)
                }
                Insert::Replaced { old, new } => {
                    let held = self.linked_over(index, old, new, now);
                    (new.value.clone(), held, None, false)
                }
                Insert::Kept { existing, unused } => {
                    (existing.value.clone(), None, Some(unused), false)
                }
                // No room for the key's hash (see `Insert::Full`): the caller gets its
                // value, which is refused below, unpinned, as one heavier than the bound.
                Insert::Full { unused } => (unused.value.clone(), None, Some(unused), true),
                Insert::Vacant { .. } => unreachable!("vacant keys are taken"),
            };
            let turned = self.turn_pinned(index, now, &guard, &mut fired);
            (out, departed, unused, refused, turned)
        };
        let unused = unused.map(NodeBox::into_parts);
        if refused {
            let (key, value) = unused.expect("a refused insert hands its node back");
            let cause = RemovalCause::Evicted;
            self.unstored(hash, index, key, value, cause, None, fired, turned);
            return out;
        }
        self.after_write(index, departed.into_iter().chain(fired), turned);
        // The losing value is the caller's, dropped here, unpinned, after the departures
        // (its `Drop` may call back into the cache).
        drop(unused);
        out
    }

    pub(super) fn clear(&self) {
        let now = self.ticker.now();
        for index in 0..self.segments.len() {
            let mut fired = Vec::new();
            let (departed, turned): (Vec<Held<K, V>>, bool) = {
                let guard = epoch::pin();
                let removed = self.segments[index].table.remove_all(&guard);
                let departed = removed
                    .into_iter()
                    .filter_map(|n| {
                        self.departed_by_caller(index, n, RemovalCause::Explicit, now)
                            .1
                    })
                    .collect();
                (departed, self.turn_pinned(index, now, &guard, &mut fired))
            };
            self.after_write(index, departed.into_iter().chain(fired), turned);
        }
    }
}
