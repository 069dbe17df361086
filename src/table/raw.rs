//! One allocation of a segment's table: an array of cache-line groups, and the state of the
//! migration (if any) that is copying it into its successor.

use super::word::{Ctrl, Word, MAX_NAMED, MAX_OVERFLOW};
use crate::entry::node::Node;
use crate::sync::{AtomicIsize, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::ptr;

/// Slots per group: a control word and seven slot words fill one 64-byte cache line (two
/// under loom, so that a model fills a group, and passes it, in a couple of inserts).
pub(crate) const GROUP: usize = if crate::sync::MODEL { 2 } else { 7 };

/// The probe, in groups, within which a new insert expects a free slot: one that finds
/// none grows the table if growing can help (`Table::growth_helps`), and otherwise
/// claims the first free slot further on, up to what a control word's `named` can
/// encode ([`MAX_NAMED`] slots). Lookups and a migration's copies are not bounded by it
/// (copies may land further on; overflow counts tell lookups how far to go).
pub(crate) const MAX_PROBE: usize = 16;
const _: () = assert!(MAX_PROBE * GROUP <= MAX_NAMED + 1);

/// A control word and its slots, on one cache line.
#[repr(C, align(64))]
pub(crate) struct Group<K, V> {
    pub(crate) ctrl: AtomicU64,
    pub(crate) slots: [AtomicPtr<Node<K, V>>; GROUP],
}

impl<K, V> Group<K, V> {
    fn new() -> Self {
        Self {
            ctrl: AtomicU64::new(Ctrl::NEW.0),
            slots: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }
    }

    #[inline]
    pub(crate) fn ctrl(&self) -> Ctrl {
        // Acquire pairs with the Release RMWs on the control word: the commit in
        // `claim_and_commit`, `clear_named` (the edge a committer's scan relies on),
        // `add_overflow` and `sub_overflow` (inserts' and copies' alike), and
        // `copy_group`'s MOVED `fetch_or` (the edge waiters and readers rely on).
        Ctrl(self.ctrl.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn slot(&self, i: usize) -> Word<K, V> {
        // Acquire pairs with the Release CAS that wrote the word: a publish or replace in
        // `insert`, `help_publish`, `copy_node` (the node's fields are visible), and the
        // MOVED store in `copy_group` (the copy into the next table is visible).
        Word(self.slots[i].load(Ordering::Acquire))
    }
}

/// A table: `groups.len()` groups probed linearly from a key's home group.
pub(crate) struct Raw<K, V> {
    pub(crate) groups: Box<[Group<K, V>]>,
    /// The table this one is being migrated to; null when no migration is under way.
    pub(crate) next: AtomicPtr<Raw<K, V>>,
    /// The next group a helper should try to claim for copying.
    pub(crate) cursor: AtomicUsize,
    /// Groups copied so far; the migration is done when it reaches `groups.len()`.
    pub(crate) copied: AtomicUsize,
    /// For a migration's target: slots left for keys inserted while it runs. The entries
    /// still to be copied have theirs set aside (the old table gains none once a migration
    /// starts), so copying always finds room; an insert that finds none left finishes the
    /// migration first.
    pub(crate) room: AtomicIsize,
}

/// What `Raw::next` holds while a migration is being prepared: the old table is *sealed*
/// (writers wait for the target instead of writing to it; see `start_migration`). Never
/// dereferenced.
pub(crate) fn sealed<K, V>() -> *mut Raw<K, V> {
    ptr::without_provenance_mut(1)
}

impl<K, V> Raw<K, V> {
    /// A table of `groups` empty groups (at least one).
    pub(crate) fn new(groups: usize) -> Self {
        Self {
            groups: (0..groups.max(1)).map(|_| Group::new()).collect(),
            next: AtomicPtr::new(ptr::null_mut()),
            cursor: AtomicUsize::new(0),
            copied: AtomicUsize::new(0),
            room: AtomicIsize::new(isize::MAX),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.groups.len()
    }

    /// Slots in the table.
    pub(crate) fn capacity(&self) -> usize {
        self.groups.len() * GROUP
    }

    /// The home group of `hash`: its low 32 bits scaled to the table (Lemire's
    /// multiply-shift range reduction), so table sizes need not be powers of two.
    #[inline]
    pub(crate) fn home(&self, hash: u64) -> usize {
        (((hash & 0xffff_ffff) * self.groups.len() as u64) >> 32) as usize
    }
}

/// The group `steps` groups after `home`, wrapping in a table of `len` groups. Every probe
/// has `home < len` and `steps < len`, so one conditional subtraction wraps it: a `%` here
/// was a division on every group a lookup visits, ahead of the group's load.
#[inline]
pub(crate) fn step(home: usize, steps: usize, len: usize) -> usize {
    debug_assert!(
        home < len && steps < len,
        "home {home}, steps {steps}, len {len}"
    );
    let g = home + steps;
    if g >= len {
        g - len
    } else {
        g
    }
}

/// Raises group `g`'s overflow count by `n` (saturating: see `word`), for an insert's
/// probe or a migration's copy.
pub(super) fn add_overflow<K, V>(raw: &Raw<K, V>, g: usize, n: u64) {
    let group = &raw.groups[g];
    let mut c = group.ctrl();
    while c.overflow() < MAX_OVERFLOW {
        // AcqRel: stronger than the proof needs. A mark must be seen by whoever sees its
        // entry, and it is: program order puts it before the commit's Release CAS and the
        // publish, which carry it to every thread that acquires either. Nothing is read
        // through this word's Acquire, and a retry needs only the word the CAS saw. Kept:
        // every write to a control word stays a Release, so `Group::ctrl`'s Acquire pairs
        // with whichever it reads, and on x86 any RMW is a full barrier.
        match group.ctrl.compare_exchange(
            c.0,
            c.plus_overflow(n).0,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return,
            Err(now) => c = Ctrl(now),
        }
    }
}

/// Lowers group `g`'s overflow count by one (a saturated count stays saturated: it no
/// longer counts exactly, so it must never reach zero).
pub(super) fn sub_overflow<K, V>(raw: &Raw<K, V>, g: usize) {
    let group = &raw.groups[g];
    let mut c = group.ctrl();
    while c.overflow() < MAX_OVERFLOW {
        // AcqRel: stronger than the proof needs. A lowered count publishes nothing (the
        // entry it counted is gone, or never became visible), and a retry needs only the
        // word the CAS saw. Kept as `add_overflow`'s is, so that every write to a control
        // word is a Release.
        match group.ctrl.compare_exchange(
            c.0,
            c.minus_overflow().0,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return,
            Err(now) => c = Ctrl(now),
        }
    }
}

/// Clears the home group's `named` if it still names `offset` at `version` (the clear
/// bumps the version, so a later commit naming the same offset is never cleared by a slow
/// helper of this one).
pub(super) fn clear_named<K, V>(raw: &Raw<K, V>, home: usize, offset: usize, version: u64) {
    let hg = &raw.groups[home];
    let mut c = hg.ctrl();
    while c.named() == Some(offset) && c.version() == version {
        // AcqRel. The Release half pairs with the committers' Acquire `Group::ctrl` load of
        // the home's word (`insert_when`'s `c0`): the publication comes first, so a
        // committer that sees `named` clear scans and finds the node. The Acquire half is
        // stronger than needed (a retry needs only the word the CAS saw); kept with it.
        match hg
            .ctrl
            .compare_exchange(c.0, c.unnamed().0, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return,
            Err(now) => c = Ctrl(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homes_cover_the_table_and_probes_wrap() {
        let raw: Raw<u64, u64> = Raw::new(5);
        let mut seen = [false; 5];
        for h in 0..10_000u64 {
            let home = raw.home(h.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            seen[home] = true;
        }
        assert!(seen.iter().all(|&s| s), "every group is somebody's home");
        assert_eq!(raw.home(0), 0);
        assert_eq!(raw.home(u64::MAX), 4);
        let home = raw.home(u64::MAX);
        let groups: Vec<usize> = (0..raw.len()).map(|s| step(home, s, raw.len())).collect();
        assert_eq!(
            groups,
            vec![4, 0, 1, 2, 3],
            "a probe wraps, visiting each group once"
        );
        assert_eq!(step(98, 3, 100), 1);
        assert_eq!(std::mem::size_of::<Group<u64, u64>>(), 64);
        assert_eq!(std::mem::align_of::<Group<u64, u64>>(), 64);
    }
}
