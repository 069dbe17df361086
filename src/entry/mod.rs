//! The entry: the node every other layer stores, links, schedules and frees.
//!
//! | module | what it holds |
//! |--------|---------------|
//! | `node` | the node, its flags word and the guarded handle (`NodePtr`) |
//! | `layout` | what goes in front of a node (extension, weight, timer), how it is found, and the owned handle that allocates and frees it (`NodeBox`) |
//! | `links` | which of its links fields each intrusive list or stack threads it through |
//! | `cause` | why an entry left ([`RemovalCause`]) |
//! | `lifecycle` | the flags' named transitions, and who may make each |
//! | `reclaim` | retired batches, their grace periods, bounded frees |
//!
//! Everything above imports from here; this module imports only the clock's tick
//! constants, the intrusive list and stack, and the `sync` shim.

pub(crate) mod cause;
pub(crate) mod lane;
pub(crate) mod layout;
mod lifecycle;
pub(crate) mod links;
pub(crate) mod node;
pub(crate) mod reclaim;

pub use cause::RemovalCause;

#[cfg(test)]
mod tests;
