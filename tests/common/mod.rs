//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wheelcache::RemovalCause;

/// Counts live instances; every `Tracked` dropped twice or never shows up in `live()`.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    created: AtomicUsize,
    dropped: AtomicUsize,
    live: AtomicIsize,
}

impl Ledger {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub(crate) fn created(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }
    pub(crate) fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
    pub(crate) fn live(&self) -> isize {
        self.live.load(Ordering::SeqCst)
    }
}

/// A value whose drops are counted in a [`Ledger`]; `Clone` counts as a creation.
#[derive(Debug)]
pub(crate) struct Tracked {
    pub(crate) id: u64,
    ledger: Arc<Ledger>,
    dropped: bool,
}

impl Tracked {
    pub(crate) fn new(id: u64, ledger: &Arc<Ledger>) -> Self {
        ledger.created.fetch_add(1, Ordering::SeqCst);
        ledger.live.fetch_add(1, Ordering::SeqCst);
        Self {
            id,
            ledger: Arc::clone(ledger),
            dropped: false,
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Self::new(self.id, &self.ledger)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        assert!(!self.dropped, "dropped twice");
        self.dropped = true;
        self.ledger.dropped.fetch_add(1, Ordering::SeqCst);
        self.ledger.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Records every listener call.
#[derive(Debug, Default, Clone)]
pub(crate) struct Events(pub Arc<Mutex<Vec<(u64, u64, RemovalCause)>>>);

impl Events {
    pub(crate) fn take(&self) -> Vec<(u64, u64, RemovalCause)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    pub(crate) fn push(&self, k: u64, v: u64, c: RemovalCause) {
        self.0.lock().unwrap().push((k, v, c));
    }
}
