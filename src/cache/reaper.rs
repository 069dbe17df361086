//! The optional background reaper: maintenance for a cache that goes quiet.
//!
//! Writes and reads maintain their own segment, so a busy cache needs no thread. A quiet
//! one keeps its expired entries (and its last few timer requests and retired nodes) until
//! someone calls `run_pending_tasks`, or until this thread, which does one bounded
//! maintenance round per interval.
//!
//! ## Who frees the cache
//! The thread holds only a `Weak` reference, upgraded for the length of one round, so it
//! never keeps the cache alive between rounds. It must not free the cache either: the
//! guide promises that dropping the last handle frees every entry before `drop` returns,
//! and a round's upgrade, racing that drop, used to leave the reaper holding the last
//! strong reference (so the entries were freed later, on the reaper thread: 30 drops in
//! 400 here). So the handles are counted apart from the `Arc` (`Inner::handles`), and the
//! drop of the last one [`stop`]s the reaper: it sets the stop flag, wakes the thread and
//! joins it, waiting at most for the round in progress (bounded, as every full turn is,
//! listener calls included). The thread checks the flag before each upgrade, so once it
//! is joined nobody but the dropping handle holds the cache, which then drops there.
//!
//! The one exception is a last handle dropped *on the reaper thread*, inside its round (a
//! listener that owned it): joining would wait for itself, so the round finishes and the
//! cache drops at its end, on that thread, before the reaper exits.

use super::Inner;
use crate::sync::{self, AtomicBool, JoinHandle, Mutex, Ordering};
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The shortest interval accepted; shorter ones (zero included) are raised to it.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// A running reaper, as its cache sees it.
#[derive(Debug)]
pub(crate) struct Reaper {
    /// Set by the last handle's drop; the thread exits when it sees it.
    stop: Arc<AtomicBool>,
    /// Taken (once) by the last handle's drop, to wake and join the thread.
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Starts the reaper for `inner`; returns once it is registered for wake-ups.
pub(crate) fn spawn<K, V, S>(inner: &Arc<Inner<K, V, S>>, interval: Duration) -> std::io::Result<()>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    let interval = interval.max(MIN_INTERVAL);
    let weak: Weak<Inner<K, V, S>> = Arc::downgrade(inner);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let handle = sync::ThreadBuilder::new()
        .name("wheelcache-reaper".into())
        .spawn(move || {
            for round in 0.. {
                sync::park_timeout(interval, round);
                // Acquire pairs with the Release store in `stop`; checked before the
                // upgrade, so a reaper that saw it holds no reference any more (see the
                // module docs).
                if stopped.load(Ordering::Acquire) {
                    return;
                }
                let Some(inner) = weak.upgrade() else { return };
                // One bounded round, as `run_pending_tasks` does it but without waiting for
                // the epoch: what is not yet free is freed on a later round.
                inner.reap();
            }
        })?;
    let _ = inner.reaper.set(Reaper {
        stop,
        thread: Mutex::new(Some(handle)),
    });
    Ok(())
}

/// Stops `reaper` for the drop of its cache's last handle: sets the flag, wakes the thread
/// and waits for it to exit (at most one round), unless called on the reaper thread
/// itself (see the module docs).
pub(crate) fn stop(reaper: &Reaper) {
    // Release pairs with the thread's Acquire load. The flag publishes nothing (the join
    // below is what orders the thread's last round before the cache's drop), so Relaxed
    // would do; a stop flag's usual pair costs nothing once per cache.
    reaper.stop.store(true, Ordering::Release);
    let Some(handle) = sync::lock(&reaper.thread).take() else {
        return;
    };
    if handle.thread().id() == sync::thread_id() {
        return; // dropped inside our own round: it ends, then the cache drops here
    }
    handle.thread().unpark();
    // The thread runs no code of ours that panics; a listener's panic is caught.
    let _ = handle.join();
}
