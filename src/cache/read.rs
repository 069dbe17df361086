//! The read path: locating a key, finding its live node, and the liveness checks (TTL,
//! idle limit, the policy's read question).

use super::maintain::read_turn_owed;
use super::Inner;
use crate::clock::{Reading, NEVER};
use crate::entry::node::NodePtr;
use crate::stats::Event;
use crossbeam_epoch::{self as epoch, Guard};
use equivalent::Equivalent;
use std::hash::{BuildHasher, Hash};

/// What a lookup is, for the statistics and for the entry it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Look {
    /// Neither an access nor counted: `contains_key`, `compute`, a load's second look.
    Peek,
    /// An access (it restarts the entry's idle time, raises its access count and asks the
    /// read policy: see [`live_now`](Inner::live_now)), not counted as a hit or a miss:
    /// `get_or_insert_with` finding its key.
    Touch,
    /// A `get`: an access, and a hit or a miss.
    Get,
}

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// `get` for a key already located.
    pub(super) fn get_located<Q>(&self, hash: u64, index: usize, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
        V: Clone,
    {
        // No `Departures` on the common path: a read that takes no turn has nothing to
        // deliver, seal or free (what listeners queued waits for the next delivery). A
        // panicking `V::clone` unwinds through the guard alone.
        let value = {
            let guard = epoch::pin();
            self.find(hash, index, key, &guard, Look::Get)
                .map(|n| n.value.clone())
        };
        if read_turn_owed() {
            // One read in `READ_TURN_EVERY`: its turn, under a short pin of its own.
            self.read_turn(index);
        }
        value
    }

    /// Whether `key` has a live entry: a read that is neither counted nor an access.
    pub(super) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let (hash, index) = self.locate(key);
        let found = {
            let guard = epoch::pin();
            self.find(hash, index, key, &guard, Look::Peek).is_some()
        };
        if read_turn_owed() {
            self.read_turn(index);
        }
        found
    }

    /// The key's hash (the user's, mixed: see `table::mix`, cut to the table's 48 bits)
    /// and its segment.
    pub(super) fn locate<Q: Hash + ?Sized>(&self, key: &Q) -> (u64, usize) {
        let mixed = crate::table::mix(self.hasher.hash_one(key));
        // Top bits pick the segment (at most 16: `MAX_SEGMENTS`); the table uses the low
        // 32 bits (home group) and bits 32..47 (slot tags), so the three are independent.
        let index = mixed.checked_shr(64 - self.segment_bits).unwrap_or(0) as usize;
        (mixed & crate::table::HASH_MASK, index)
    }

    /// A found node's liveness check: its TTL deadline against the clock (read only when
    /// it has one); with a time-to-idle, also its idle stamp, which a counted read (`touch`)
    /// moves to now. In a bounded cache a counted read also raises the node's access count.
    /// A deadline alone is checked through `Ticker::lapsed`, which can decide it without
    /// reading the clock (most reads).
    #[inline]
    pub(super) fn live_now(&self, node: NodePtr<'_, K, V>, touch: bool) -> bool {
        self.live_with(
            node,
            touch,
            |d| self.ticker.lapsed(d),
            || self.ticker.read(),
        )
    }

    /// [`live_now`](Self::live_now) with the deadline checked by `lapsed` and the clock
    /// read by `read` (each called only when there is a deadline or an idle limit to
    /// check; `lapsed(d)` must answer `read().reached(d)`).
    #[inline]
    pub(super) fn live_with(
        &self,
        node: NodePtr<'_, K, V>,
        touch: bool,
        lapsed: impl Fn(u64) -> bool,
        read: impl Fn() -> Reading,
    ) -> bool {
        if !node.is_extended() && !node.idle_in_meta() {
            return node.deadline() == NEVER || !lapsed(node.deadline());
        }
        let deadline = node.expiry_deadline();
        // A node has an idle stamp exactly when its cache has a time-to-idle.
        match node.idle() {
            None => {
                if deadline != NEVER && lapsed(deadline) {
                    return false;
                }
            }
            Some(idle) => {
                let now = read();
                if now.reached(deadline) || now.tick() >= self.limits.idle_deadline(idle) {
                    return false;
                }
                if touch && idle < now.tick() {
                    node.stamp(now.tick());
                }
            }
        }
        if touch && self.limits.weighed {
            node.touch();
        }
        true
    }

    /// A touching read's liveness check, then the policy's read question, with one clock
    /// reading for both (see `expiry`).
    pub(super) fn live_and_asked<'g>(
        &self,
        node: NodePtr<'g, K, V>,
        index: usize,
    ) -> Option<NodePtr<'g, K, V>> {
        let reading = self.ticker.read();
        if !self.live_with(node, true, |d| reading.reached(d), || reading) {
            return None;
        }
        self.ask_read(node, index, reading);
        Some(node)
    }

    /// The first tick at which `node` may have lapsed, as it stands now: its TTL or policy
    /// deadline, or its idle deadline if that comes first ([`NEVER`] for none). Reads move
    /// an idle deadline only later, but a read policy may move its deadline either way, so
    /// with one that is asked about reads it is tick 0: any time. (No clock reading: the
    /// caller is pinned, and the clock is user code.)
    pub(super) fn lapses_from(&self, node: &NodePtr<'_, K, V>) -> u64 {
        if self.asks_reads() && node.timer().is_some() {
            return 0;
        }
        let deadline = node.expiry_deadline();
        match node.idle() {
            Some(idle) => deadline.min(self.limits.idle_deadline(idle)),
            None => deadline,
        }
    }

    /// Whether a node is expired at tick `now` (TTL or idle), for its remover's cause.
    pub(super) fn expired_at(&self, node: &NodePtr<'_, K, V>, now: u64) -> bool {
        let deadline = node.expiry_deadline();
        (deadline != NEVER && deadline <= now)
            || node
                .idle()
                .is_some_and(|idle| now >= self.limits.idle_deadline(idle))
    }

    /// The live node for `key`, looked up as `look` says (see [`Look`]).
    pub(super) fn find<'g, Q>(
        &self,
        hash: u64,
        index: usize,
        key: &Q,
        guard: &'g Guard,
        look: Look,
    ) -> Option<NodePtr<'g, K, V>>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let touch = look != Look::Peek;
        let found = self.segments[index]
            .table
            .lookup(hash, |n| key.equivalent(&n.key), guard);
        let found = if touch && self.asks_reads() {
            found.and_then(|n| self.live_and_asked(n, index))
        } else {
            found.filter(|n| self.live_now(*n, touch))
        };
        if look == Look::Get {
            self.stats.record(if found.is_some() {
                Event::Hit
            } else {
                Event::Miss
            });
        }
        found
    }
}
