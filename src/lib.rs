#![doc = include_str!("guide.md")]
//!
//! # Architecture
//!
//! | layer | module | what it holds |
//! |-------|--------|---------------|
//! | public API and engine | `cache` | [`Cache`] and its docs (`api_keyed`, `api_whole`), [`CacheBuilder`], [`Pinned`], iteration, `compute`, [`Policy`]; the engine by what it does (`read`, `write`, `load`, `maintain`), the listener (`listener`), the reaper |
//! | segment | `segment` | one table + one wheel + the eviction queues: the writers' side of the hand-off (`handoff`), the lock holder's (`maintain`), the remover's hold (`held`) |
//! | structures | `table`, `wheel`, `evict` | lock-free open addressing (`lookup`, `insert`, `remove`, `migrate`); a hierarchical timing wheel (Varghese & Lauck); the capacity bound (S3-FIFO) and idle limits |
//! | entry | `entry` | the node every layer stores (`node`), which of its links each structure uses (`links`), why it left (`cause`, [`RemovalCause`]), its reclamation (`reclaim`) |
//! | base | `clock`, `intrusive`, `stats`, `sync` | [`Clock`], [`MonotonicClock`], [`ManualClock`], ticks; the one intrusive list (wheel slots, eviction queues) and the one intrusive stack (hand-off, limbo, sealed batches); [`CacheStats`]; the shim: atomics, cells, locks, thread-locals (`std`, or loom under `--cfg wheelcache_loom`) |
//!
//! Imports run down the table: a module imports only from the rows below its own.

mod cache;
mod clock;
mod entry;
mod evict;
mod intrusive;
mod panics;
mod segment;
mod stats;
mod sync;
mod table;
mod wheel;

pub use cache::{
    Cache, CacheBuilder, Computed, Expiry, IntoClones, Iter, Op, Pinned, Policy, MAX_RECLAIM_WAIT,
};
pub use clock::{Clock, ManualClock, MonotonicClock, MIN_TICK};
pub use entry::RemovalCause;
/// The trait lookups take keys through: any `Q: Hash + Equivalent<K>`, which is every `Q`
/// that `K` borrows as (`&str` for a `String` key) and any type of yours that implements it
/// (a pair of `&str`s for a `(String, String)` key: see [`Cache::get`]). `Q` must hash as
/// the key it stands for. Re-exported from the [`equivalent`](https://docs.rs/equivalent)
/// crate, the trait hashbrown, indexmap and moka take lookups through.
pub use equivalent::Equivalent;
pub use stats::CacheStats;

pub use cache::builder_limits::MIN_SEGMENT_SHARE;
/// The most segments a cache may have (see [`CacheBuilder::segments`]), and the largest
/// pre-sizing honoured (see [`CacheBuilder::initial_capacity`]).
pub use cache::builder_limits::{MAX_INITIAL_CAPACITY, MAX_SEGMENTS};
