//! Reclamation lanes: which group of threads a node belongs to, so that it is freed by a
//! thread of the group that allocated it (how: "Lanes" in `entry::reclaim`).
//!
//! Why: freeing a node frees two allocations, the node and usually the value's (an
//! `Arc`'s contents). With a per-segment queue, whichever thread took the turn freed them,
//! and in a server that is most often not the thread that allocated them. glibc's
//! allocator (ptmalloc) gives each thread an arena; a chunk freed by another thread goes
//! back to its own arena under that arena's lock once the freeing thread's small cache
//! (tcache) is full, and collides there with the owner's own `malloc`s: the loser sleeps
//! on a futex. In the session workload at two threads (`strace -f -k -e futex` showed the
//! waits in `layout::free` and `NodeBox::new`) that made insert and remove p99.9 about 50 us
//! against 12 us with jemalloc preloaded, whose thread caches hand such frees back in bulk.

use crate::sync;
use std::cell::Cell;

/// Reclamation lanes per segment (see "Lanes" in `entry::reclaim`): threads are dealt
/// lanes round robin, and a node is filed under its allocating thread's.
pub(crate) const LANES: usize = 8;

sync::thread_cell! {
    /// This thread's lane, once dealt (`u8::MAX` before).
    static LANE: Cell<u8> = Cell::new(u8::MAX);
}

/// The calling thread's reclamation lane (below [`LANES`]), dealt on first use.
pub(crate) fn home_lane() -> usize {
    LANE.with(|lane| {
        let dealt = usize::from(lane.get());
        if dealt < LANES {
            return dealt;
        }
        let dealt = sync::thread_ordinal() % LANES;
        // `LANES` fits in a `u8` (8), so this is exact.
        lane.set(dealt as u8);
        dealt
    })
}
