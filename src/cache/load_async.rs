//! Coalesced loads whose loader is a future (feature `async`): the protocol of `load`,
//! with waiters awaiting the flight's end instead of parking their thread.
//!
//! Runtime-agnostic: waiters await an `event_listener::Event` that the flight's end
//! notifies (with its condition variable, so synchronous and asynchronous callers of one
//! key share one load). The leader awaits the loader in its own task, holding no lock and
//! no pin across the await. Dropping the leader's future before it finishes (a
//! cancellation, like a panic) abandons the flight, and one waiter loads instead.

use super::load::{Found, Outcome};
use super::{Cache, Inner};
use crossbeam_epoch as epoch;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    async fn load_async(
        &self,
        key: K,
        init: impl Future<Output = Outcome<V>>,
        shares: impl Fn(&Outcome<V>) -> bool,
    ) -> Outcome<V> {
        let (hash, index) = self.locate(&key);
        let mut key = key;
        let mut init = Some(init);
        loop {
            if let Some(value) = self.get_located(hash, index, &key) {
                return Outcome::Value(Arc::new(value));
            }
            let present = |k: &K| {
                let guard = epoch::pin();
                self.find(hash, index, k, &guard, false, false).is_some()
            };
            match self.flights.join_async(index, hash, key, present) {
                Found::Present(mine) => key = mine,
                Found::Wait {
                    flight,
                    same_key,
                    key: mine,
                } => {
                    key = mine;
                    if let Some(outcome) = flight.wait_async().await {
                        if same_key && shares(&outcome) {
                            return outcome;
                        }
                    }
                }
                Found::Lead(mut lead) => {
                    let init = init.take().expect("a caller leads at most once");
                    let outcome = match init.await {
                        Outcome::Value(value) => {
                            let value = Arc::try_unwrap(value).unwrap_or_else(|v| (*v).clone());
                            let key = lead.take_key();
                            Outcome::Value(Arc::new(self.get_or_insert_with(key, || value)))
                        }
                        other => other,
                    };
                    lead.finish(outcome.clone());
                    return outcome;
                }
            }
        }
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// [`get_with`](Self::get_with) for an async loader: concurrent callers for one
    /// missing key (tasks or threads) await the one running `init`, without blocking their
    /// threads, and all receive its value. Runtime-agnostic (feature `async`).
    ///
    /// - `init` is awaited by the leading caller's own future: if that future is dropped
    ///   before it completes (cancelled), or `init` panics, nothing is stored and one
    ///   waiter loads instead.
    /// - An `init` that awaits a coalesced load of its own key waits for itself for ever
    ///   (a task, unlike a thread, cannot be recognised as the loader): keep loaders
    ///   acyclic. Other keys are fine.
    /// - A synchronous [`get_with`](Self::get_with) of a key an async loader is loading
    ///   blocks its thread until the load ends: on a single-threaded runtime whose only
    ///   thread runs the loader, that never happens. Use the async form inside tasks.
    ///
    /// Every other method of `Cache` is non-blocking (no lock is held across user code,
    /// and maintenance waits are bounded), so it may be called from a task directly.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache: wheelcache::Cache<u32, String> = wheelcache::Cache::new();
    /// let v = cache.get_with_async(1, async { "one".to_string() }).await;
    /// assert_eq!(v, "one");
    /// // Present now: the loader is not awaited again.
    /// let v = cache.get_with_async(1, async { unreachable!() }).await;
    /// assert_eq!(v, "one");
    /// # }
    /// ```
    pub async fn get_with_async(&self, key: K, init: impl Future<Output = V>) -> V {
        let outcome = self
            .inner
            .load_async(key, async { Outcome::Value(Arc::new(init.await)) }, |o| {
                matches!(o, Outcome::Value(_))
            })
            .await;
        match outcome {
            Outcome::Value(v) => Arc::try_unwrap(v).unwrap_or_else(|v| (*v).clone()),
            _ => unreachable!("get_with_async only takes values"),
        }
    }

    /// [`try_get_with`](Self::try_get_with) for an async loader: an `Err` is stored
    /// nowhere and shared (one `Arc<E>`) with every caller awaiting that load.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::new();
    /// let err = cache.try_get_with_async(1, async { Err::<u32, _>("down") }).await;
    /// assert_eq!(*err.unwrap_err(), "down");
    /// let ok = cache.try_get_with_async(1, async { Ok::<_, &str>(7) }).await;
    /// assert_eq!(ok, Ok(7));
    /// # }
    /// ```
    pub async fn try_get_with_async<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V, Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        let outcome = self
            .inner
            .load_async(
                key,
                async {
                    match init.await {
                        Ok(v) => Outcome::Value(Arc::new(v)),
                        Err(e) => Outcome::Error(Arc::new(Arc::new(e))),
                    }
                },
                |o| match o {
                    Outcome::Value(_) => true,
                    Outcome::Error(e) => e.is::<Arc<E>>(),
                    Outcome::Nothing => false,
                },
            )
            .await;
        match outcome {
            Outcome::Value(v) => Ok(Arc::try_unwrap(v).unwrap_or_else(|v| (*v).clone())),
            Outcome::Error(e) => Err(e
                .downcast_ref::<Arc<E>>()
                .cloned()
                .expect("only this error type is shared")),
            Outcome::Nothing => unreachable!("try_get_with_async's loader always decides"),
        }
    }
}
