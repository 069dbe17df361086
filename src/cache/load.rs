//! Coalesced loads: one caller per missing key runs the loader, the others wait for it.
//!
//! A *flight* is one load in progress. Flights live beside the table, not in it: one
//! short `Mutex<Vec<Slot>>` per segment lists the keys being loaded there, so the table
//! stays lock-free and a hit never looks at them. The protocol, for a caller of `key`:
//! 1. look the key up in the cache; a live entry is the answer;
//! 2. lock the segment's flight list; if a flight for an equal key is listed, take a
//!    handle to it, unlock, and wait on it; otherwise list a new flight (the caller is now
//!    its *leader*), unlock, and run the loader **unpinned and with no lock held**;
//! 3. the leader stores the value (through `get_or_insert_with`'s insert, so an entry
//!    that appeared meanwhile wins and is what everybody gets), publishes the outcome on
//!    the flight, wakes the waiters and unlists the flight.
//!
//! Waiters park on the flight's condition variable: not pinned, holding no lock while
//! parked. An outcome a waiter cannot use (the loader panicked, or it produced an error or
//! "nothing" that this caller's kind of load does not share) sends it back to step 1, where
//! the first to relist becomes the next leader: so after a panicking loader exactly one
//! waiter retries while the others wait for it.
//!
//! ## Invariants
//! - A flight is listed from before its loader runs until after its outcome is published,
//!   and a caller becomes leader only if, under the list's lock, it finds neither a
//!   flight nor a live entry: a flight that stored the key and unlisted (under that lock)
//!   after the caller's first look is seen by that second look, so it is not run twice.
//!   (The loom model `two_callers_share_one_load` found the run-twice interleaving when
//!   the second look was missing.)
//! - The only user code under a flight-list lock is the key's `Eq`, comparing the caller's
//!   key with listed ones and in the second look's table lookup. A key's `Eq` calling
//!   back into a coalesced load would deadlock on that lock, so it panics instead (a
//!   thread-local flag). Keys and values are dropped, and values cloned, after unlocking.
//! - A leader whose loader calls back for the same key would wait for itself: that call
//!   panics with a message saying so (the flight records its leader's thread).
//! - A leader's store runs user code too (the listener hears what the store displaced or
//!   refused; a displaced value's `Drop` runs), while the flight is still listed. A call
//!   for the key (or one of the same hash) from there would wait for a store that waits
//!   for it, so it does not coalesce: it loads on its own and stores its value as
//!   `get_or_insert_with` would ([`Found::Nested`]). The slot records the storing thread when the leader takes
//!   the key back (the store never moves between threads, even for a task).
//!
//! The same design as quick_cache's placeholder guard and Caffeine's `compute`-based
//! loading, except that the placeholder is outside the table.

use crate::sync::{self, Condvar, Mutex, ThreadId};
use std::any::Any;
use std::cell::Cell;
use std::sync::Arc;

/// What a loader produced.
pub(crate) enum Outcome<V> {
    /// A value (stored in the cache unless the cache refuses it, see `get_with`).
    Value(Arc<V>),
    /// `optionally_get_with`'s loader returned `None`.
    Nothing,
    /// `try_get_with`'s loader failed: an `Arc<E>` behind `dyn Any`, shared as is.
    Error(Arc<dyn Any + Send + Sync>),
}

impl<V> Clone for Outcome<V> {
    fn clone(&self) -> Self {
        match self {
            Self::Value(v) => Self::Value(Arc::clone(v)),
            Self::Nothing => Self::Nothing,
            Self::Error(e) => Self::Error(Arc::clone(e)),
        }
    }
}

enum State<V> {
    Loading,
    Done(Outcome<V>),
    /// The leader unwound before publishing (its loader, or storing, panicked).
    Abandoned,
}

/// One load in progress.
pub(crate) struct Flight<V> {
    state: Mutex<State<V>>,
    /// Wakes parked (synchronous) waiters.
    done: Condvar,
    /// Wakes awaiting (asynchronous) waiters.
    #[cfg(feature = "async")]
    event: event_listener::Event,
    /// The leading thread, for a synchronous load (an asynchronous one may move between
    /// threads, and several tasks share one, so it records none).
    leader: Option<ThreadId>,
}

impl<V> Flight<V> {
    /// Parks until the flight ends; `None` if it was abandoned. No lock is held while
    /// parked; the outcome is cloned as `Arc`s (no user code under the flight's lock).
    pub(crate) fn wait(&self) -> Option<Outcome<V>> {
        let mut state = sync::lock(&self.state);
        loop {
            match &*state {
                State::Loading => state = sync::wait(&self.done, state),
                State::Done(outcome) => return Some(outcome.clone()),
                State::Abandoned => return None,
            }
        }
    }

    /// The outcome if the flight has ended (`Some(None)`: abandoned), `None` while loading.
    #[cfg(feature = "async")]
    fn peek(&self) -> Option<Option<Outcome<V>>> {
        let state = sync::lock(&self.state);
        match &*state {
            State::Loading => None,
            State::Done(outcome) => Some(Some(outcome.clone())),
            State::Abandoned => Some(None),
        }
    }

    /// [`wait`](Self::wait) for a task: awaits the flight's end without blocking its
    /// thread. A listener is registered before the second look, so an end between the two
    /// looks still wakes it (`event_listener`'s protocol).
    #[cfg(feature = "async")]
    pub(crate) async fn wait_async(&self) -> Option<Outcome<V>> {
        loop {
            if let Some(ended) = self.peek() {
                return ended;
            }
            let listener = self.event.listen();
            if let Some(ended) = self.peek() {
                return ended;
            }
            listener.await;
        }
    }

    fn end(&self, to: State<V>) {
        let old = {
            let mut state = sync::lock(&self.state);
            std::mem::replace(&mut *state, to)
        };
        self.done.notify_all();
        #[cfg(feature = "async")]
        self.event.notify(usize::MAX);
        drop(old);
    }
}

/// A listed flight: the key being loaded (taken by the leader once it stores) and the
/// flight itself.
struct Slot<K, V> {
    hash: u64,
    key: Option<K>,
    flight: Arc<Flight<V>>,
    /// The thread storing the flight's value, once the key is taken back (see
    /// [`Lead::take_key`]).
    storer: Option<ThreadId>,
    /// A call back from that store is loading on its own ([`Found::Nested`]): a second
    /// one from inside it would recurse for ever, so it panics as a loader asking for its
    /// own key does.
    nested: bool,
}

/// One segment's listed flights.
type List<K, V> = Mutex<Vec<Slot<K, V>>>;

/// The flight lists, one per segment.
pub(crate) struct Flights<K, V> {
    lists: Box<[List<K, V>]>,
}

sync::thread_cell! {
    /// Set while this thread compares keys under a flight-list lock.
    static COMPARING: Cell<bool> = Cell::new(false);
}

/// What step 2 found.
pub(crate) enum Found<'a, K, V> {
    /// Another caller is loading this key (or storing a key with the same hash, which the
    /// caller cannot tell apart without its key: then the caller retries after it ends).
    Wait {
        flight: Arc<Flight<V>>,
        /// False when the listed flight's key was already taken to be stored (same hash).
        same_key: bool,
        /// The caller's key, handed back for the retry.
        key: K,
    },
    /// The caller leads: it runs the loader, then calls [`Lead::take_key`] and [`Lead::finish`].
    Lead(Lead<'a, K, V>),
    /// No flight, but the key has a live entry now (stored by a flight that ended after
    /// the caller's first look): look again.
    Present(K),
    /// A flight listed for this hash is storing its value on this very thread: the
    /// caller was called back from that store (a listener, a `Drop`), and waiting would
    /// wait for itself. It loads on its own, uncoalesced, holding the guard while it does
    /// (see the module docs).
    Nested(K, NestedLoad<'a, K, V>),
}

/// The panic of a load that would wait for itself.
const OWN_KEY: &str = "wheelcache: the loader of a coalesced load (`get_with` and friends) \
                       asked for its own key, which would wait for itself for ever";

/// What [`Flights::join`] found in a segment's list.
enum Search<V> {
    /// This thread's own storing flight, at this index.
    Storing(usize),
    /// A flight to wait for: one loading an equal key (true), or storing a key of the
    /// same hash (false).
    Listed(Arc<Flight<V>>, bool),
    None,
}

impl<K: Eq, V> Flights<K, V> {
    pub(crate) fn new(segments: usize) -> Self {
        Self {
            lists: (0..segments).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    /// Step 2 of the protocol for `key` (hash `hash`, in segment `index`).
    ///
    /// # Panics
    /// If called from a key's `Eq` run by another flight lookup, or from the loader of a
    /// flight for this same key on this same thread (both would wait for themselves). A
    /// call from a flight's store on this thread is not a panic but [`Found::Nested`].
    ///
    /// `present` says whether the cache holds a live entry for the key; it is asked under
    /// the list's lock before the caller is made leader, so a flight that stored the key
    /// and unlisted after the caller's first look is not run again. `me` is the thread that
    /// leads if the caller leads (`None` for a task: see [`Flight::leader`]).
    pub(crate) fn join(
        &self,
        index: usize,
        hash: u64,
        key: K,
        present: impl FnOnce(&K) -> bool,
        me: Option<ThreadId>,
    ) -> Found<'_, K, V> {
        assert!(
            !COMPARING.with(Cell::get),
            "wheelcache: a key's `Eq` called a coalesced load (`get_with` and friends) \
             while being compared by one, which would deadlock"
        );
        let found = {
            let mut list = sync::lock(&self.lists[index]);
            match Self::search(&list, hash, &key) {
                Search::Storing(at) => {
                    let slot = &mut list[at];
                    if std::mem::replace(&mut slot.nested, true) {
                        drop(list);
                        panic!("{OWN_KEY}");
                    }
                    let flight = Arc::clone(&slot.flight);
                    drop(list);
                    let guard = NestedLoad {
                        flights: self,
                        index,
                        flight,
                    };
                    return Found::Nested(key, guard);
                }
                Search::Listed(flight, same_key) => Ok((flight, same_key, key)),
                Search::None if present(&key) => {
                    drop(list);
                    return Found::Present(key);
                }
                Search::None => {
                    let flight = Arc::new(Flight {
                        state: Mutex::new(State::Loading),
                        done: Condvar::new(),
                        #[cfg(feature = "async")]
                        event: event_listener::Event::new(),
                        leader: me,
                    });
                    list.push(Slot {
                        hash,
                        key: Some(key),
                        flight: Arc::clone(&flight),
                        storer: None,
                        nested: false,
                    });
                    Err(flight)
                }
            }
        };
        match found {
            Ok((flight, same_key, key)) => {
                if same_key && me.is_some() && flight.leader == me {
                    panic!("{OWN_KEY}");
                }
                Found::Wait {
                    flight,
                    same_key,
                    key,
                }
            }
            Err(flight) => Found::Lead(Lead {
                flights: self,
                index,
                flight,
                listed: true,
            }),
        }
    }

    /// The flight listed for `hash` that a caller of `key` meets: a flight this thread is
    /// storing first (a call back from that store must not wait, even behind another
    /// flight of the same hash), else the first loading an equal key or storing a key of
    /// the same hash. Runs the keys' `Eq` under the list's lock.
    fn search(list: &[Slot<K, V>], hash: u64, key: &K) -> Search<V> {
        let storing = |slot: &Slot<K, V>| slot.key.is_none() && slot.storer.is_some();
        if list.iter().any(|slot| slot.hash == hash && storing(slot)) {
            let me = Some(sync::thread_id());
            if let Some(at) = list
                .iter()
                .position(|slot| slot.hash == hash && storing(slot) && slot.storer == me)
            {
                return Search::Storing(at);
            }
        }
        list.iter()
            .find_map(|slot| {
                if slot.hash != hash {
                    return None;
                }
                let same = match &slot.key {
                    Some(theirs) => {
                        let _comparing = sync::Raised::raise(&COMPARING);
                        *theirs == *key
                    }
                    None => return Some(Search::Listed(Arc::clone(&slot.flight), false)),
                };
                same.then(|| Search::Listed(Arc::clone(&slot.flight), true))
            })
            .unwrap_or(Search::None)
    }
}

/// A call back from this thread's store of a flight, loading on its own: while it lives,
/// a second call back for the flight's hash from inside it panics (see [`Slot::nested`]).
pub(crate) struct NestedLoad<'a, K, V> {
    flights: &'a Flights<K, V>,
    index: usize,
    flight: Arc<Flight<V>>,
}

impl<K, V> Drop for NestedLoad<'_, K, V> {
    fn drop(&mut self) {
        let mut list = sync::lock(&self.flights.lists[self.index]);
        // The flight is still listed: its store is under way on this thread, below us.
        if let Some(slot) = list
            .iter_mut()
            .find(|s| Arc::ptr_eq(&s.flight, &self.flight))
        {
            slot.nested = false;
        }
    }
}

/// A leader's duty: publish an outcome, or, if dropped without one (a panic), abandon the
/// flight so one waiter retries.
pub(crate) struct Lead<'a, K, V> {
    flights: &'a Flights<K, V>,
    index: usize,
    flight: Arc<Flight<V>>,
    listed: bool,
}

impl<K, V> Lead<'_, K, V> {
    /// Takes the key back to store it, on this thread (the store must not move between
    /// threads: a call back from it is told apart by the thread, see [`Found::Nested`]).
    /// The flight stays listed (callers for the same hash wait for it and then retry), so
    /// nobody starts a second load before the value is in.
    pub(crate) fn take_key(&mut self) -> K {
        let mut list = sync::lock(&self.flights.lists[self.index]);
        let slot = list
            .iter_mut()
            .find(|s| Arc::ptr_eq(&s.flight, &self.flight))
            .expect("a leader's flight stays listed until it ends");
        slot.storer = Some(sync::thread_id());
        slot.key.take().expect("the key is taken once")
    }

    /// Publishes `outcome`, wakes the waiters and unlists the flight.
    pub(crate) fn finish(mut self, outcome: Outcome<V>) {
        self.flight.end(State::Done(outcome));
        self.unlist();
    }

    fn unlist(&mut self) {
        if !self.listed {
            return;
        }
        self.listed = false;
        let slot = {
            let mut list = sync::lock(&self.flights.lists[self.index]);
            list.iter()
                .position(|s| Arc::ptr_eq(&s.flight, &self.flight))
                .map(|at| list.swap_remove(at))
        };
        // The key (if still there) and the handle drop here, unlocked.
        drop(slot);
    }
}

impl<K, V> Drop for Lead<'_, K, V> {
    fn drop(&mut self) {
        if self.listed {
            // Unlist first: a waiter woken by `Abandoned` must find the list free to lead.
            self.unlist();
            self.flight.end(State::Abandoned);
        }
    }
}
