//! Striped event counters, so counting never makes a shared hot cache line.
//!
//! Each thread is assigned a stripe (round-robin, on first use) and bumps only that
//! stripe's counters; [`Stats::snapshot`] sums the stripes. Counts are exact once the
//! counted operations have returned; a snapshot taken meanwhile may miss some in flight.

use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

/// A snapshot of a cache's counters, from [`Cache::stats`](crate::Cache::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// `get` and `pin().get` calls that found a live entry.
    pub hits: u64,
    /// `get` and `pin().get` calls that found nothing (or only an expired entry).
    pub misses: u64,
    /// Entries stored under a key that had no live entry.
    pub inserts: u64,
    /// Entries stored in place of a live entry with the same key.
    pub updates: u64,
    /// Entries removed by `remove` or `clear`.
    pub removals: u64,
    /// Entries that left because their TTL passed (found by the wheel, or found expired by
    /// `remove`, `clear` or a replacing insert), plus zero-TTL inserts.
    pub expirations: u64,
    /// Entries evicted to respect a capacity bound (none yet: no bound is configurable).
    pub evictions: u64,
    /// Entries in the cache, expired ones included until maintenance removes them.
    pub len: usize,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    Hit = 0,
    Miss,
    Insert,
    Update,
    Removal,
    Expiration,
}

const EVENTS: usize = 6;

#[derive(Debug, Default)]
struct Stripe([AtomicU64; EVENTS]);

#[derive(Debug)]
pub(crate) struct Stats {
    stripes: Box<[CachePadded<Stripe>]>,
}

/// Hands out stripe numbers to threads, round-robin.
static NEXT_STRIPE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

std::thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

impl Stats {
    /// `threads` is a hint: stripes are the next power of two at or above twice it.
    pub(crate) fn new(threads: usize) -> Self {
        // One stripe under loom: the stripe a thread gets depends on a process-wide
        // counter, which would make models nondeterministic.
        let n = if crate::sync::MODEL {
            1
        } else {
            threads.saturating_mul(2).clamp(1, 256).next_power_of_two()
        };
        Self {
            stripes: (0..n)
                .map(|_| CachePadded::new(Stripe::default()))
                .collect(),
        }
    }

    #[inline]
    pub(crate) fn record(&self, event: Event) {
        self.add(event, 1);
    }

    #[inline]
    pub(crate) fn add(&self, event: Event, n: u64) {
        let stripe = if self.stripes.len() == 1 {
            0
        } else {
            STRIPE.try_with(|s| *s).unwrap_or(0) & (self.stripes.len() - 1)
        };
        // Relaxed: counters order nothing; a snapshot is a sum of independent counts.
        self.stripes[stripe].0[event as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, len: usize) -> CacheStats {
        let sum = |e: Event| {
            self.stripes
                .iter()
                .map(|s| s.0[e as usize].load(Ordering::Relaxed))
                .sum()
        };
        CacheStats {
            hits: sum(Event::Hit),
            misses: sum(Event::Miss),
            inserts: sum(Event::Insert),
            updates: sum(Event::Update),
            removals: sum(Event::Removal),
            expirations: sum(Event::Expiration),
            evictions: 0,
            len,
        }
    }
}
