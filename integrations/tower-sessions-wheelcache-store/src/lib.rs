//! A [`tower-sessions`](https://docs.rs/tower-sessions) session store kept in memory in a
//! [`wheelcache::Cache`]: every session leaves at its own expiry date, found by the cache's
//! timing wheel rather than by a periodic sweep, and a background reaper frees the
//! sessions that clients abandon even while the server is quiet.
//!
//! - **Expiry.** A record is stored with a time-to-live of `expiry_date - now`, so the
//!   wheel takes it out within a tick (1 ms) of its expiry date; a record whose expiry date
//!   has already passed is not stored (and a `save` of one removes the stored one).
//!   [`load`](SessionStore::load) also compares the expiry date with the wall clock, so it
//!   never returns an expired record, whatever the tick.
//! - **Creation** is an atomic insert-if-absent ([`Cache::compute`]): it never
//!   overwrites another session's record, and on an id collision it draws a new id and
//!   tries again.
//! - **Deletion** removes the record at once.
//! - **Bound.** [`WheelcacheStore::default`] holds any number of sessions;
//!   [`WheelcacheStore::with_max_sessions`] holds at most `n`, evicting by the cache's
//!   S3-FIFO policy (recently or often used sessions stay).
//!
//! Records live in this process only: they are lost on restart and not shared between
//! servers. For both, put this store in front of a persistent one with
//! [`CachingSessionStore`](tower_sessions_core::session_store::CachingSessionStore)
//! (reads are served from memory; a miss falls through to the persistent store; writes
//! and deletes reach both).
//!
//! # Example
//!
//! An axum server counting each visitor's requests:
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use tower_sessions::{Expiry, Session, SessionManagerLayer};
//! use tower_sessions::cookie::time::Duration;
//! use tower_sessions_wheelcache_store::WheelcacheStore;
//!
//! async fn count(session: Session) -> String {
//!     let n: u64 = session.get("n").await.unwrap().unwrap_or(0) + 1;
//!     session.insert("n", n).await.unwrap();
//!     format!("request {n} of this session")
//! }
//!
//! #[tokio::main]
//! async fn main() {
//!     let store = WheelcacheStore::default();
//!     let sessions = SessionManagerLayer::new(store)
//!         .with_secure(false)
//!         .with_expiry(Expiry::OnInactivity(Duration::minutes(30)));
//!     let app = Router::new().route("/", get(count)).layer(sessions);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//!     axum::serve(listener, app).await.unwrap();
//! }
//! ```

use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::{session_store, SessionStore};
use wheelcache::{Cache, CacheStats, Computed, Expiry, Op};

/// How often the store's background reaper takes expired sessions out when no request
/// does: a quiet server frees an abandoned session at most this long after its expiry.
pub const REAPER_INTERVAL: Duration = Duration::from_millis(100);

/// An in-memory [`SessionStore`] on a [`wheelcache::Cache`], where each record expires at
/// its own `expiry_date` (see the [crate docs](crate)).
///
/// Clones are handles to the same store, so a test or an admin endpoint can keep one
/// while the session layer holds another. The store's reaper thread ends when the last
/// handle drops.
///
/// ```
/// use tower_sessions_wheelcache_store::WheelcacheStore;
///
/// let unbounded = WheelcacheStore::default();
/// let bounded = WheelcacheStore::with_max_sessions(100_000);
/// assert!(unbounded.is_empty() && bounded.is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct WheelcacheStore {
    cache: Cache<Id, Arc<Record>>,
}

impl Default for WheelcacheStore {
    /// An unbounded store: sessions leave only when they expire or are deleted.
    fn default() -> Self {
        Self::from_builder(Cache::builder())
    }
}

impl WheelcacheStore {
    /// An unbounded store, the same as [`WheelcacheStore::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that holds at most `max_sessions` sessions: past that, storing one evicts
    /// another, chosen by the cache's S3-FIFO policy (a session read since it was stored
    /// is kept over one that was not). An evicted session's client starts a new one.
    /// Zero stores nothing.
    ///
    /// ```
    /// use tower_sessions_wheelcache_store::WheelcacheStore;
    ///
    /// let store = WheelcacheStore::with_max_sessions(10_000);
    /// assert_eq!(store.max_sessions(), Some(10_000));
    /// ```
    pub fn with_max_sessions(max_sessions: u64) -> Self {
        Self::from_builder(Cache::builder().max_capacity(max_sessions))
    }

    fn from_builder(builder: wheelcache::CacheBuilder<Id, Arc<Record>>) -> Self {
        let cache = builder
            .expire_after(AtExpiryDate)
            .background_reaper(REAPER_INTERVAL)
            .build();
        Self { cache }
    }

    /// The bound given to [`with_max_sessions`](Self::with_max_sessions), if any.
    pub fn max_sessions(&self) -> Option<u64> {
        self.cache.policy().max_capacity()
    }

    /// The number of stored sessions. It may count sessions that expired within the last
    /// tick or reaper interval until maintenance takes them out
    /// ([`run_pending_tasks`](Self::run_pending_tasks) does at once).
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether no session is stored (with the same caveat as [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// The cache's counters: `hits` and `misses` count [`load`](SessionStore::load)s (a
    /// load that finds a record in the tick after its expiry date, which it does not
    /// return, counts as a hit),
    /// `inserts` records created or saved under a new id, `updates` saves over a stored
    /// record, `removals` deletes, `expirations` records that expired (or were stored
    /// already expired) and `evictions` records evicted by the bound.
    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Takes every expired session out now and frees what was removed, instead of
    /// leaving it to the next request or the reaper (see
    /// [`Cache::run_pending_tasks`]).
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }
}

/// The time left until `expiry_date`, zero if it has passed (a zero TTL stores nothing).
fn time_left(expiry_date: OffsetDateTime) -> Duration {
    let left = expiry_date - OffsetDateTime::now_utc();
    Duration::try_from(left).unwrap_or(Duration::ZERO)
}

/// The cache's expiry policy: a record written lives until its own `expiry_date`.
/// (Reads keep the deadline: the default `expire_after_read`.)
struct AtExpiryDate;

impl Expiry<Id, Arc<Record>> for AtExpiryDate {
    fn expire_after_create(&self, _: &Id, record: &Arc<Record>, _: Instant) -> Option<Duration> {
        Some(time_left(record.expiry_date))
    }

    fn expire_after_update(
        &self,
        _: &Id,
        record: &Arc<Record>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(time_left(record.expiry_date))
    }
}

#[async_trait]
impl SessionStore for WheelcacheStore {
    /// Stores `record` under an id no stored session has: if its id is taken, draws new
    /// ones until one is free. The check and the insert are one atomic step
    /// ([`Cache::compute`] with a `Put` only when it sees no live entry), so two
    /// concurrent creates never share an id. A record already past its expiry date is
    /// not stored.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let candidate = Arc::new(record.clone());
            let outcome = self.cache.compute(record.id, |stored| match stored {
                Some(_) => Op::Nop,
                None => Op::Put(Arc::clone(&candidate)),
            });
            match outcome {
                Computed::Unchanged => record.id = Id::default(),
                _ => return Ok(()),
            }
        }
    }

    /// Stores `record`, replacing the one with its id, to expire at its expiry date; a
    /// record already past it removes the stored one and is not stored.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let ttl = time_left(record.expiry_date);
        self.cache
            .insert_with_ttl(record.id, Arc::new(record.clone()), ttl);
        Ok(())
    }

    /// The stored record for `session_id`, if it has one whose expiry date is still
    /// ahead.
    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let now = OffsetDateTime::now_utc();
        Ok(self
            .cache
            .get(session_id)
            .filter(|record| record.expiry_date > now)
            .map(|record| Record::clone(&record)))
    }

    /// Removes the record for `session_id` at once (nothing if there is none).
    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.cache.invalidate(session_id);
        Ok(())
    }
}
