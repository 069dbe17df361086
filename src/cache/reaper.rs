//! The optional background reaper: maintenance for a cache that goes quiet.
//!
//! Writes and reads maintain their own segment, so a busy cache needs no thread. A quiet
//! one keeps its expired entries (and its last few timer requests and retired nodes) until
//! someone calls `run_pending_tasks`, or until this thread, which does one bounded
//! maintenance round per interval. It holds only a `Weak` reference, so it never keeps the cache alive; the
//! cache's `Drop` unparks it and it exits at once.

use super::Inner;
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The shortest interval accepted; shorter ones (zero included) are raised to it.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// Starts the reaper for `inner`; returns once it is registered for wake-ups.
pub(crate) fn spawn<K, V, S>(inner: &Arc<Inner<K, V, S>>, interval: Duration) -> std::io::Result<()>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    let interval = interval.max(MIN_INTERVAL);
    let weak: Weak<Inner<K, V, S>> = Arc::downgrade(inner);
    let handle = std::thread::Builder::new()
        .name("wheelcache-reaper".into())
        .spawn(move || loop {
            std::thread::park_timeout(interval);
            let Some(inner) = weak.upgrade() else { return };
            // One bounded round, as `run_pending_tasks` does it but without waiting for the
            // epoch: what is not yet free is freed on a later round. The upgrade may briefly
            // make this thread the last owner; then the cache is dropped here, which is
            // fine: `Drop` does not join us.
            inner.reap();
        })?;
    let _ = inner.reaper.set(handle.thread().clone());
    Ok(())
}
