#![doc = include_str!("../README.md")]
//!
//! # Architecture
//!
//! | layer | module | what it holds |
//! |-------|--------|---------------|
//! | public API | `cache` | [`Cache`], [`CacheBuilder`], [`Pinned`], the reaper |
//! | policy | `policy`, `stats` | [`RemovalCause`], the listener, [`CacheStats`] |
//! | segment | `segment` | one table + one wheel + the lock-free hand-off between them |
//! | table | `table` | a lock-free split-ordered list per segment (Shalev & Shavit) |
//! | wheel | `wheel` | a hierarchical timing wheel per segment (Varghese & Lauck) |
//! | clock | `clock` | [`Clock`], [`MonotonicClock`], [`ManualClock`], ticks |
//! | memory | `reclaim` | limbo batches handed to crossbeam-epoch |
//! | shim | `sync` | atomics, cells and locks: `std`, or loom under `--cfg loom` |

mod cache;
mod clock;
mod policy;
mod reclaim;
mod segment;
mod stats;
mod sync;
mod table;
mod wheel;

pub use cache::{Cache, CacheBuilder, Pinned};
pub use clock::{Clock, ManualClock, MonotonicClock};
pub use policy::RemovalCause;
pub use stats::CacheStats;

/// The most segments a cache may have (see [`CacheBuilder::segments`]).
pub use cache::builder_limits::MAX_SEGMENTS;
