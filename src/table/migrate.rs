//! Growing, shrinking and rehashing a table: an incremental copy into a new allocation,
//! one group at a time. The protocol and its hard cases are in the `table` module's essay.

use super::raw::{add_overflow, sealed, step, sub_overflow, Group, Raw, GROUP};
use super::word::{tag_of, Ctrl, Word};
use super::Table;
use crate::entry::node::Node;
use crate::sync::{self, Ordering};
use crossbeam_epoch::Guard;
use std::ptr;
use std::sync::Arc;

/// Groups a write helps copy, besides its own key's probe sequence.
const HELP_GROUPS: usize = 2;

impl<K, V> Table<K, V> {
    /// The current table, valid while `guard` lives.
    #[inline]
    pub(crate) fn current<'g>(&self, _guard: &'g Guard) -> &'g Raw<K, V> {
        // Acquire pairs with `install`'s Release CAS on `current`: the copies into the
        // table it installs (and its initialised groups) are visible.
        let raw = self.current.load(Ordering::Acquire);
        // SAFETY: 1. `current` is never null, and points at a table initialised before it
        // was stored (the edge above); 2. a table is freed only through the epoch, after it
        // stopped being current, so it outlives every guard taken before that, `'g`
        // included; 3. only shared references to a `Raw` are made (its state is atomic).
        unsafe { &*raw }
    }

    /// Starts loading `hash`'s home group in the current table into the cache: a writer
    /// calls it before building its node, so the group's miss (most of an insert's time
    /// in the table) overlaps that work. A hint only (see [`sync::prefetch`]).
    #[inline]
    pub(crate) fn prefetch_home(&self, hash: u64, guard: &Guard) {
        if sync::MODEL {
            // No load of `current` a model would have to explore for a hint.
            return;
        }
        let raw = self.current(guard);
        sync::prefetch(&raw.groups[raw.home(hash)]);
    }

    /// The table `raw` is being migrated to (readers that met a copied group follow it).
    ///
    /// # Safety
    /// 1. The caller has seen `raw.next` set (not null), or met a copied group of `raw`
    ///    (marked only after the target's store): `next` never goes back to null.
    #[inline]
    pub(crate) unsafe fn next_of<'g>(
        &self,
        raw: &'g Raw<K, V>,
        _guard: &'g Guard,
    ) -> &'g Raw<K, V> {
        // Acquire pairs with the Release store of the target in `start_migration`: its
        // initialised groups are visible.
        let mut next = raw.next.load(Ordering::Acquire);
        // A sealed table's target is being allocated: wait for it (writers only; a reader
        // follows `next` only after meeting a copied group, so after the target is in).
        while next == sealed() {
            sync::yield_now();
            // Acquire pairs with `start_migration`'s Release store of the target.
            next = raw.next.load(Ordering::Acquire);
        }
        debug_assert!(!next.is_null(), "a copied group implies a next table");
        // SAFETY: 1. `next` is neither the marker (the loop) nor null (our 1, checked in
        // debug builds above); 2. it is
        // a table `start_migration` allocated, retired only after it in turn stopped being
        // current, so it outlives `raw`'s readers' guards (both were reachable when they
        // pinned); 3. only shared references to a `Raw` are made.
        unsafe { &*next }
    }

    /// The table a write of `hash` must go to. When a migration is under way it helps
    /// copy a few groups, makes sure every group on `hash`'s probe sequence in the old
    /// table is copied (waiting, at most, for a group another thread is copying), and
    /// returns the new table.
    pub(crate) fn writable<'g>(&self, hash: u64, guard: &'g Guard) -> &'g Raw<K, V> {
        let raw = self.current(guard);
        // Acquire pairs with `start_migration`'s seal CAS and target store. Stronger than
        // needed: only null-ness is read here (`next_of` loads `next` again, Acquire,
        // before following it); kept so that no load of `next` needs its own argument.
        if raw.next.load(Ordering::Acquire).is_null() {
            return raw;
        }
        // SAFETY: `next_of`'s 1: `raw.next` was just seen set.
        let next = unsafe { self.next_of(raw, guard) };
        self.help_copy(raw, next, HELP_GROUPS, guard);
        let home = raw.home(hash);
        for steps in 0..raw.len() {
            let g = step(home, steps, raw.len());
            let ctrl = self.copy_group(raw, next, g, guard);
            if ctrl.overflow() == 0 {
                break;
            }
        }
        next
    }

    /// After an insert of a new key: start growing when the table is fuller than the
    /// tuning allows.
    pub(crate) fn maybe_grow(&self, raw: &Raw<K, V>, guard: &Guard) {
        // Relaxed: a hint that only bounds a scan's rounds (`listing`), pairs with
        // nothing; the table is correct whether or not this grow starts now.
        if self.len() * 100 > raw.capacity() * usize::from(self.tuning.max_load_pct)
            && self.scanners.load(Ordering::Relaxed) == 0
        {
            self.start_migration(raw, true, guard);
        }
    }

    /// Whether growing `raw` can make room for an insert that found no free slot within
    /// [`MAX_PROBE`](super::raw::MAX_PROBE) groups of its key's home (`in_reach`: whether
    /// it found one further out, within `Tuning::reach`).
    ///
    /// - **Room further out:** only at the maximum load (the tuning's `max_load_pct`; a
    ///   scan in progress holds `maybe_grow` off, and this is then what grows the table).
    ///   Below it the insert goes further out instead: linear probing makes long runs by
    ///   chance at any load, and growing for one of those cost the table half again its
    ///   memory (with growth allowed from the target load, a bounded cache of 10^6
    ///   entries measured 64 or 65 bytes of overhead per entry by hash seed with 8
    ///   segments, and 66-68 with 16, where it measures 63 now). Only the keys homed in
    ///   that run pay the longer probe.
    /// - **No room within reach:** from the target load, as a migration would fill the
    ///   table. A hasher with few distinct values (many keys each) makes clusters that
    ///   merge as the load rises; waiting for the maximum load refused such inserts
    ///   (`Insert::Full`: 40 hashes of 100 keys each with a reach of 2,000 slots, in
    ///   `few_distinct_hashes_grow_instead_of_refusing`).
    ///
    /// Below the target load no grow helps: the keys crowding this home share their
    /// hash's home bits, which no table size parts (a hasher that gives every key one hash
    /// grew the table for ever until this rule). Each grow takes the table to at least
    /// 1.5x, so grows stay geometric and memory proportional to the entries.
    pub(crate) fn growth_helps(&self, raw: &Raw<K, V>, in_reach: bool) -> bool {
        let load = if in_reach {
            self.tuning.max_load_pct
        } else {
            self.tuning.target_load_pct
        };
        self.len() * 100 >= raw.capacity() * usize::from(load)
    }

    /// Starts migrating `raw` (if it is current and not already migrating) to a table
    /// sized for the live entries at the tuning's target load; `grow` also asks for at
    /// least half again as many groups (a probe found no room, or the load passed the
    /// maximum). A migration started elsewhere, or of a table that is no longer current,
    /// is left alone: the caller's retry helps it along.
    pub(crate) fn start_migration(&self, raw: &Raw<K, V>, grow: bool, guard: &Guard) {
        // Acquire: only null-ness is read, and the CAS below decides; stronger than needed,
        // kept so that no load of `next` needs its own argument (pairs with the seal CAS
        // and target store).
        if !ptr::eq(self.current(guard), raw) || !raw.next.load(Ordering::Acquire).is_null() {
            return;
        }
        // Seal first, then count. Sealing claims the migration (one CAS on `next`, from
        // null to the `sealed` marker); from then on `writable` sends every writer to wait
        // for the target, so besides `live` the old table can only gain the inserts that
        // got it from `writable` before the seal, at most one per thread, plus those
        // published but not yet counted (one per thread too): `insert_lag` covers both.
        // (Counting before sealing let a descheduled migrator's count go stale while others
        // filled the old table: a 3-group shrink target met 40 entries and the copier
        // found no slot. 8 threads inserting into a bounded cache found it.) AcqRel: the
        // Acquire half keeps the count read below after the seal in this thread; the
        // Release half pairs with the Acquire loads of `next` in `writable` (a writer that
        // sees the marker waits for the target; it reads nothing through it). Acquire on
        // failure is stronger than needed (the loser only returns). No edge orders a
        // writer's Relaxed count increment against this seal (a store-buffering shape:
        // only SeqCst could), so "one per thread" above is a matter of timing, which the
        // model does not bound; `insert_lag` is the margin for it.
        if raw
            .next
            .compare_exchange(
                ptr::null_mut(),
                sealed(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return;
        }
        // An RMW reads the latest count (a plain load could return an older one). AcqRel
        // pairs with nothing (the count's other writes are Relaxed): stronger than
        // needed, what the sizing relies on is the RMW's read of the latest value; kept,
        // as it runs once per migration.
        let live = usize::try_from(self.count.fetch_add(0, Ordering::AcqRel)).unwrap_or(0);
        let lag = self.tuning.insert_lag;
        let mut groups = self.target_groups(live);
        if grow {
            groups = groups.max(raw.len() + raw.len().div_ceil(2));
        }
        let target = Raw::new(groups);
        // Room for new keys while the copy runs: everything but what the live entries and
        // the lag need, so the copies always fit.
        let room = target.capacity().saturating_sub(live + lag);
        // Relaxed: published with the table by the Release store below, which pairs with
        // the Acquire loads of `next` in `next_of`.
        target.room.store(
            isize::try_from(room).unwrap_or(isize::MAX),
            Ordering::Relaxed,
        );
        let next = Box::into_raw(Box::new(target));
        // Release publishes the new table's initialised groups (and `room`) to the Acquire
        // loads of `next` in `next_of` and `install`. Only the sealer changes `next` from
        // the marker.
        raw.next.store(next, Ordering::Release);
    }

    /// Groups of a migration target for `live` entries: the tuning's target load, and room
    /// for `insert_lag` more even if every one of them arrives (so the copies always fit).
    fn target_groups(&self, live: usize) -> usize {
        let per_group = GROUP * usize::from(self.tuning.target_load_pct);
        (live * 100)
            .div_ceil(per_group)
            .max((live + self.tuning.insert_lag).div_ceil(GROUP))
            .max(self.min_groups)
    }

    /// Copies up to `budget` groups of the migration `raw -> next` that nobody has
    /// claimed yet. Returns true while the migration is unfinished.
    fn help_copy(&self, raw: &Raw<K, V>, next: &Raw<K, V>, budget: usize, guard: &Guard) -> bool {
        for _ in 0..budget {
            // Relaxed: the cursor is only a hint of where unclaimed groups are; the claim
            // itself is the FROZEN bit.
            let g = raw.cursor.fetch_add(1, Ordering::Relaxed);
            if g >= raw.len() {
                break;
            }
            // The group two ahead is most likely this thread's next but one, or the next
            // helper's: its nodes' hashes load while this group and the next are copied
            // (one ahead left too little time: 2% slower in alternating runs).
            prefetch_nodes(raw, g + 2);
            self.copy_group(raw, next, g, guard);
        }
        // Acquire pairs with `copy_group`'s AcqRel increments of `copied`. Stronger than
        // needed: the answer is only a hint that keeps maintenance turns coming (nothing
        // is read through it); kept as every load of `copied` is Acquire.
        raw.copied.load(Ordering::Acquire) < raw.len()
    }

    /// Makes sure group `g` of `raw` is copied to `next`: claims and copies it, or waits
    /// for the thread that claimed it (one group's worth of work, no user code). Returns
    /// the group's control word as frozen (its overflow count is final).
    pub(crate) fn copy_group(
        &self,
        raw: &Raw<K, V>,
        next: &Raw<K, V>,
        g: usize,
        guard: &Guard,
    ) -> Ctrl {
        let group = &raw.groups[g];
        // AcqRel: stronger than the proof needs. The freeze works by the RMW itself (a
        // commit CAS that read the word before it fails, whatever its ordering), and what
        // the copy reads comes through the slots' own AcqRel CASes below. The Acquire half
        // pairs with the Release RMWs on the word (`claim_and_commit`, `clear_named`, the
        // overflow changes); waiters and readers rely on the MOVED `fetch_or` below, not on
        // this Release. Kept: it runs once per group and migration, and a weaker freeze
        // would need its own argument (and a loom run).
        let before = Ctrl(group.ctrl.fetch_or(Ctrl::NEW.frozen().0, Ordering::AcqRel));
        if before.is_frozen() {
            return wait_moved(group);
        }
        // Freeze every slot, so no insert, replace or remove can change it any more.
        let mut frozen = [Word::<K, V>::moved(); GROUP];
        for (slot, frozen) in group.slots.iter().zip(&mut frozen) {
            // Acquire: a first guess for the CAS below, which acquires the word it reads
            // anyway; stronger than needed.
            let mut w = Word(slot.load(Ordering::Acquire));
            // AcqRel. The Acquire half (success and failure) pairs with the Release CAS
            // that published the word (`insert`'s publish or replace, `help_publish`):
            // the hashes read below are the node's fields, and `copy_node`'s Release CAS
            // passes them on to readers of the next table; the proof relies on this edge.
            // The Release half pairs with nothing the proof needs (a writer whose CAS fails
            // on the frozen word reads nothing through it, and waits for MOVED): stronger
            // than needed, kept as written (free on x86, where every RMW is a full
            // barrier; weakening it wants a loom run).
            while let Err(now) =
                slot.compare_exchange(w.0, w.frozen().0, Ordering::AcqRel, Ordering::Acquire)
            {
                w = Word(now);
            }
            *frozen = w;
        }
        // The node a frozen word has to copy. A claim not yet published was never visible,
        // so it is not copied: its word stays frozen (with its node) for good, so its
        // inserter's publishing CAS fails on exactly its own node and it inserts again in
        // the next table.
        let to_copy = |w: &Word<K, V>| if w.is_pending() { None } else { w.node() };
        // The nodes' hashes, read in a loop of their own: with no RMW between them the
        // loads overlap, where one after each freezing CAS waited for the last (a cache
        // miss per node: 77% of `copy_group`'s time while a table grew to 10^6 entries).
        let mut hashes = [0u64; GROUP];
        for (w, hash) in frozen.iter().zip(&mut hashes) {
            if let Some(node) = to_copy(w) {
                // SAFETY: 1. a published word of `raw`, frozen above, so its node is alive
                // (only a remover's CAS on the slot could start its retirement, and none
                // succeeds on a frozen word); 2. it stays alive while `guard` is held; 3.
                // only a shared reference is made, for the immutable hash.
                *hash = unsafe { &*node }.hash();
            }
        }
        for (w, hash) in frozen.iter().zip(hashes) {
            if let Some(node) = to_copy(w) {
                self.copy_node(next, hash, node, guard);
            }
        }
        // Empty the copied slots before marking the group moved: once a writer sees MOVED
        // it may remove a node from the next table, and no old slot may then still point at
        // it (see `entry::node`, UNLINKED).
        for (slot, w) in group.slots.iter().zip(&frozen) {
            if !w.is_pending() {
                // Release pairs with the Acquire `Group::slot` loads in `lookup` and
                // `scan`: the copies into `next` happen-before a reader that sees the
                // marker, so following it to `next` finds them (the edge readers rely on).
                slot.store(Word::<K, V>::moved().0, Ordering::Release);
            }
        }
        // Counted before it is marked moved: whoever sees every group moved then also sees
        // the count complete, and can install the next table itself (see
        // `finish_migration`) instead of waiting for this thread. AcqRel: the Release half
        // pairs with the Acquire half of the increment that completes the count, and with
        // `install`'s and `help_copy`'s Acquire loads; the Acquire half is that completing
        // increment's: it sees every group's copies before `install` publishes the table.
        let last = raw.copied.fetch_add(1, Ordering::AcqRel) + 1 == raw.len();
        // Release pairs with the Acquire `Group::ctrl` loads of readers (`lookup`), writers
        // (`scan`, `writable`) and the waiters above: the copies and the cleared slots come
        // first. The Acquire half is stronger than needed (nothing is read through it).
        let after = Ctrl(group.ctrl.fetch_or(Ctrl::NEW.moved().0, Ordering::AcqRel));
        if last {
            self.install(raw, next, guard);
        }
        after.moved()
    }

    /// Places `node` (published in the old table, frozen there) in `next`: the first free
    /// slot of its probe sequence, marking the groups it passes, published at once. No
    /// commit is needed: exactly one copier handles each old slot, and no writer inserts
    /// the key into `next` before its old probe sequence is copied, so there is no other
    /// node of the key to race with. No user code runs.
    fn copy_node(&self, next: &Raw<K, V>, hash: u64, node: *mut Node<K, V>, _guard: &Guard) {
        let word = Word::published(node, tag_of(hash));
        let home = next.home(hash);
        'retry: loop {
            for steps in 0..next.len() {
                let g = step(home, steps, next.len());
                let group = &next.groups[g];
                for slot in &group.slots {
                    // Acquire: only emptiness is read (the CAS below decides); stronger than
                    // needed, kept with the CAS's orderings.
                    if !Word::<K, V>(slot.load(Ordering::Acquire)).is_empty() {
                        continue;
                    }
                    // Marks first (readers must meet them before the entry), then the
                    // claim-and-publish in one CAS.
                    for m in 0..steps {
                        // A target sized for its entries never has a count near the
                        // maximum (and a saturated one only costs lookups a longer walk).
                        add_overflow(next, step(home, m, next.len()), 1);
                    }
                    // AcqRel. The Release half pairs with the Acquire `Group::slot` loads
                    // of readers of `next`: the marks above come first, and so do the
                    // node's fields (this copier acquired them with the slot's freeze).
                    // The Acquire half is stronger than needed (the slot held null).
                    if slot
                        .compare_exchange(
                            ptr::null_mut(),
                            word.0,
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        return;
                    }
                    for m in 0..steps {
                        sub_overflow(next, step(home, m, next.len()));
                    }
                    continue 'retry;
                }
            }
            // Cannot happen: the copies' slots were set aside when the migration started, and
            // new keys take only the rest (`Raw::room`).
            debug_assert!(false, "no free slot in a migration's target table");
            sync::yield_now();
        }
    }

    /// Every group is copied: `next` becomes current and `raw` is retired, by whichever
    /// caller's CAS wins (the last copier calls this, and so does anyone finishing the
    /// migration, so nobody waits for the last copier).
    fn install(&self, raw: &Raw<K, V>, next: &Raw<K, V>, guard: &Guard) {
        // Acquire pairs with `copy_group`'s AcqRel increments of `copied`: every group's
        // copy happens-before the install, and so before readers of the new `current`.
        if raw.copied.load(Ordering::Acquire) < raw.len() {
            return;
        }
        // The pointers come from the atomics that hold `Box::into_raw`'s originals (one
        // rebuilt from `&Raw` could not be used to free the table: Miri, Tree Borrows).
        // Acquire pairs with the writes that installed them: `install`'s CAS on `current`
        // (or `Table::new`), `start_migration`'s Release store of `next`.
        let raw_ptr = self.current.load(Ordering::Acquire);
        let next_ptr = raw.next.load(Ordering::Acquire);
        debug_assert!(ptr::eq(next_ptr, next));
        if !ptr::eq(raw_ptr, raw) {
            return;
        }
        // AcqRel: the Release half pairs with `Table::current`'s Acquire loads: the
        // finished table (and, through the `copied` edge above, its copies) is visible.
        // The Acquire halves are stronger than needed: the winner retires the table it
        // loaded above, and a loser only returns.
        if self
            .current
            .compare_exchange(raw_ptr, next_ptr, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let old = OldTable(raw_ptr);
            let count = Arc::clone(&self.garbage);
            // Relaxed: the Release decrement after the free orders it; the increment only
            // has to be visible before the closure can run, which the defer ensures.
            count.fetch_add(1, Ordering::Relaxed);
            // SAFETY: `defer_unchecked` runs the closure on any thread, once every thread
            // pinned now has unpinned, possibly after the cache is gone: 1. `raw` is no
            // longer current, so threads that pin from now on cannot reach it; 2. it is
            // retired once, by the one thread whose CAS replaced it; 3. an old table owns
            // no node (its slots are copied markers or frozen pending claims, whose
            // inserters own them), so freeing it anywhere, after the cache, is fine.
            unsafe {
                guard.defer_unchecked(move || {
                    old.free();
                    // Release pairs with the Acquire load in `garbage_pending`.
                    count.fetch_sub(1, Ordering::Release);
                });
            }
        }
    }

    /// Copies every group left of a migration in progress (for `clear` and full
    /// maintenance); returns the current table afterwards.
    pub(crate) fn finish_migration<'g>(&self, guard: &'g Guard) -> &'g Raw<K, V> {
        loop {
            let raw = self.current(guard);
            // Acquire pairs with `start_migration`'s seal CAS and target store; only
            // null-ness is read (`next_of` loads it again): stronger than needed.
            if raw.next.load(Ordering::Acquire).is_null() {
                return raw;
            }
            // SAFETY: `next_of`'s 1: `raw.next` was just seen set.
            let next = unsafe { self.next_of(raw, guard) };
            for g in 0..raw.len() {
                self.copy_group(raw, next, g, guard);
            }
            // Every group is copied now; the thread that copied the last one may not have
            // installed the next table yet. Do it ourselves rather than wait for it (only
            // one CAS wins).
            self.install(raw, next, guard);
        }
    }

    /// One bounded step of table maintenance (under the segment's maintenance lock, or in
    /// `run_pending_tasks`): start shrinking a table that is mostly empty, and copy up to
    /// `budget` groups of a migration in progress. True while a migration is unfinished.
    pub(crate) fn maintain(&self, budget: usize, guard: &Guard) -> bool {
        let raw = self.current(guard);
        // Acquire: only null-ness is read (pairs with `start_migration`'s seal CAS and
        // target store); stronger than needed, as the other loads of `next`.
        if raw.next.load(Ordering::Acquire).is_null() {
            let live = self.len();
            let sparse = live * 100 < raw.capacity() * usize::from(self.tuning.min_load_pct);
            // Only when it would shrink: a table already at its smallest for `live` (room
            // for the insert lag included) would only be copied to its own size, again.
            // Relaxed: a hint that only bounds a scan's rounds; it pairs with nothing.
            if !sparse
                || self.target_groups(live) >= raw.len()
                || self.scanners.load(Ordering::Relaxed) != 0
            {
                return false;
            }
            self.start_migration(raw, false, guard);
        }
        // Acquire pairs with `start_migration`'s seal CAS and target store; only
        // null-ness is read here (`next_of` loads it again): stronger than needed.
        if raw.next.load(Ordering::Acquire).is_null() {
            return false;
        }
        // SAFETY: `next_of`'s 1: `raw.next` was just seen set.
        let next = unsafe { self.next_of(raw, guard) };
        self.help_copy(raw, next, budget, guard)
    }
}

/// A retired table, owned until freed.
struct OldTable<K, V>(*mut Raw<K, V>);

// SAFETY: 1. an old table holds only copied markers, frozen pending claims (whose nodes
// its inserters own and free) and its own atomics: no node it owns, no user data; 2. so
// dropping it on another thread runs no `K` or `V` code.
unsafe impl<K, V> Send for OldTable<K, V> {}

impl<K, V> OldTable<K, V> {
    fn free(self) {
        // SAFETY: 1. from `Box::into_raw` (in `start_migration` or `Table::new`); 2. retired
        // once, by `install`'s winning CAS, and freed once (this consumes `self`).
        drop(unsafe { Box::from_raw(self.0) });
    }
}

/// Waits for another thread copying `group` to mark it moved (one group's worth of work;
/// it runs no user code and takes no lock), and returns its moved control word.
fn wait_moved<K, V>(group: &Group<K, V>) -> Ctrl {
    let mut rounds = 0u32;
    loop {
        let c = group.ctrl();
        if c.is_moved() {
            return c;
        }
        rounds = rounds.wrapping_add(1);
        if sync::MODEL || rounds % 64 != 0 {
            sync::yield_now();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(10));
        }
    }
}

/// Starts loading the nodes that group `g` of `raw` names (if there is such a group),
/// so that copying it finds their hashes in the cache, where each was a miss of its own
/// (the first of them, waited for, was half of `copy_group`'s time while a table grew to
/// 10^6 entries). Only a hint: the words may change before the copy freezes them, and a
/// prefetch reads nothing and faults on no address.
fn prefetch_nodes<K, V>(raw: &Raw<K, V>, g: usize) {
    if sync::MODEL {
        return;
    }
    let Some(group) = raw.groups.get(g) else {
        return;
    };
    for slot in &group.slots {
        // Relaxed: the word is only used as an address to prefetch; nothing is read
        // through it.
        if let Some(node) = Word::<K, V>(slot.load(Ordering::Relaxed)).node() {
            sync::prefetch(node);
        }
    }
}
