//! Reclamation lanes: which group of threads a node belongs to, so that it is freed by a
//! thread of the group that allocated it (why: "Lanes" in `entry::reclaim`).

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
