//! A hierarchical timing wheel: which entries are due, in time proportional to the answer.
//!
//! ## Algorithm
//! Varghese & Lauck, "Hashed and Hierarchical Timing Wheels" (SOSP 1987), scheme 7, in the
//! shape tokio's timer driver uses: [`LEVELS`] levels of 64 slots; a slot at level `l` spans
//! `64^l` ticks and a level spans one slot of the level above. Time is a tick count, and
//! a deadline's base-64 digits name its slot at every level.
//!
//! | level | slot span (1 ms tick) | level span |
//! |-------|-----------------------|------------|
//! | 0     | 1 ms                  | 64 ms      |
//! | 1     | 64 ms                 | 4.1 s      |
//! | 2     | 4.1 s                 | 4.4 min    |
//! | 3     | 4.4 min               | 4.7 h      |
//! | 4     | 4.7 h                 | 12.4 days  |
//! | 5     | 12.4 days             | 2.18 years |
//! | 6..=9 | 2.18 years ..         | 2^60 ticks |
//!
//! An entry with deadline `d` goes to the level of the highest base-64 digit in which `d`
//! differs from the wheel's `now`, at slot `digit(d)` there. When `now` reaches a slot's
//! start, its entries are either due (fired) or re-filed relative to the new `now`, which
//! always lands them on a lower level: each entry moves at most `LEVELS` times.
//!
//! **No overflow list.** Ten levels cover 2^60 ticks, more than the 2^55-tick range of a
//! deadline (`clock::NEVER`), so every deadline has a slot. (An earlier design kept far
//! deadlines on an overflow list re-filed once per 2^36-tick region crossed; with small
//! ticks that was one pass over the list per 68 s of clock time.) The four top levels cost
//! 2 KiB per segment, and nothing per step while empty (invariant 4).
//!
//! ## Costs
//! Schedule and cancel are O(1): intrusive doubly linked slot lists whose first node
//! names its slot in place of a predecessor, so cancelling needs no deadline (an idle
//! entry's deadline moves while it waits: the wheel holds it at the earliest possible one,
//! and re-files it when that comes if it was read meanwhile). Finding the next due slot
//! is one bit scan of a 64-bit occupancy word per non-empty level, so advancing costs
//! O(levels) per non-empty slot crossed plus O(1) per entry fired or
//! re-filed (at most `LEVELS` re-files per entry), never a scan of the table.
//! [`Wheel::advance`] takes a budget and stops mid-slot when it runs out; the next call
//! resumes there.
//!
//! ## Invariants
//! 1. Every occupied slot at level `l` has index `>= digit_l(now)`; equality only for a slot
//!    whose processing a budget interrupted (all its entries are then due or re-filable).
//! 2. A scheduled node is on exactly one slot list.
//! 3. `now` never passes the start of an occupied slot without processing it.
//! 4. `busy` has bit `l` set exactly when level `l` has a non-empty slot, so finding the
//!    next slot reads only the occupancy words of levels that hold entries: each level's
//!    word lies on its own cache line (beside its first slots), and a session cache whose
//!    TTLs span two levels used to miss on the other eight lines at most maintenance turns.
//!
//! The wheel owns no node: it only links them. Ground rule: it, and the `wheel` links of
//! every node on its lists, are touched only under the segment's maintenance lock (a
//! node's `wheel.next` serves a stack while it is on no list, and `wheel.prev`, null then,
//! is the wheel's membership test: [`Wheel::is_scheduled`]).

mod level;

use crate::entry::links::WheelField;
use crate::entry::node::Node;
use crate::intrusive::list::splice_out;
use crate::intrusive::ListLinks;
use level::{head_of, Level, SLOTS};

/// Levels of 64 slots: enough that `64^LEVELS` exceeds every deadline (see the module docs).
pub(crate) const LEVELS: usize = 10;
const SLOT_BITS: u32 = SLOTS.trailing_zeros();
const _: () = assert!(SLOT_BITS * LEVELS as u32 > crate::clock::DEADLINE_BITS);
const _: () = assert!(
    LEVELS <= u16::BITS as usize,
    "`Wheel::busy` has a bit per level"
);

/// One segment's wheel (see the module docs).
#[derive(Debug)]
pub(crate) struct Wheel<K, V> {
    now: u64,
    /// Bit `l` set iff level `l` has a non-empty slot (invariant 4).
    busy: u16,
    levels: Box<[Level<K, V>; LEVELS]>,
}

// SAFETY: 1. the wheel holds pointers to nodes it dereferences only through its `unsafe`
// methods, whose callers hold the segment's maintenance lock; 2. it moves between threads
// only inside that lock's `Mutex`; 3. the nodes are shared `K, V: Send + Sync`.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Wheel<K, V> {}

#[inline]
fn digit(tick: u64, level: usize) -> usize {
    debug_assert!(level < LEVELS, "digit of {tick} at level {level}");
    ((tick >> (SLOT_BITS * level as u32)) as usize) & (SLOTS - 1)
}

/// The level for deadline `d` seen from `now` (`d > now`, both below `2^DEADLINE_BITS`).
#[inline]
fn level_for(now: u64, d: u64) -> usize {
    debug_assert!(
        d > now && d <= crate::clock::NEVER,
        "level for deadline {d} at now {now}"
    );
    let significant = 63 - ((now ^ d) | (SLOTS as u64 - 1)).leading_zeros();
    let level = (significant / SLOT_BITS) as usize;
    debug_assert!(level < LEVELS, "deadline {d} at now {now}: level {level}");
    level
}

impl<K, V> Wheel<K, V> {
    pub(crate) fn new(now: u64) -> Self {
        Self {
            now,
            busy: 0,
            levels: Box::new(std::array::from_fn(|_| Level::default())),
        }
    }

    /// Links `node` into the slot for deadline `d` (its TTL deadline, or its earliest
    /// possible idle deadline), or returns false (linking nothing) if `d` is already due.
    ///
    /// # Safety
    /// 1. `node` is alive, carries its allocation's provenance (a `NodePtr`'s pointer),
    ///    and stays alive until it is cancelled or handed out by [`advance`](Self::advance).
    /// 2. `node` is on no wheel list.
    /// 3. The caller holds the segment's maintenance lock.
    pub(crate) unsafe fn schedule(&mut self, node: *mut Node<K, V>, d: u64) -> bool {
        if d <= self.now {
            return false;
        }
        debug_assert!(
            d < crate::clock::NEVER,
            "a node without deadline was scheduled"
        );
        let level = level_for(self.now, d);
        // Invariant 1: a new entry lands after the level's current slot.
        debug_assert!(
            digit(d, level) > digit(self.now, level),
            "deadline {d} at now {} filed at level {level}, slot {}, not after slot {}",
            self.now,
            digit(d, level),
            digit(self.now, level)
        );
        // SAFETY: `Level::push`'s 1, 2 and 4: our 1, 2 and 3; its 3: every node in our
        // slots was scheduled under our 1 and not cancelled or handed out since, so it is
        // alive; its 5: `level` indexes `self.levels`.
        unsafe { self.levels[level].push(level, digit(d, level), node) };
        self.busy |= 1 << level;
        true
    }

    /// Whether `node` is on one of the wheel's lists: its `wheel.prev` is a node or a slot
    /// mark, never null, while it is (a list clears both links when it lets a node go, and
    /// a new node's are clear; the stacks that borrow the field use `next` alone). The
    /// links are the wheel's membership flag, so filing and unfiling write no shared word:
    /// a flag in `meta` cost a locked RMW each way.
    ///
    /// # Safety
    /// 1. `node` is alive and carries its allocation's provenance.
    /// 2. The caller holds the segment's maintenance lock, and `node` is on none of the
    ///    hand-off stack, the limbo and a sealed batch (whose owners write `wheel.next`
    ///    without it): it was taken off the stack, or drained, and is not retired.
    pub(crate) unsafe fn is_scheduled(&self, node: *mut Node<K, V>) -> bool {
        // SAFETY: `with_links`' 1: our 1; its 2: our 2 (the lock guards the links of a
        // node on no stack, and the closure only reads them).
        unsafe { WheelField::with_links(node, |l| !l.prev.is_null()) }
    }

    /// Takes `node` out of the wheel if it is in it ([`is_scheduled`](Self::is_scheduled)).
    /// Returns whether it was.
    ///
    /// # Safety
    /// 1. `node` is alive and carries its allocation's provenance.
    /// 2. If `node` is on a wheel list, it was scheduled on this wheel (a node is only
    ///    ever filed in its own segment's wheel).
    /// 3. The caller holds the segment's maintenance lock, and `node` is on no stack
    ///    (`is_scheduled`'s 2).
    pub(crate) unsafe fn unschedule(&mut self, node: *mut Node<K, V>) -> bool {
        // SAFETY: `is_scheduled`'s 1: our 1; its 2: our 3.
        let scheduled = unsafe { self.is_scheduled(node) };
        if scheduled {
            // SAFETY: `cancel`'s 1: on a wheel list, so linked by `schedule` on this wheel
            // (our 2) and not cancelled or handed out since (both unlink it, clearing its
            // links), and the pointer carries its allocation's provenance (our 1); its 2:
            // our 3.
            unsafe { self.cancel(node) };
        }
        scheduled
    }

    /// Unlinks a scheduled `node` in O(1): a list's first node names its slot (see
    /// `level::mark`), any other is spliced out between its neighbours.
    ///
    /// # Safety
    /// 1. `node` was linked by [`schedule`](Self::schedule) on this wheel and not
    ///    cancelled or handed out since (so it is alive, on one of our lists), and carries
    ///    its allocation's provenance.
    /// 2. The caller holds the segment's maintenance lock.
    pub(crate) unsafe fn cancel(&mut self, node: *mut Node<K, V>) {
        // SAFETY: `head_of`'s 1: by our 1, `node` is alive, with its provenance, and on one
        // of our lists (invariant 2); its 2: our 2. `Level::unlink`'s 1: `node` heads the
        // slot its mark names (and has its provenance, our 1); its 2: every node on our lists is alive (`schedule`'s 1); its 3: our
        // 2. `splice_out`'s 1: our 1, and `node` is not first (`head_of` found a node
        // before it); its 2: `node`'s neighbours are on our lists, so alive (`schedule`'s
        // 1); its 3: our 2.
        unsafe {
            match head_of(node) {
                Some((level, slot)) => {
                    debug_assert!(
                        level < LEVELS && self.levels[level].slots[slot].head() == node,
                        "{node:p} names level {level}, slot {slot} as its list, headed by {:?}",
                        self.levels.get(level).map(|l| l.slots[slot].head())
                    );
                    self.levels[level].unlink(slot, node);
                    self.settle_busy(level);
                }
                None => splice_out::<WheelField<K, V>>(node),
            }
        }
    }

    /// Clears level `level`'s bit in `busy` if its last slot emptied (invariant 4).
    #[inline]
    fn settle_busy(&mut self, level: usize) {
        if self.levels[level].occupied == 0 {
            self.busy &= !(1 << level);
        }
    }

    /// The earliest non-empty slot, as (its start tick, level, slot).
    fn next_work(&self) -> Option<(u64, usize, usize)> {
        debug_assert!(
            (0..LEVELS).all(|l| (self.busy >> l) & 1 == u16::from(self.levels[l].occupied != 0)),
            "busy levels {:#x} disagree with the levels' occupancy",
            self.busy
        );
        let mut best: Option<(u64, usize, usize)> = None;
        let mut busy = self.busy;
        while busy != 0 {
            let l = busy.trailing_zeros() as usize;
            busy &= busy - 1;
            let level = &self.levels[l];
            // Invariant 1: nothing is filed before the level's current slot.
            debug_assert!(
                level.occupied & !(u64::MAX << digit(self.now, l)) == 0,
                "level {l}: slots {:#x} occupied before slot {} (now {})",
                level.occupied,
                digit(self.now, l),
                self.now
            );
            if let Some(slot) = level.next_occupied(digit(self.now, l)) {
                let shift = SLOT_BITS * l as u32;
                let span_mask = (1u64 << (shift + SLOT_BITS)) - 1;
                let when = (self.now & !span_mask) | ((slot as u64) << shift);
                if best.is_none_or(|(b, _, _)| when < b) {
                    best = Some((when, l, slot));
                }
            }
        }
        best
    }

    /// The tick the wheel has advanced to.
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// Moves `now` towards `target`, handing every due node to `fire` (already unlinked)
    /// with the deadline it read, and re-filing the rest, touching at most `*budget`
    /// nodes. A node whose deadline is now [`NEVER`](crate::clock::NEVER) (an expiry
    /// policy's read took it away) goes to `fire` too, not due: the caller lets it go from
    /// the wheel. Returns true when `now` reached `target` with nothing due left behind.
    ///
    /// # Safety
    /// 1. Every scheduled node is alive ([`schedule`](Self::schedule)'s 1 for each).
    /// 2. The caller holds the segment's maintenance lock.
    pub(crate) unsafe fn advance(
        &mut self,
        target: u64,
        budget: &mut usize,
        deadline: impl Fn(*mut Node<K, V>) -> u64,
        mut fire: impl FnMut(*mut Node<K, V>, u64),
    ) -> bool {
        loop {
            let Some((when, level, slot)) = self.next_work().filter(|&(w, _, _)| w <= target)
            else {
                self.now = self.now.max(target);
                return true;
            };
            if *budget == 0 {
                return false;
            }
            // Invariants 1 and 3: the slot starts at or after `now` (only the current one,
            // which a budget interrupted, started before), so `now` moves forward and never
            // past an occupied slot's start unseen.
            debug_assert!(
                when <= target && (when >= self.now || digit(self.now, level) == slot),
                "slot {slot} of level {level} starts at {when}, now {}, target {target}",
                self.now
            );
            self.now = self.now.max(when);
            // SAFETY: `Level::pop`'s 1: our 1 (every scheduled node is alive); its 2: our 2.
            // Each popped node is handed on (fired or re-filed) at once.
            while let Some(node) = unsafe { self.levels[level].pop(slot) } {
                self.settle_busy(level);
                // SAFETY: `refile_one`'s 1: `node` was scheduled, so alive (our 1) until
                // handed out, which `refile_one` does, and it is the pointer `schedule` was
                // given, with its allocation's provenance (`schedule`'s 1); its 2: just
                // popped, so on no list; its 3: our 2.
                unsafe { self.refile_one(node, target, &deadline, &mut fire) };
                *budget -= 1;
                if *budget == 0 {
                    break;
                }
            }
        }
    }

    /// Fires an unlinked node if it is due by `target` (this advance will fire it anyway, so
    /// it is not cascaded into a lower level first), else schedules it again relative to
    /// `now`.
    ///
    /// # Safety
    /// 1. `node` is alive, carries its allocation's provenance, and stays alive until it
    ///    is handed to `fire` or, if filed again, cancelled or handed out by a later
    ///    [`advance`](Self::advance).
    /// 2. `node` is on no wheel list.
    /// 3. The caller holds the segment's maintenance lock.
    unsafe fn refile_one(
        &mut self,
        node: *mut Node<K, V>,
        target: u64,
        deadline: &impl Fn(*mut Node<K, V>) -> u64,
        fire: &mut impl FnMut(*mut Node<K, V>, u64),
    ) {
        // The node's deadline now (an idle entry's moves later when it is read, and an
        // expiry policy's read may move one either way).
        let d = deadline(node);
        // SAFETY: `schedule`'s 1, 2 and 3: our 1, 2 and 3.
        if d == crate::clock::NEVER || d <= target || !unsafe { self.schedule(node, d) } {
            // Handed out: on no wheel list (its slot's list cleared its links).
            fire(node, d);
        }
    }
}

#[cfg(test)]
mod tests;
