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
//! waits for it to exit, which takes at most the round in progress. The thread checks the
//! flag before each upgrade, so once it has exited nobody but the dropping handle holds
//! the cache, which then drops there.
//!
//! The wait is bounded by [`STOP_WAIT`]: a round is bounded work, but it runs the
//! listener, and a listener may block on something the dropping thread holds (a lock it
//! took before dropping the cache), which no wait would see the end of. Past the bound
//! the drop returns, and the round's end frees the cache on the reaper thread. So is a
//! last handle dropped *on the reaper thread*, inside its round (a listener that owned
//! it): waiting would wait for itself.

use super::Inner;
use crate::sync::{self, AtomicBool, Condvar, JoinHandle, Mutex, Ordering};
use std::hash::{BuildHasher, Hash};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The shortest interval accepted; shorter ones (zero included) are raised to it.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// The longest the last handle's drop waits for the reaper's round in progress to end
/// (see the module docs).
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(1);

/// A running reaper, as its cache sees it.
#[derive(Debug)]
pub(crate) struct Reaper {
    shared: Arc<Shared>,
    /// Taken (once) by the last handle's drop, to wake the thread and wait for it.
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the cache and its reaper thread share.
#[derive(Debug, Default)]
struct Shared {
    /// Set by the last handle's drop; the thread exits when it sees it.
    stop: AtomicBool,
    /// Set by the thread as it exits (holding no reference to the cache any more).
    exited: Mutex<bool>,
    exit: Condvar,
}

/// Marks the thread exited when dropped: on its way out, also when unwinding.
struct Exiting(Arc<Shared>);

impl Drop for Exiting {
    fn drop(&mut self) {
        *sync::lock(&self.0.exited) = true;
        self.0.exit.notify_all();
    }
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
    let shared = Arc::new(Shared::default());
    let exiting = Exiting(Arc::clone(&shared));
    let handle = sync::ThreadBuilder::new()
        .name("wheelcache-reaper".into())
        .spawn(move || {
            // Dropped last, after every upgraded reference (they live in the loop).
            let exiting = exiting;
            for round in 0.. {
                sync::park_timeout(interval, round);
                // Acquire pairs with the Release store in `stop`; checked before the
                // upgrade, so a reaper that saw it holds no reference any more (see the
                // module docs).
                if exiting.0.stop.load(Ordering::Acquire) {
                    return;
                }
                let Some(inner) = weak.upgrade() else { return };
                // One bounded round, as `run_pending_tasks` does it but without waiting for
                // the epoch: what is not yet free is freed on a later round. The round
                // reads the user's clock, which may panic: that round is skipped, not the
                // reaper (nobody would see it end, and nothing would expire in the
                // background any more). A caller's maintenance lets the same panic
                // propagate, leaving the cache as it was; so does this round.
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| inner.reap())) {
                    crate::panics::discarded("a background reaper round (the clock?)", payload);
                }
            }
        })?;
    let _ = inner.reaper.set(Reaper {
        shared,
        thread: Mutex::new(Some(handle)),
    });
    Ok(())
}

/// Stops `reaper` for the drop of its cache's last handle: sets the flag, wakes the thread
/// and waits for it to exit (at most the round in progress, at most [`STOP_WAIT`]), unless
/// called on the reaper thread itself (see the module docs).
pub(crate) fn stop(reaper: &Reaper) {
    // Release pairs with the thread's Acquire load. The flag publishes nothing (the exit
    // handshake below is what orders the thread's last round before the cache's drop), so
    // Relaxed would do; a stop flag's usual pair costs nothing once per cache.
    reaper.shared.stop.store(true, Ordering::Release);
    let Some(handle) = sync::lock(&reaper.thread).take() else {
        return;
    };
    if handle.thread().id() == sync::thread_id() {
        return; // dropped inside our own round: it ends, then the cache drops here
    }
    handle.thread().unpark();
    let deadline = std::time::Instant::now() + STOP_WAIT;
    let mut exited = sync::lock(&reaper.shared.exited);
    while !*exited {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // (Not under loom, whose waits never time out and whose runs take real time.)
        if left.is_zero() && !sync::MODEL {
            return; // a listener blocked: the round's end frees the cache (module docs)
        }
        exited = sync::wait_timeout(&reaper.shared.exit, exited, left);
    }
    drop(exited);
    // It has exited (it only drops its last locals now): joining is immediate. The
    // thread catches the panics of the user code it runs (a listener's, a clock's).
    let _ = handle.join();
}
