//! The entry: the node every other layer stores, links, schedules and frees.
//!
//! | module | what it holds |
//! |--------|---------------|
//! | `node` | the node's layouts (plain, extended, timed), its flags word and the raw handles (`NodeBox`, `NodePtr`) |
//! | `departure` | why an entry left ([`RemovalCause`]) and the remover's hold (`Held`) |
//! | `reclaim` | retired batches, their grace periods, bounded frees |
//!
//! Everything above imports from here; this module imports only the clock's tick
//! constants and the `sync` shim.

pub(crate) mod departure;
pub(crate) mod node;
pub(crate) mod reclaim;

pub use departure::RemovalCause;
