//! One segment's hash table: lock-free open addressing over cache-line groups of node
//! pointers, with overflow counts instead of tombstones, and incremental migration.
//!
//! ## Layout
//! A table ([`raw::Raw`]) is an array of 64-byte *groups*: a control word and seven slot
//! words (`word`). A slot holds a pointer to a heap node (nodes never move: the wheel links
//! them intrusively) with 15 bits of the key's hash in the pointer's unused top bits, so a
//! probe rejects other keys' slots without touching their nodes. A hit touches the group's
//! line and the node's; a miss usually only the group's. Table sizes are any number of
//! groups: a key's *home group* is its hash's low 32 bits scaled to the table (Lemire's
//! multiply-shift), and its *probe sequence* is the groups from home on, wrapping.
//!
//! ## Hashes the table can trust
//! The hash the table sees is the user's hash passed through [`mix`], a folded multiply
//! (the 128-bit product with a constant, its halves xored), so that every bit of the
//! user's hash reaches the home group's bits, the tag's and the segment's. Without it an
//! identity hasher (`nohash_hasher`, common for integer keys) put every small key in
//! group 0, and hashes that differed only in their high half shared a home. A hasher
//! that gives many keys *one* hash cannot be helped by mixing; the table then degrades
//! rather than fails: an insert that finds no free slot near home grows the table only
//! while growing can help (`Table::growth_helps`), and otherwise probes on, up to
//! [`word::MAX_NAMED`] slots, the most a commit can name. Past that (over 65,000 keys
//! of one hash in one segment) the insert is refused (`Insert::Full`) and the cache
//! reports the value as evicted. Every operation on such keys costs time linear in
//! their number, as in any open-addressing table; none hangs, and memory stays
//! proportional to the entries.
//!
//! ## Overflow counts, not tombstones
//! A removal empties its slot at once. What tells a lookup where to stop is each group's
//! *overflow count*: how many keys passed the group (homed at or before it, living after
//! it). A lookup stops after the first group whose count is zero; an insert that must place
//! its key `k` groups past home raises the counts of the `k` groups it passes before the
//! key becomes visible, and its removal lowers them again. This is folly's
//! `ConcurrentHashMap` `SIMDTable` scheme (Bronson et al., folly, 2017), there with locked
//! writers; it means churn at a constant size never needs a copy to clear tombstones, as
//! papaya's and moka's tables do (and as "folklore" lock-free linear probing does: Maier,
//! Sanders and Dementiev, "Concurrent hash tables: fast and general?(!)", TOPC 2019).
//!
//! ## Writes without locks: claim, commit, publish
//! Reusing emptied slots is what makes lock-free writers hard: two inserts of one absent
//! key could claim two different free slots. Every insert of a new key therefore goes
//! through its home group's control word, whose *version* every such commit bumps:
//! 1. scan the probe sequence: the key's published node (then replace it with one CAS on
//!    its slot, or keep it), or else the first free slot, remembering the home's word `c0`;
//! 2. *claim* the free slot (CAS null -> `node | PENDING`: invisible to readers);
//! 3. raise the overflow counts of the groups it passes;
//! 4. *commit*: CAS the home's control word from a value with `c0`'s version to one with the
//!    version bumped and `named` set to the claim's offset. If the version moved (another
//!    commit of a key homed there) the scan may be stale: undo 3 and 2 and start again;
//! 5. *publish* the claim (CAS `node | PENDING` -> `node`) and clear `named`.
//!
//! Two commits of one key cannot both succeed: the second's version was read after the
//! first's commit, so its scan saw the first's node, published, or committed but not yet
//! published, in which case `named` points at it and the second *helps publish* it before
//! scanning (a committer always publishes what `named` names first). The version and
//! `named` are only ever changed together with a check of each other, so a slow helper
//! cannot publish another commit's claim (no ABA: a node is never freed while someone who
//! read it is pinned). Readers see only published slots, and an insert takes effect when it
//! is published; a replacement is one CAS on the slot, so the key is never absent between
//! the old and the new value. Removal is one CAS to empty, by the one thread that wins it
//! (the node's *remover*). This is a variant of the reservation-then-validation approach of
//! Purcell and Harris ("Non-blocking hashtables with open addressing", DISC 2005), with the
//! validation moved into one word per home group.
//!
//! ## Migration: incremental, one group at a time
//! A table that is too full (or whose probe found no room within [`raw::MAX_PROBE`]
//! groups while loaded enough for growth to help: `Table::growth_helps`) grows; one that
//! is mostly empty shrinks (in maintenance). A migration first *seals* the
//! old table (new keys then wait for the target instead of claiming slots there), counts
//! the live entries, allocates the next table (sized for them plus `Tuning::insert_lag`
//! inserts already under way, at the target load) and installs it as `raw.next`. Sealing
//! before counting is what makes every copy fit: without it, a migrator descheduled
//! between its count and its install let the old table fill up behind a stale count. The
//! wait for a sealed table is the one other wait in the table: for one allocation. From
//! then on:
//! - **Copying a group** (by any writer, a few per write, or by maintenance): set the
//!   group's `FROZEN` flag (whoever sets it copies it; others wait for it to finish, one
//!   group's worth of work); freeze each slot (set its `FROZEN`
//!   bit, so no CAS can change it); place each published node in the next table, marking
//!   the groups it passes; empty the copied slots (`MOVED` markers; a claim still pending
//!   stays frozen as it is, for its inserter to see); count it copied; set the group's
//!   `MOVED`. When the count is complete the next table is installed as current and the
//!   old one retired, by the last copier or by anyone finishing the migration (one CAS
//!   wins), so nobody waits for the last copier. (Marking moved before counting let a
//!   thread see every group moved but the count short, and spin: a loom model caught it.)
//! - **Writers** first copy every old group on their key's probe sequence (and a couple of
//!   others), then write to the next table. So no key is ever written in both tables.
//! - **Readers** never help: a frozen group is read as usual (nothing in it can change);
//!   moved groups and slots are skipped, and if the key was not found in the old table and
//!   the probe met anything moved, the reader probes the next table. (A moved home group
//!   does not mean its keys are all in the next table: some may live, not yet copied, in
//!   later groups of its probe sequence. A first version sent readers to the next table
//!   at the first moved group and lost such keys; a unit test keeps that case.)
//!
//! The hard cases:
//! - *An insert racing a migration*: if its claim is frozen before it is published, the
//!   copy skips it (a pending claim was never visible) and the insert, still owning its
//!   node, starts again in the next table. A freeze of its home group fails its commit.
//! - *A remove racing a migration*: its CAS on the slot either comes before the freeze (the
//!   node is gone, nothing is copied) or fails on the frozen word (it waits for the group,
//!   then removes from the next table).
//! - *A reader that loaded the old table*: it reads frozen slots as they are, skips copied
//!   ones, and cannot meet a freed node: an old slot is emptied before its group is marked
//!   moved, and a node leaves the new table only after that (writers wait for their key's
//!   old groups to be moved), so the node is unreachable from both before it is retired
//!   (the epoch then covers the reader). A key it finds in the old table is current: no
//!   writer changes it in the new table before its old group is copied.
//! - *Slot reuse after a remove*: an emptied slot may be claimed at once; overflow counts
//!   keep lookups going past it for keys that live further on.
//! - *Remove by node during a migration*: the wheel's expiry finds a node by pointer from its
//!   stored hash; a frozen or moved slot sends it (as any writer) through the copy to the
//!   next table, where the node now is.
//!
//! ## Invariants
//! 1. At most one published node per key in the current table (commits, above).
//! 2. A published node `k` groups past its home has raised the overflow count of each of the
//!    `k` groups before it; a saturated count is never lowered (it only costs lookups time).
//! 3. A frozen slot never changes again but to the `MOVED` marker, by its group's copier.
//! 4. While `raw.next` is set, no insert publishes in `raw` a key whose probe sequence
//!    includes a frozen group (its commit or publish fails on the freeze).
//! 5. Readers write nothing.

mod listing;
mod migrate;

mod insert;
mod lookup;
mod raw;
mod remove;
mod word;

pub(crate) use insert::Insert;

use crate::sync::{AtomicIsize, AtomicPtr, AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;
use raw::{Raw, GROUP};
use std::sync::Arc;
use word::Word;

/// The multiplier of [`mix`]: 2^64 divided by the golden ratio (odd), as in Fibonacci
/// hashing (Knuth, TAOCP vol. 3, 6.4).
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// The bits of a mixed hash a table and a node keep: the home group's (low 32) and the
/// tag's (32..47). The top 16 pick the segment (`Cache::locate`), which a node never
/// leaves, so a node's hash word has them free (it keeps its allocation lane there, see
/// `entry::node`).
pub(crate) const HASH_MASK: u64 = (1 << 48) - 1;

/// The hash the table works with, from the user's: a folded multiply (the two halves of
/// the 128-bit product with [`MIX`], xored), so that the low 32 bits (the home group),
/// bits 32..47 (the tag) and the top bits (the segment) each depend on every bit of the
/// user's hash. One multiply; see the module docs for why.
#[inline]
pub(crate) fn mix(hash: u64) -> u64 {
    let full = u128::from(hash) * u128::from(MIX);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Sizing rules of a table; [`Tuning::DEFAULT`] except in model checks and small tests,
/// which force tiny tables so that a few operations cross a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tuning {
    /// The table never shrinks below this many groups.
    pub(crate) min_groups: usize,
    /// Grow when live entries exceed this share of the slots (percent).
    pub(crate) max_load_pct: u8,
    /// A migration sizes its table for this share (percent).
    pub(crate) target_load_pct: u8,
    /// Shrink when live entries fall below this share (percent).
    pub(crate) min_load_pct: u8,
    /// Threads that may be inserting into one table at once: every migration's target
    /// has this many slots set aside for inserts already under way when it starts.
    pub(crate) insert_lag: usize,
    /// The farthest from its home, in slots, a new insert may claim one (at most
    /// [`word::MAX_NAMED`], what a commit can name); smaller only in tests of a full probe.
    pub(crate) reach: usize,
}

impl Tuning {
    pub(crate) const DEFAULT: Self = Self {
        min_groups: 1,
        max_load_pct: 85,
        target_load_pct: 60,
        min_load_pct: 20,
        insert_lag: 64,
        reach: word::MAX_NAMED,
    };
    /// One group to start; grows past half of it (under loom, with two-slot groups, at the
    /// second entry), sizes new tables at a third, shrinks below a tenth.
    #[cfg(feature = "internal-tiny-tables")]
    pub(crate) const TINY: Self = Self {
        min_groups: 1,
        max_load_pct: 50,
        target_load_pct: 34,
        min_load_pct: 10,
        insert_lag: if crate::sync::MODEL { 3 } else { 8 },
        reach: word::MAX_NAMED,
    };
}

/// One segment's lock-free table.
pub(crate) struct Table<K, V> {
    /// The current table (never null).
    current: AtomicPtr<Raw<K, V>>,
    /// Published, unremoved entries. Removals may be counted before the matching insert,
    /// so it can dip below zero for a moment; readers clamp.
    count: CachePadded<AtomicIsize>,
    /// Retired tables whose deferred free has not run yet (shared with the closures, which
    /// may run after the table is gone).
    garbage: Arc<AtomicUsize>,
    tuning: Tuning,
    /// Scans in progress (`listing`): while any runs, no optional migration starts (a grow
    /// at the maximum load, a shrink), so a scan's rounds are bounded (see `listing`).
    pub(crate) scanners: AtomicUsize,
    /// The fewest groups the table shrinks to: the tuning's minimum, or the pre-sized
    /// table's size (a table pre-sized for its working set is not shrunk while it fills).
    min_groups: usize,
}

impl<K, V> std::fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len())
            .field("tuning", &self.tuning)
            .finish_non_exhaustive()
    }
}

impl<K, V> Table<K, V> {
    /// A table sized for about `capacity` entries (at the target load).
    pub(crate) fn new(capacity: usize, tuning: Tuning) -> Self {
        assert!(tuning.reach <= word::MAX_NAMED, "{tuning:?}");
        let per_group = GROUP * usize::from(tuning.target_load_pct);
        let groups = capacity
            .saturating_mul(100)
            .div_ceil(per_group)
            .max(tuning.min_groups);
        Self {
            current: AtomicPtr::new(Box::into_raw(Box::new(Raw::new(groups)))),
            count: CachePadded::new(AtomicIsize::new(0)),
            garbage: Arc::new(AtomicUsize::new(0)),
            tuning,
            scanners: AtomicUsize::new(0),
            min_groups: groups,
        }
    }

    /// Entries in the table, expired ones included until they are removed.
    pub(crate) fn len(&self) -> usize {
        // Relaxed: a count that publishes nothing and pairs with nothing (a hint for
        // sizing, and `len`'s answer, weakly consistent by design).
        usize::try_from(self.count.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Whether retired tables are still waiting for their grace period.
    pub(crate) fn garbage_pending(&self) -> bool {
        // Acquire pairs with the Release `fetch_sub` in `install`'s deferred closures: the
        // frees they counted are done.
        self.garbage.load(Ordering::Acquire) != 0
    }

    /// Whether a migration is under way.
    #[cfg(test)]
    pub(crate) fn migrating(&self) -> bool {
        // Acquire (both loads) pairs with `install`'s CAS on `current` and `start_migration`'s
        // stores to `next`; this test-only check reads only null-ness, so it is stronger
        // than needed, kept to match the other loads of these pointers.
        let raw = self.current.load(Ordering::Acquire);
        // SAFETY: 1. `current` is never null; 2. the current table is freed only after it
        // stops being current, and only through the epoch, and a test calls this with no
        // migration racing it; 3. only a shared reference is made (to read an atomic).
        !unsafe { &*raw }.next.load(Ordering::Acquire).is_null()
    }
}

impl<K, V> Drop for Table<K, V> {
    fn drop(&mut self) {
        // `&mut self`: no other thread can reach the table. Published nodes are owned by the
        // table: the current one's, and the next one's if a migration was left unfinished
        // (no group is half-copied: copying runs no user code and finishes what it starts).
        // A node is in at most one of them (copied groups' old slots were emptied).
        // Relaxed (here and below): `&mut self`, and whatever handed it to us (the last
        // handle's drop) ordered every other thread's writes before this.
        let raw = self.current.load(Ordering::Relaxed);
        // SAFETY: 1. `current` holds a pointer `Box::into_raw` gave (in `new` or
        // `start_migration`); 2. `&mut self`: ours alone, taken once (the field is not
        // read again).
        let raw = unsafe { Box::from_raw(raw) };
        let next = raw.next.load(Ordering::Relaxed);
        // (A table still sealed has no target to free: its sealer never got to allocate.)
        let next = (!next.is_null() && next != raw::sealed()).then(|| {
            // SAFETY: 1. not null nor the `sealed` marker (checked just above), so a table
            // `start_migration` made with `Box::into_raw`; 2. owned with `raw`, which is
            // ours, and taken once.
            unsafe { Box::from_raw(next) }
        });
        for table in std::iter::once(&*raw).chain(next.as_deref()) {
            for group in table.groups.iter() {
                for slot in &group.slots {
                    let w = Word::<K, V>(slot.load(Ordering::Relaxed));
                    if w.is_pending() {
                        continue; // a claim never published: its inserter owns the node
                    }
                    if let Some(node) = w.node() {
                        // SAFETY: `free_node`'s 1: a published node is owned by the table
                        // (retired only after leaving its slot), from `NodeBox::new`, and the
                        // word keeps its provenance; its 2: it is in one slot of one table
                        // (copied groups' old slots were emptied), so it is freed once.
                        unsafe { crate::entry::reclaim::free_node(node) };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
