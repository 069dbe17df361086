//! The background reaper under loom (a model thread there, woken by yields instead of a
//! timed park): the drop of the cache's last handle, at any point of the reaper's rounds,
//! frees every entry before it returns, and the reaper exits.

use std::time::Duration;
use wheelcache::{Cache, ManualClock};
use wheelcache_loom_tests::{model_with_branches, Arc, AtomicUsize, Fixed, Ordering, Probe};

const MS: Duration = Duration::from_millis(1);

/// A value that counts its drops (and, through its `Probe`, catches use after free and
/// leaks).
#[derive(Debug)]
struct Counted {
    _probe: Probe,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// One entry due (the reaper's rounds expire it), one live; the last handle drops while
/// the reaper may be anywhere in a round. When `drop` returns both values are dropped.
/// (Before the handle count, a round's upgrade could leave the reaper holding the last
/// reference, so the values were dropped later, on the reaper thread.)
#[test]
fn the_last_drop_racing_the_reaper_frees_everything() {
    model_with_branches(20_000, || {
        let dropped = Arc::new(AtomicUsize::new(0));
        let clock = ManualClock::new();
        let cache: Cache<u8, Counted, Fixed> = Cache::builder()
            .segments(1)
            .clock(clock.clone())
            .hasher(Fixed::default())
            .background_reaper(MS)
            .build();
        let value = |id| Counted {
            _probe: Probe::new(id),
            dropped: dropped.clone(),
        };
        cache.insert_with_ttl(1, value(1), MS);
        cache.insert(2, value(2));
        clock.advance(MS);
        drop(cache);
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            2,
            "a value outlived the last handle's drop"
        );
    });
}
