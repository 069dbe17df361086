//! The two words a table is made of: a *slot* (a tagged node pointer) and a group's
//! *control word*. Encoding only; the protocol that uses them is in `lookup`, `insert`, `remove` and `migrate`.
//!
//! ## Slot
//! A slot is an `AtomicPtr<Node>` whose value is one of:
//!
//! | value | meaning |
//! |---|---|
//! | null | empty: free to claim |
//! | `node \| PENDING` | claimed by an insert that has not published it (invisible to readers) |
//! | `node` | published: the node is in the table |
//! | any of those `\| FROZEN` | a migration is copying this slot: nobody may change it |
//! | `MOVED` | copied to the next table (and no longer points at anything) |
//!
//! A claim that was still pending when its group was frozen stays `node | PENDING |
//! FROZEN` for good: the copy skips it (it was never visible), and its inserter, whose
//! publishing CAS fails on exactly that word, knows to insert again in the next table.
//!
//! Nodes are at least 8-aligned, so the three low bits are free. On 64-bit targets a
//! published or pending word also carries 15 bits of the key's hash in bits 48..63, with bit
//! 63 saying so (`TAGGED`), so a probe rejects a non-matching slot without touching its
//! node. That needs the node's address below 2^48, which holds for user-space allocations
//! on the 64-bit targets Rust supports (x86-64 and AArch64 Linux hand out higher
//! addresses only to programs that ask for them); a node above it is stored untagged and
//! is compared through the node instead, so nothing depends on it but speed. Every change
//! of bits goes through `map_addr`, which keeps the pointer's provenance.
//!
//! ## Control word
//! One `AtomicU64` per group, in the same cache line as its slots:
//!
//! | bits | field |
//! |---|---|
//! | 0..16 | `overflow`: keys whose probe passed this group (they live further on); a lookup that finds `overflow == 0` stops here; saturates at its maximum, and a saturated count is never lowered (it only costs lookups a longer walk) |
//! | 16..32 | `named`: 1 + the probe offset (in slots) of this group's *committed but unpublished* insert, or 0 |
//! | 32 | `FROZEN`: a migration has claimed this group |
//! | 33 | `MOVED`: the group has been copied to the next table |
//! | 34..64 | `version`: bumped by every commit of a key whose home is this group, and by clearing `named` |
//!
//! `named` is 16 bits wide so that an insert can reach 65,535 slots from its home: far
//! more than a good hash ever needs (the table grows long before), but what lets a
//! hasher that gives many keys one hash still place them (see `insert`). The version keeps
//! 30 bits: a committer compares it with the value it read before its scan, so a stale
//! scan would go unnoticed only if exactly 2^30 version bumps (2^29 inserts of keys homed
//! in this one group) happened between its read and its commit CAS.

use crate::entry::node::Node;
use std::ptr;

const PENDING: usize = 0b001;
const FROZEN: usize = 0b010;
const MOVED: usize = 0b100;
const LOW: usize = 0b111;

#[cfg(target_pointer_width = "64")]
const TAGGED: usize = 1 << 63;
#[cfg(target_pointer_width = "64")]
const TAG_SHIFT: u32 = 48;
#[cfg(target_pointer_width = "64")]
const TAG_BITS: usize = 0xffff << TAG_SHIFT;

/// A slot's 15-bit hash tag (bits disjoint from those that pick the segment, the home
/// group and, within a segment, nothing else).
#[inline]
pub(crate) fn tag_of(hash: u64) -> usize {
    ((hash >> 32) & 0x7fff) as usize
}

/// A slot's value (see the module docs). `Copy`; the atomics hold the raw pointer.
pub(crate) struct Word<K, V>(pub(crate) *mut Node<K, V>);

impl<K, V> Clone for Word<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Word<K, V> {}

impl<K, V> PartialEq for Word<K, V> {
    fn eq(&self, other: &Self) -> bool {
        ptr::eq(self.0, other.0)
    }
}

impl<K, V> std::fmt::Debug for Word<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Word({:#x})", self.0.addr())
    }
}

impl<K, V> Word<K, V> {
    pub(crate) const EMPTY: Self = Self(ptr::null_mut());

    /// The marker a migration leaves in a copied slot.
    pub(crate) fn moved() -> Self {
        Self(ptr::without_provenance_mut(MOVED))
    }

    /// The published word for `node` (from `Box::into_raw`), tagged with `tag` when the
    /// address leaves room.
    #[inline]
    pub(crate) fn published(node: *mut Node<K, V>, tag: usize) -> Self {
        #[cfg(target_pointer_width = "64")]
        {
            if node.addr() & TAG_BITS == 0 {
                return Self(node.map_addr(|a| a | TAGGED | (tag << TAG_SHIFT)));
            }
        }
        let _ = tag;
        Self(node)
    }

    #[inline]
    pub(crate) fn pending(self) -> Self {
        Self(self.0.map_addr(|a| a | PENDING))
    }

    #[inline]
    pub(crate) fn unpending(self) -> Self {
        Self(self.0.map_addr(|a| a & !PENDING))
    }

    #[inline]
    pub(crate) fn frozen(self) -> Self {
        Self(self.0.map_addr(|a| a | FROZEN))
    }

    #[inline]
    pub(crate) fn is_frozen(self) -> bool {
        self.0.addr() & FROZEN != 0
    }

    #[inline]
    pub(crate) fn is_pending(self) -> bool {
        self.0.addr() & PENDING != 0
    }

    #[inline]
    pub(crate) fn is_moved(self) -> bool {
        self.0.addr() & !FROZEN == MOVED
    }

    #[inline]
    pub(crate) fn is_empty(self) -> bool {
        self.0.addr() & !FROZEN == 0
    }

    /// The node this word points at (pending or published, frozen or not), with the
    /// provenance of the pointer it was made from.
    #[inline]
    pub(crate) fn node(self) -> Option<*mut Node<K, V>> {
        if self.is_empty() || self.is_moved() {
            return None;
        }
        #[cfg(target_pointer_width = "64")]
        let node = if self.0.addr() & TAGGED != 0 {
            self.0.map_addr(|a| a & !(TAG_BITS | LOW))
        } else {
            self.0.map_addr(|a| a & !LOW)
        };
        #[cfg(not(target_pointer_width = "64"))]
        let node = self.0.map_addr(|a| a & !LOW);
        Some(node)
    }

    /// Whether this is a published (or frozen published) tagged word with `want`'s tag: the
    /// readers' fast test, equal to `may_hold` on every tagged word.
    #[inline]
    pub(crate) fn tagged_with(self, want: Want) -> bool {
        #[cfg(target_pointer_width = "64")]
        return self.0.addr() & Want::MASK == want.0;
        #[cfg(not(target_pointer_width = "64"))]
        {
            let _ = want;
            false
        }
    }

    /// Whether this word is neither empty nor tagged: moved, or a node stored untagged (an
    /// address at or above 2^48, or any node on a 32-bit target). Only such a word can need
    /// more than [`tagged_with`](Self::tagged_with) from a reader.
    #[inline]
    pub(crate) fn unusual(self) -> bool {
        // Neither TAGGED nor empty (0 or FROZEN alone): with FROZEN masked off, the word
        // is in 1..TAGGED. One subtraction and one compare, for a loop's common case.
        #[cfg(target_pointer_width = "64")]
        return (self.0.addr() & !FROZEN).wrapping_sub(1) < TAGGED - 1;
        #[cfg(not(target_pointer_width = "64"))]
        return !self.is_empty();
    }

    /// Whether this is a published word whose node may have hash tag `tag` (always true
    /// for an untagged word: its node must be looked at).
    #[inline]
    pub(crate) fn may_hold(self, tag: usize) -> bool {
        if self.is_pending() || self.is_empty() || self.is_moved() {
            return false;
        }
        #[cfg(target_pointer_width = "64")]
        {
            let a = self.0.addr();
            a & TAGGED == 0 || (a & TAG_BITS) == (TAGGED | (tag << TAG_SHIFT))
        }
        #[cfg(not(target_pointer_width = "64"))]
        {
            let _ = tag;
            true
        }
    }
}

/// A reader's probe filter for one hash tag: the bits a published, tagged word with that tag
/// has under [`Want::MASK`], so that one mask and compare per slot
/// ([`Word::tagged_with`]) accepts exactly the published (or frozen published) tagged words
/// with the tag. Every other word fails that test; of those, only the rare
/// [`unusual`](Word::unusual) ones (moved, or an untagged node) need the slower checks.
#[derive(Clone, Copy)]
pub(crate) struct Want(usize);

impl Want {
    /// The tag bits, `PENDING` and `MOVED` (a moved word is untagged, so `TAGGED` already
    /// tells it apart; `MOVED` is kept for clarity). `FROZEN` is left out: a reader treats
    /// a frozen published word as published.
    #[cfg(target_pointer_width = "64")]
    const MASK: usize = TAG_BITS | PENDING | MOVED;

    #[inline]
    pub(crate) fn new(tag: usize) -> Self {
        #[cfg(target_pointer_width = "64")]
        return Self(TAGGED | (tag << TAG_SHIFT));
        #[cfg(not(target_pointer_width = "64"))]
        {
            let _ = tag;
            Self(0)
        }
    }
}

/// A group's control word (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ctrl(pub(crate) u64);

const OVERFLOW_MASK: u64 = 0xffff;
const NAMED_SHIFT: u32 = 16;
const NAMED_MASK: u64 = 0xffff << NAMED_SHIFT;
const GROUP_FROZEN: u64 = 1 << 32;
const GROUP_MOVED: u64 = 1 << 33;
const VERSION_SHIFT: u32 = 34;
/// The largest overflow count: a count that reaches it is *saturated* and stays there
/// (it no longer counts exactly, so it must never be lowered to zero).
pub(crate) const MAX_OVERFLOW: u64 = OVERFLOW_MASK;
/// The largest probe offset (in slots) `named` can hold: the farthest a new insert may
/// claim a slot from its home.
pub(crate) const MAX_NAMED: usize = 0xfffe;

impl Ctrl {
    pub(crate) const NEW: Self = Self(0);

    #[inline]
    pub(crate) fn overflow(self) -> u64 {
        self.0 & OVERFLOW_MASK
    }

    /// The probe offset of the committed, unpublished insert, if any.
    #[inline]
    pub(crate) fn named(self) -> Option<usize> {
        match (self.0 & NAMED_MASK) >> NAMED_SHIFT {
            0 => None,
            n => Some(n as usize - 1),
        }
    }

    #[inline]
    pub(crate) fn is_frozen(self) -> bool {
        self.0 & GROUP_FROZEN != 0
    }

    #[inline]
    pub(crate) fn is_moved(self) -> bool {
        self.0 & GROUP_MOVED != 0
    }

    #[inline]
    pub(crate) fn version(self) -> u64 {
        self.0 >> VERSION_SHIFT
    }

    /// This word with the version bumped (wrapping within its 30 bits).
    #[inline]
    fn bumped(self) -> Self {
        Self(self.0.wrapping_add(1 << VERSION_SHIFT))
    }

    /// A commit: version bumped, `named` set to `offset`, overflow raised by `passes`.
    #[inline]
    pub(crate) fn committed(self, offset: usize, passes: u64) -> Self {
        // A real check: an offset past MAX_NAMED would be masked to "nothing named" and
        // its insert would never be published (`Tuning::reach` keeps offsets in range).
        assert!(
            offset <= MAX_NAMED,
            "probe offset {offset} past what a commit can name"
        );
        debug_assert!(self.named().is_none(), "{self:?}");
        let named = ((offset as u64 + 1) << NAMED_SHIFT) & NAMED_MASK;
        Self((self.bumped().0 & !NAMED_MASK) | named).plus_overflow(passes)
    }

    /// `named` cleared (after its insert was published), version bumped.
    #[inline]
    pub(crate) fn unnamed(self) -> Self {
        Self(self.bumped().0 & !NAMED_MASK)
    }

    /// The overflow count raised by `n`, saturating at [`MAX_OVERFLOW`].
    #[inline]
    pub(crate) fn plus_overflow(self, n: u64) -> Self {
        let raised = (self.overflow() + n).min(MAX_OVERFLOW);
        Self((self.0 & !OVERFLOW_MASK) | raised)
    }

    /// The overflow count lowered by one; a saturated count stays saturated.
    #[inline]
    pub(crate) fn minus_overflow(self) -> Self {
        debug_assert!(self.overflow() > 0, "overflow count underflow: {self:?}");
        if self.overflow() == MAX_OVERFLOW {
            return self;
        }
        Self(self.0 - 1)
    }

    #[inline]
    pub(crate) fn frozen(self) -> Self {
        Self(self.0 | GROUP_FROZEN)
    }

    #[inline]
    pub(crate) fn moved(self) -> Self {
        Self(self.0 | GROUP_MOVED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_words_round_trip() {
        let node = Box::into_raw(Box::new(Node::new(0x1234_5678_9abc_def0, 1u64, 2u64, 0)));
        let tag = tag_of(0x1234_5678_9abc_def0);
        let w = Word::published(node, tag);
        assert_eq!(w.node(), Some(node));
        assert!(w.may_hold(tag));
        assert!(!w.may_hold(tag ^ 1) || node.addr() >> 48 != 0);
        let p = w.pending();
        assert!(p.is_pending() && !p.may_hold(tag));
        // The readers' fast filter agrees with `may_hold` on every kind of word.
        let untagged = Word::<u64, u64>(node.map_addr(|a| a & !TAG_BITS));
        let kinds = [
            w,
            p,
            w.frozen(),
            p.frozen(),
            untagged,
            Word::EMPTY,
            Word::EMPTY.frozen(),
            Word::moved(),
            Word::moved().frozen(),
        ];
        // `unusual`'s one-compare form is its definition (untagged and not empty), on every
        // kind of word and at the edges of its range.
        #[cfg(target_pointer_width = "64")]
        for a in [
            0,
            1,
            FROZEN,
            PENDING | FROZEN,
            MOVED,
            MOVED | FROZEN,
            1 << 48,
            TAGGED - 8,
            (TAGGED - 8) | PENDING,
            (TAGGED - 8) | FROZEN,
            TAGGED,
            TAGGED | FROZEN,
            usize::MAX,
        ]
        .into_iter()
        .chain(kinds.iter().map(|w| w.0.addr()))
        {
            let word = Word::<u64, u64>(std::ptr::without_provenance_mut(a));
            let defined = a & TAGGED == 0 && !word.is_empty();
            assert_eq!(word.unusual(), defined, "word {a:#x}");
        }
        for (k, word) in kinds.into_iter().enumerate() {
            for t in [tag, tag ^ 1, 0, 0x7fff] {
                let fast = word.tagged_with(Want::new(t));
                let slow = word.may_hold(t);
                assert_eq!(
                    fast || (word.unusual() && slow),
                    slow,
                    "word kind {k}, tag {t:#x}"
                );
                assert!(!fast || !word.unusual(), "word kind {k}");
            }
        }
        assert!(w.tagged_with(Want::new(tag)) || node.addr() >> 48 != 0);
        assert!(Word::<u64, u64>::moved().unusual() && untagged.unusual());
        assert!(!Word::<u64, u64>::EMPTY.frozen().unusual() && !w.frozen().unusual());
        assert_eq!(p.node(), Some(node));
        assert_eq!(p.unpending(), w);
        let f = w.frozen();
        assert!(f.is_frozen() && f.node() == Some(node));
        assert!(Word::<u64, u64>::EMPTY.is_empty() && Word::<u64, u64>::EMPTY.node().is_none());
        let m = Word::<u64, u64>::moved();
        assert!(m.is_moved() && m.frozen().is_moved() && m.node().is_none());
        assert!(Word::<u64, u64>::EMPTY.frozen().is_empty());
        // SAFETY: 1. from `Box::into_raw` above, with its provenance; 2. freed once, and no
        // word made from it is used after.
        drop(unsafe { Box::from_raw(node) });
    }

    #[test]
    fn control_words_keep_their_fields_apart() {
        let c = Ctrl::NEW.plus_overflow(3);
        assert_eq!((c.overflow(), c.named(), c.version()), (3, None, 0));
        let c = c.committed(MAX_NAMED, 2);
        assert_eq!(
            (c.overflow(), c.named(), c.version()),
            (5, Some(MAX_NAMED), 1)
        );
        let c = c.unnamed().minus_overflow();
        assert_eq!((c.overflow(), c.named(), c.version()), (4, None, 2));
        let full = Ctrl::NEW.plus_overflow(MAX_OVERFLOW - 1).plus_overflow(5);
        assert_eq!(full.overflow(), MAX_OVERFLOW, "saturates");
        assert_eq!(full.minus_overflow(), full, "a saturated count stays");
        assert_eq!((full.named(), full.version()), (None, 0));
        let c = c.frozen();
        assert!(c.is_frozen() && !c.is_moved());
        let c = c.moved();
        assert!(c.is_frozen() && c.is_moved() && c.overflow() == 4 && c.version() == 2);
        let top = Ctrl(!(GROUP_FROZEN | GROUP_MOVED | NAMED_MASK | OVERFLOW_MASK));
        assert_eq!(
            top.unnamed().version(),
            0,
            "the version wraps within its bits"
        );
        assert_eq!(top.unnamed().overflow(), 0);
    }
}
