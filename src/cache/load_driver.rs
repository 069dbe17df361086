//! The one driver of a coalesced load (see `load` for the protocol), for blocking callers
//! and for tasks alike, and the mapping between the three kinds of loader and a flight's
//! [`Outcome`].
//!
//! The driver is an `async fn`. A task awaits it; a blocking caller runs it with
//! [`run_ready`], which polls it once: its waits block inside the poll (`Flight::wait`)
//! and its loader runs inside it, so every await in it is ready at once and one poll ends
//! it. So the loop (look, join, wait or lead, store, publish) is written once.

use super::load::{Flight, Found, Outcome};
use super::read::Look;
use super::Inner;
use crate::sync::{self, ThreadId};
use crossbeam_epoch as epoch;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

impl<V: Clone> Outcome<V> {
    /// `get_with`'s loader produced `value`.
    pub(super) fn of_value(value: V) -> Self {
        Self::Value(Arc::new(value))
    }

    /// `try_get_with`'s loader produced `result`.
    pub(super) fn of_result<E: Send + Sync + 'static>(result: Result<V, E>) -> Self {
        match result {
            Ok(v) => Self::Value(Arc::new(v)),
            Err(e) => Self::Error(Arc::new(Arc::new(e))),
        }
    }

    /// `optionally_get_with`'s loader produced `option`.
    pub(super) fn of_option(option: Option<V>) -> Self {
        option.map_or(Self::Nothing, Self::of_value)
    }

    /// Whether a `get_with` caller takes another caller's outcome as its own.
    pub(super) fn for_value(&self) -> bool {
        matches!(self, Self::Value(_))
    }

    /// Whether a `try_get_with::<E>` caller does (an error of another type is not its).
    pub(super) fn for_result<E: Send + Sync + 'static>(&self) -> bool {
        match self {
            Self::Value(_) => true,
            Self::Error(e) => e.is::<Arc<E>>(),
            Self::Nothing => false,
        }
    }

    /// Whether an `optionally_get_with` caller does.
    pub(super) fn for_option(&self) -> bool {
        matches!(self, Self::Value(_) | Self::Nothing)
    }

    /// The value, for a `get_with` caller (which shares only values).
    pub(super) fn into_value(self) -> V {
        match self {
            Self::Value(v) => Arc::try_unwrap(v).unwrap_or_else(|v| (*v).clone()),
            _ => unreachable!("get_with shares only values"),
        }
    }

    /// The value or the shared error, for a `try_get_with::<E>` caller.
    pub(super) fn into_result<E: Send + Sync + 'static>(self) -> Result<V, Arc<E>> {
        match self {
            Self::Value(_) => Ok(self.into_value()),
            Self::Error(e) => Err(e
                .downcast_ref::<Arc<E>>()
                .cloned()
                .expect("only this error type is shared")),
            Self::Nothing => unreachable!("try_get_with's loader always decides"),
        }
    }

    /// The value or nothing, for an `optionally_get_with` caller.
    pub(super) fn into_option(self) -> Option<V> {
        match self {
            Self::Value(_) => Some(self.into_value()),
            _ => None,
        }
    }
}

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// A coalesced load for a blocking caller (`get_with` and friends): waits park the
    /// thread, and the thread is the flight's leader if it leads. `looked`: the caller has
    /// just looked the key up (a counted miss), so the first look is skipped.
    pub(super) fn load(
        &self,
        key: K,
        looked: bool,
        init: impl FnOnce() -> Outcome<V>,
        shares: impl Fn(&Outcome<V>) -> bool,
    ) -> Outcome<V> {
        let me = Some(sync::thread_id());
        let wait = |flight: Arc<Flight<V>>| std::future::ready(flight.wait());
        run_ready(self.drive_load(key, looked, async { init() }, shares, me, wait))
    }

    /// The driver (see the module docs): the outcome this caller gets. `shares` says which
    /// outcomes of another caller's load this caller takes as its own; for any other it
    /// retries (and may lead). `me` is the leading thread (`None` for a task), `wait` how
    /// this caller waits for a flight's end. `looked`: skip the first look (the caller's
    /// own lookup just missed, and counted as a miss).
    pub(super) async fn drive_load<W>(
        &self,
        key: K,
        mut looked: bool,
        init: impl Future<Output = Outcome<V>>,
        shares: impl Fn(&Outcome<V>) -> bool,
        me: Option<ThreadId>,
        wait: impl Fn(Arc<Flight<V>>) -> W,
    ) -> Outcome<V>
    where
        W: Future<Output = Option<Outcome<V>>>,
    {
        let (hash, index) = self.locate(&key);
        let mut key = key;
        let mut init = Some(init);
        loop {
            if !std::mem::take(&mut looked) {
                if let Some(value) = self.get_located(hash, index, &key) {
                    return Outcome::Value(Arc::new(value));
                }
            }
            let present = |k: &K| {
                let guard = epoch::pin();
                self.find(hash, index, k, &guard, Look::Peek).is_some()
            };
            match self.flights.join(index, hash, key, present, me) {
                Found::Present(mine) => key = mine,
                Found::Wait {
                    flight,
                    same_key,
                    key: mine,
                } => {
                    key = mine;
                    if let Some(outcome) = wait(flight).await {
                        if same_key && shares(&outcome) {
                            return outcome;
                        }
                    }
                }
                Found::Lead(mut lead) => {
                    // Unpinned, no lock held: the loader may be slow and may call back.
                    let init = init.take().expect("a caller loads at most once");
                    let outcome = match init.await {
                        Outcome::Value(value) => {
                            let key = lead.take_key();
                            self.store(key, value)
                        }
                        other => other,
                    };
                    lead.finish(outcome.clone());
                    return outcome;
                }
                Found::Nested(mine, guard) => {
                    // Called back from a store of this thread's own (see `Found::Nested`):
                    // load and store as a plain `get_or_insert_with` would.
                    let init = init.take().expect("a caller loads at most once");
                    let outcome = match init.await {
                        Outcome::Value(value) => self.store(mine, value),
                        other => other,
                    };
                    drop(guard);
                    return outcome;
                }
            }
        }
    }

    /// Stores a loaded value (an entry that appeared meanwhile wins): what the caller gets.
    fn store(&self, key: K, value: Arc<V>) -> Outcome<V> {
        let value = Arc::try_unwrap(value).unwrap_or_else(|v| (*v).clone());
        Outcome::of_value(self.get_or_insert_with(key, || value))
    }
}

/// Runs a future whose every await is ready at once (see the module docs) to its end, in
/// one poll.
fn run_ready<T>(future: impl Future<Output = T>) -> T {
    /// Nothing to wake: the one poll never suspends.
    struct Unused;

    impl Wake for Unused {
        fn wake(self: Arc<Self>) {}
    }

    static WAKER: OnceLock<Waker> = OnceLock::new();
    let waker = WAKER.get_or_init(|| Waker::from(Arc::new(Unused)));
    match pin!(future).poll(&mut Context::from_waker(waker)) {
        Poll::Ready(out) => out,
        Poll::Pending => unreachable!("a blocking load never suspends"),
    }
}
