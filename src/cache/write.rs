//! The write path: building a node, storing it (or not), removing, and the remover's
//! duties in the pinned phase.

use super::departures::Departures;
use super::expiry::Deadline;
use super::read::Look;
use super::{Inner, Op};
use crate::clock::{Reading, NEVER};
use crate::entry::layout::{ExtInit, NodeBox};
use crate::entry::node::NodePtr;
use crate::entry::RemovalCause;
use crate::segment::{Held, Segment};
use crate::stats::Event;
use crate::sync::Ordering;
use crate::table::Insert;
use crossbeam_epoch::{self as epoch};
use equivalent::Equivalent;
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
        if deadline.ttl != NEVER && !self.timed.load(Ordering::Relaxed) {
            // Relaxed: a hint (see `timed`); a sweep that misses it skips nothing that
            // could have lapsed, as this entry cannot have yet.
            self.timed.store(true, Ordering::Relaxed);
        }
        let timer = deadline.policy.map(|p| (p, reading.nanos()));
        let idle = (self.limits.idle_ticks != 0).then(|| reading.tick());
        // An extension holds the eviction-queue links (a bound or a weigher), and carries
        // a timer, or an idle stamp that `meta` cannot hold because it holds a TTL
        // deadline. A node of an unbounded cache with a time-to-idle and no TTL keeps its
        // stamp in `meta` and needs none.
        let extended =
            self.limits.weighed || timer.is_some() || (idle.is_some() && deadline.ttl != NEVER);
        match idle {
            Some(tick) if !extended => NodeBox::idle(hash, key, value, tick),
            _ => NodeBox::new(
                hash,
                key,
                value,
                deadline.ttl,
                extended.then_some(ExtInit {
                    idle,
                    weight,
                    timer,
                }),
            ),
        }
    }

    /// Whether an entry of `weight` is refused outright (heavier than the whole bound).
    pub(super) fn refused(&self, weight: u32) -> bool {
        u64::from(weight) > self.limits.max
    }

    /// The one decision of whether a write is stored, for every write path: with
    /// time-to-live `ttl`, a zero TTL or time-to-idle refuses it as `Expired` (nothing is
    /// asked); then the weigher runs, and, with `ask` and a policy, the policy
    /// (`expire_after_create`, or `_update` for the live entry `seen`), whose zero answer
    /// refuses it as `Expired`; a weight over the whole bound refuses it as `Evicted`.
    /// Otherwise its deadlines and weight. Runs user code (the weigher, the policy).
    pub(super) fn admit(
        &self,
        key: &K,
        value: &V,
        ttl: Option<Duration>,
        seen: Option<NodePtr<'_, K, V>>,
        reading: Reading,
        ask: bool,
    ) -> Result<(Deadline, u32), RemovalCause> {
        if ttl.is_some_and(|t| t.is_zero()) || self.tti.is_some_and(|t| t.is_zero()) {
            return Err(RemovalCause::Expired);
        }
        let weight = self.weigh(key, value);
        let deadline = if ask {
            self.write_deadline(key, value, ttl, seen, reading)
                .ok_or(RemovalCause::Expired)?
        } else {
            Deadline::ttl(Self::deadline(ttl, reading))
        };
        if self.refused(weight) {
            return Err(RemovalCause::Evicted);
        }
        Ok((deadline, weight))
    }

    /// `insert`: with a policy, a compare-and-swap of the entry, so that the policy answers
    /// for the one replaced; otherwise a plain put with the default TTL.
    pub(super) fn insert(&self, key: K, value: V) {
        if self.expiry.is_none() {
            return self.put(key, value, self.ttl);
        }
        self.compute_with(key, Some(value), |_, spare| match spare.take() {
            Some(value) => Op::Put(value),
            None => unreachable!("a refused put hands its value back before a retry"),
        });
    }

    pub(super) fn put(&self, key: K, value: V, ttl: Option<Duration>) {
        // Its tick and its deadline for `ttl` are all `put` asks of it (no policy here).
        let now = self.ticker.read_for(ttl);
        let (deadline, weight) = match self.admit(&key, &value, ttl, None, now, false) {
            Ok(admitted) => admitted,
            Err(cause) => return self.put_expired(key, value, now.tick(), cause),
        };
        let (hash, index) = self.locate(&key);
        let segment = &self.segments[index];
        let charge = self.limits.charge_guard(weight);
        // Made before the pin, so that an unwind drops the guard first (see `Departures`).
        let mut out = Departures::new(self, index);
        // Pinned before the node is built (no user code runs there), so that the home
        // group's cache miss overlaps the allocation.
        let guard = epoch::pin();
        segment.table.prefetch_home(hash, &guard);
        let node = self.node(hash, key, value, deadline, now, weight);
        let full = {
            let inserted = segment.table.insert(node, |a, b| a == b, |_| false, &guard);
            let full = match inserted {
                Insert::New(new) => {
                    charge.keep();
                    self.linked_new(segment, new);
                    None
                }
                Insert::Replaced { old, new } => {
                    charge.keep();
                    self.linked_over(index, old, new, now.tick(), &mut out);
                    None
                }
                Insert::Full { unused } => {
                    drop(charge);
                    Some(unused)
                }
                Insert::Kept { .. } | Insert::Vacant { .. } => {
                    unreachable!("`keep` refused every existing entry, and vacant keys are taken")
                }
            };
            self.turn_pinned(index, now.tick(), &guard, &mut out);
            full
        };
        drop(guard);
        if let Some(unused) = full {
            // No room for the key's hash (see `Insert::Full`): refused like a value
            // heavier than the bound. The key was absent, so nothing was replaced.
            let (key, value) = unused.into_parts();
            let cause = RemovalCause::Evicted;
            return self.unstored(hash, key, value, cause, false, out);
        }
        out.finish();
    }

    /// An entry that is not stored (a zero TTL or TTI: `Expired`; heavier than the bound:
    /// `Evicted`): remove what is there, and hand the value straight to the listener.
    pub(super) fn put_expired(&self, key: K, value: V, now: u64, cause: RemovalCause) {
        let (hash, index) = self.locate(&key);
        let segment = &self.segments[index];
        let mut out = Departures::new(self, index);
        let replaced = {
            let guard = epoch::pin();
            let old = segment.table.remove(hash, |n| n.key == key, &guard);
            let old_cause = old.map(|old| {
                self.departed_by_caller(index, old, RemovalCause::Replaced, now, &mut out)
            });
            self.turn_pinned(index, now, &guard, &mut out);
            old_cause == Some(RemovalCause::Replaced)
        };
        self.unstored(hash, key, value, cause, replaced, out);
    }

    /// The unpinned end of a write whose value is not stored: counts it (an update if it
    /// replaced a live entry), hands the value to the listener as `cause` after the
    /// operation's other departures, and finishes the operation (`out`).
    pub(super) fn unstored(
        &self,
        hash: u64,
        key: K,
        value: V,
        cause: RemovalCause,
        replaced: bool,
        mut out: Departures<'_, K, V, S>,
    ) {
        self.stats.record(if replaced {
            Event::Update
        } else {
            Event::Insert
        });
        self.stats.record(if cause == RemovalCause::Evicted {
            Event::Eviction
        } else {
            Event::Expiration
        });
        if self.notifier.wants() {
            // The value was never stored: it leaves as a node that only its remover holds
            // (never linked, never scheduled), so it is told like any departure, and
            // freed through the reclamation like any node.
            let node = NodeBox::never_stored(hash, key, value);
            let segment = out.segment();
            // SAFETY: 1. from `NodeBox::into_raw`, alive until retired, and this thread is
            // its only holder (its remover), RELEASED unset; 2. its holds settle in the
            // operation's segment, whose table it counts as (never) linked in; 3. `out`
            // borrows the cache; 4. not counted as owed.
            let held =
                unsafe { Held::new(NodePtr::from_raw(node.into_raw()), cause, segment, None) };
            out.own.push(held);
        }
        out.finish();
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
        out: &mut Departures<'_, K, V, S>,
    ) {
        let cause = self.departed_by_caller(index, old, RemovalCause::Replaced, now, out);
        self.stats.record(if cause == RemovalCause::Replaced {
            Event::Update
        } else {
            Event::Insert
        });
        self.segments[index].linked(new);
    }

    /// Remover duties for an entry a caller took out (pinned phase): its cause (`Expired` if
    /// it had lapsed), the count, the wheel hand-off, and its hold in `out` if there is a
    /// listener. Returns the cause.
    pub(super) fn departed_by_caller(
        &self,
        index: usize,
        node: NodePtr<'_, K, V>,
        live_cause: RemovalCause,
        now: u64,
        out: &mut Departures<'_, K, V, S>,
    ) -> RemovalCause {
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
        let segment = &self.segments[index];
        segment.removed(node, hold);
        if hold {
            // SAFETY: 1. we are the remover, and `removed` left RELEASED unset (`hold`);
            // 2. `node` was in this segment's table; 3. `out` borrows the cache; 4. not
            // counted as owed.
            out.own
                .push(unsafe { Held::new(node, cause, segment, None) });
        }
        cause
    }

    pub(super) fn remove<Q, R>(&self, key: &Q, read: impl FnOnce(&V) -> R) -> Option<R>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let now = self.ticker.now();
        let (hash, index) = self.locate(key);
        let mut out = Departures::new(self, index);
        let result = {
            let guard = epoch::pin();
            let table = &self.segments[index].table;
            let node = table.remove(hash, |n| key.equivalent(&n.key), &guard)?;
            let cause = self.departed_by_caller(index, node, RemovalCause::Explicit, now, &mut out);
            // Still pinned: the node cannot be freed under us even when not held. A
            // panicking `read` (a `V::clone`) unwinds through `out`, which delivers.
            let result = (cause == RemovalCause::Explicit).then(|| read(&node.value));
            self.turn_pinned(index, now, &guard, &mut out);
            result
        };
        out.finish();
        result
    }

    pub(super) fn get_or_insert_with(&self, key: K, init: impl FnOnce() -> V) -> V
    where
        V: Clone,
    {
        let (hash, index) = self.locate(&key);
        let present = {
            let guard = epoch::pin();
            self.find(hash, index, &key, &guard, Look::Touch)
                .map(|node| node.value.clone())
        };
        if let Some(value) = present {
            // The key is dropped while the clone is still a local: a return value is
            // leaked if a local's `Drop` panics after it is made (rust-lang/rust#47949).
            drop(key);
            return value;
        }
        // Unpinned: `init` may take seconds without holding back any reclamation.
        let value = init();
        let reading = self.ticker.read();
        // Unpinned too: the admission (the weigher, and the policy's answer for a new
        // entry: what it replaces, if anything, has lapsed, so this is a creation).
        let (deadline, weight) = match self.admit(&key, &value, self.ttl, None, reading, true) {
            Ok(admitted) => admitted,
            Err(cause) => return self.refused_insert_with(hash, index, key, value, cause),
        };
        let now = reading.tick();
        let segment = &self.segments[index];
        let node = self.node(hash, key, value, deadline, reading, weight);
        let charge = self.limits.charge_guard(weight);
        let keep = |existing: NodePtr<'_, K, V>| !self.expired_at(&existing, now);
        let mut out = Departures::new(self, index);
        let (result, unused, refused) = {
            let guard = epoch::pin();
            let inserted = segment.table.insert(node, |a, b| a == b, keep, &guard);
            // Settle the weight before any clone (user code) can unwind.
            if matches!(inserted, Insert::Kept { .. } | Insert::Full { .. }) {
                drop(charge);
            } else {
                charge.keep();
            }
            // A panicking clone unwinds through `out`, which delivers what is held.
            let (result, unused, refused) = match inserted {
                Insert::New(new) => {
                    self.linked_new(segment, new);
                    (new.value.clone(), None, false)
                }
                Insert::Replaced { old, new } => {
                    self.linked_over(index, old, new, now, &mut out);
                    (new.value.clone(), None, false)
                }
                Insert::Kept { existing, unused } => (existing.value.clone(), Some(unused), false),
                // No room for the key's hash (see `Insert::Full`): the caller gets its
                // value, which is refused below, unpinned, as one heavier than the bound.
                Insert::Full { unused } => (unused.value.clone(), Some(unused), true),
                Insert::Vacant { .. } => unreachable!("vacant keys are taken"),
            };
            self.turn_pinned(index, now, &guard, &mut out);
            (result, unused, refused)
        };
        let unused = unused.map(NodeBox::into_parts);
        if refused {
            let (key, value) = unused.expect("a refused insert hands its node back");
            let cause = RemovalCause::Evicted;
            self.unstored(hash, key, value, cause, false, out);
            return result;
        }
        out.finish();
        // The losing value is the caller's, dropped here, unpinned, after the departures
        // (its `Drop` may call back into the cache).
        drop(unused);
        result
    }

    /// `get_or_insert_with`'s value, refused by the admission as `cause`: an entry stored
    /// while `init` ran wins (as when the insert loses); otherwise the value goes to the
    /// listener unstored, and nothing is removed (an entry there has lapsed). Returns what
    /// the caller gets.
    fn refused_insert_with(
        &self,
        hash: u64,
        index: usize,
        key: K,
        value: V,
        cause: RemovalCause,
    ) -> V
    where
        V: Clone,
    {
        let live = {
            let guard = epoch::pin();
            self.find(hash, index, &key, &guard, Look::Peek)
                .map(|n| n.value.clone())
        };
        if let Some(live) = live {
            drop(value);
            drop(key); // before returning (see `get_or_insert_with`)
            return live;
        }
        let result = value.clone();
        self.unstored(hash, key, value, cause, false, Departures::new(self, index));
        result
    }

    pub(super) fn clear(&self) {
        let now = self.ticker.now();
        for index in 0..self.segments.len() {
            let mut out = Departures::new(self, index);
            let guard = epoch::pin();
            for node in self.segments[index].table.remove_all(&guard) {
                self.departed_by_caller(index, node, RemovalCause::Explicit, now, &mut out);
            }
            self.turn_pinned(index, now, &guard, &mut out);
            drop(guard);
            out.finish();
        }
    }
}
