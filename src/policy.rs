//! Policy: why entries leave, and who is told.
//!
//! Every entry leaves by exactly one of the [`RemovalCause`]s, and the eviction listener
//! (if any) hears of each departure exactly once — except entries still present when the
//! cache itself is dropped, which are dropped silently (as in moka and Caffeine).
//!
//! The listener runs on the thread that removed the entry (a caller of `insert`, `remove`,
//! `clear`, a writer or reaper doing maintenance), after every internal lock is released,
//! so it may call back into the cache. A listener that panics is caught: the panic is
//! discarded (the panic hook has already reported it) and the cache carries on, as
//! Caffeine does with a throwing listener.
//!
//! The entry layout leaves room for a capacity bound (cause [`RemovalCause::Evicted`]) and
//! idle expiry; neither is configurable yet.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// Why an entry left the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Removed by `remove` or `clear`.
    Explicit,
    /// Replaced by an insert under the same key.
    Replaced,
    /// Its time-to-live passed.
    Expired,
    /// Evicted to respect a capacity bound.
    Evicted,
}

impl RemovalCause {
    /// Whether the cache removed the entry on its own (expiry or eviction) rather than at
    /// a caller's request.
    pub fn was_evicted(self) -> bool {
        matches!(self, Self::Expired | Self::Evicted)
    }
}

/// The listener's type.
pub(crate) type Listener<K, V> = Arc<dyn Fn(&K, &V, RemovalCause) + Send + Sync + 'static>;

/// Calls `listener`, catching (and discarding) a panic.
pub(crate) fn notify<K, V>(listener: &Listener<K, V>, key: &K, value: &V, cause: RemovalCause) {
    let _ = catch_unwind(AssertUnwindSafe(|| listener(key, value, cause)));
}
