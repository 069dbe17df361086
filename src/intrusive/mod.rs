//! Intrusive links: the one doubly linked list and the one Treiber stack every layer
//! threads its nodes through.
//!
//! *Intrusive* means the links live inside the nodes, so linking allocates nothing and a
//! node is unlinked in O(1) from a pointer to it alone. A node may sit on several
//! structures at once as long as each uses its own links field: an entry's `wheel` links
//! carry it on a wheel slot's list or on a stack (the writers' hand-off, reclamation's
//! limbo), its extension's queue links on an eviction queue. Which field a structure uses
//! is named by an *adapter* type, the pattern of the `intrusive-collections` crate:
//! [`ListLinks`] for a list, [`StackLink`] for a stack.
//!
//! - [`list`]: a doubly linked list under its owner's lock: push at the front, insert
//!   after a node, pop and unlink anywhere in O(1). The first node's `prev` is the list's
//!   *tag*, a value that is not a node pointer, so a node can tell whether it leads its
//!   list, and which list that is, with no search (the wheel's cancel relies on it).
//! - [`stack`]: a lock-free LIFO (Treiber, 1986): any thread pushes with a `Release` CAS,
//!   one taker takes the whole chain with an `Acquire` swap and then walks it alone. Only
//!   whole-stack takes exist, so a popped node is never pushed back while another thread
//!   still reads it: the ABA problem of a single-node pop cannot arise.
//!
//! Neither structure owns its nodes: who keeps a node alive while it is linked, and who
//! may touch its links when, are obligations of the callers (each `unsafe fn` lists them).

pub(crate) mod list;
pub(crate) mod stack;

pub(crate) use list::{Links, List, ListLinks};
pub(crate) use stack::{Chain, Stack, StackLink};

#[cfg(test)]
mod tests;
