#![doc = include_str!("guide.md")]
//!
//! # Architecture
//!
//! | layer | module | what it holds |
//! |-------|--------|---------------|
//! | public API | `cache` | [`Cache`], [`CacheBuilder`], [`Pinned`], coalesced loads, iteration, `compute`, `Policy`, the reaper |
//! | policy | `evict`, `policy`, `stats` | the capacity bound (S3-FIFO) and idle limits; [`RemovalCause`], the listener, [`CacheStats`] |
//! | segment | `segment` | one table + one wheel + the lock-free hand-off between them |
//! | table | `table` | lock-free open addressing per segment: cache-line groups, overflow counts, incremental migration |
//! | wheel | `wheel` | a hierarchical timing wheel per segment (Varghese & Lauck) |
//! | clock | `clock` | [`Clock`], [`MonotonicClock`], [`ManualClock`], ticks |
//! | memory | `reclaim` | retired batches, their grace periods, bounded frees |
//! | shim | `sync` | atomics, cells, locks, thread-locals: `std`, or loom under `--cfg wheelcache_loom` |

mod cache;
mod clock;
mod evict;
mod policy;
mod reclaim;
mod segment;
mod stats;
mod sync;
mod table;
mod wheel;

pub use cache::{
    Cache, CacheBuilder, Computed, Expiry, IntoClones, Iter, Op, Pinned, Policy, MAX_RECLAIM_WAIT,
};
pub use clock::{Clock, ManualClock, MonotonicClock, MIN_TICK};
pub use policy::RemovalCause;
pub use stats::CacheStats;

/// The most segments a cache may have (see [`CacheBuilder::segments`]), and the largest
/// pre-sizing honoured (see [`CacheBuilder::initial_capacity`]).
pub use cache::builder_limits::{MAX_INITIAL_CAPACITY, MAX_SEGMENTS};
