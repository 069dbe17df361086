//! Coalesced loads whose loader is a future (feature `async`): the protocol of `load`,
//! with waiters awaiting the flight's end instead of parking their thread.
//!
//! Runtime-agnostic: waiters await an `event_listener::Event` that the flight's end
//! notifies (with its condition variable, so synchronous and asynchronous callers of one
//! key share one load). The leader awaits the loader in its own task, holding no lock and
//! no pin across the await. Dropping the leader's future before it finishes (a
//! cancellation, like a panic) abandons the flight, and one waiter loads instead.

use super::load::{Flight, Outcome};
use super::{Cache, Inner};
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// A coalesced load for a task: waits await the flight's end, and no thread is
    /// recorded as the leader.
    async fn load_async(
        &self,
        key: K,
        init: impl Future<Output = Outcome<V>>,
        shares: impl Fn(&Outcome<V>) -> bool,
    ) -> Outcome<V> {
        let wait = |flight: Arc<Flight<V>>| async move { flight.wait_async().await };
        self.drive_load(key, false, init, shares, None, wait).await
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
        let init = async { Outcome::of_value(init.await) };
        let outcome = self.inner.load_async(key, init, Outcome::for_value).await;
        outcome.into_value()
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
        let init = async { Outcome::of_result(init.await) };
        let shares = Outcome::for_result::<E>;
        self.inner.load_async(key, init, shares).await.into_result()
    }

    /// [`optionally_get_with`](Self::optionally_get_with) for an async loader: `None` is
    /// stored nowhere and is what every caller awaiting that load receives; a later call
    /// loads again.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache: wheelcache::Cache<u32, u32> = wheelcache::Cache::new();
    /// assert_eq!(cache.optionally_get_with_async(1, async { None }).await, None);
    /// assert!(!cache.contains_key(&1));
    /// assert_eq!(cache.optionally_get_with_async(1, async { Some(5) }).await, Some(5));
    /// assert_eq!(cache.get(&1), Some(5));
    /// # }
    /// ```
    pub async fn optionally_get_with_async(
        &self,
        key: K,
        init: impl Future<Output = Option<V>>,
    ) -> Option<V> {
        let init = async { Outcome::of_option(init.await) };
        let outcome = self.inner.load_async(key, init, Outcome::for_option).await;
        outcome.into_option()
    }
}
