//! The panic matrix: every piece of user code the cache calls (`Hash`, `Eq`, the key's and
//! the value's `Clone` and `Drop`, the weigher, the `Expiry` methods, the listener, the
//! loaders, `retain`'s predicate, `compute`'s closure, the `Clock`) is made to panic at its
//! first, second and third call inside every public operation that can call it, with and
//! without a listener, an `Expiry` policy and a bound. After each run:
//! - every key and value instance ever made was dropped exactly once (once the cache is);
//! - the listener heard of no value twice, and of every entry that was stored before the
//!   operation and is gone after it exactly once (including the one a panicking
//!   `V::clone` in `remove` was returning);
//! - the cache still works: its length agrees with what it lists, it empties (and the
//!   listener hears of each entry it held), then stores, finds and removes a new entry.
//!
//! Every planted panic is made to fire somewhere (a fault that never fires would make
//! its rows vacuous).

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};
use wheelcache::{Cache, Clock, Expiry, ManualClock, Op};

/// The user code that can be made to panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Fault {
    Hash,
    Eq,
    KeyClone,
    ValueClone,
    KeyDrop,
    ValueDrop,
    Weigher,
    Create,
    Update,
    Read,
    Listener,
    Loader,
    Predicate,
    Closure,
    Clock,
}

const FAULTS: [Fault; 15] = [
    Fault::Hash,
    Fault::Eq,
    Fault::KeyClone,
    Fault::ValueClone,
    Fault::KeyDrop,
    Fault::ValueDrop,
    Fault::Weigher,
    Fault::Create,
    Fault::Update,
    Fault::Read,
    Fault::Listener,
    Fault::Loader,
    Fault::Predicate,
    Fault::Closure,
    Fault::Clock,
];

thread_local! {
    /// The armed fault and how many of its calls are left before it panics (once).
    static ARMED: Cell<Option<(Fault, u32)>> = const { Cell::new(None) };
    /// Whether the armed fault fired.
    static FIRED: Cell<bool> = const { Cell::new(false) };
}

/// User code of kind `fault` runs: panics if it is armed and its count is up.
fn hit(fault: Fault) {
    let Some((armed, left)) = ARMED.get() else {
        return;
    };
    if armed != fault {
        return;
    }
    if left > 1 {
        ARMED.set(Some((armed, left - 1)));
        return;
    }
    ARMED.set(None);
    FIRED.set(true);
    std::panic::panic_any(Planted);
}

/// The payload of a planted panic (the hook stays quiet for it).
struct Planted;

/// Every key and value instance: dropped how often, heard how often.
#[derive(Default)]
struct Ledger {
    next: AtomicU64,
    records: Mutex<HashMap<u64, (u32, u32)>>,
}

impl Ledger {
    fn make(&self) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.records.lock().unwrap().insert(id, (0, 0));
        id
    }
    fn dropped(&self, id: u64) {
        self.records.lock().unwrap().get_mut(&id).unwrap().0 += 1;
    }
    fn heard(&self, id: u64) {
        self.records.lock().unwrap().get_mut(&id).unwrap().1 += 1;
    }
    fn heard_of(&self, id: u64) -> u32 {
        self.records.lock().unwrap()[&id].1
    }
}

struct Key {
    k: u64,
    id: u64,
    ledger: Arc<Ledger>,
}

impl Key {
    fn new(k: u64, ledger: &Arc<Ledger>) -> Self {
        let id = ledger.make();
        Self {
            k,
            id,
            ledger: Arc::clone(ledger),
        }
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hit(Fault::Hash);
        self.k.hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        hit(Fault::Eq);
        self.k == other.k
    }
}

impl Eq for Key {}

impl Clone for Key {
    fn clone(&self) -> Self {
        hit(Fault::KeyClone);
        Key::new(self.k, &self.ledger)
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.ledger.dropped(self.id);
        // A `Drop` that panics while unwinding aborts any program: not planted then.
        if !std::thread::panicking() {
            hit(Fault::KeyDrop);
        }
    }
}

/// A value: `id` is this instance, `from` the instance it was cloned from (itself if
/// none), so a clone the cache hands out names the stored instance.
struct Value {
    id: u64,
    from: u64,
    ledger: Arc<Ledger>,
}

impl Value {
    fn new(ledger: &Arc<Ledger>) -> Self {
        let id = ledger.make();
        Self {
            id,
            from: id,
            ledger: Arc::clone(ledger),
        }
    }
}

impl Clone for Value {
    fn clone(&self) -> Self {
        hit(Fault::ValueClone);
        let id = self.ledger.make();
        Self {
            id,
            from: self.id,
            ledger: Arc::clone(&self.ledger),
        }
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        self.ledger.dropped(self.id);
        if !std::thread::panicking() {
            hit(Fault::ValueDrop);
        }
    }
}

/// A clock that can panic.
struct Faulty(ManualClock);

impl Clock for Faulty {
    fn now_nanos(&self) -> u64 {
        hit(Fault::Clock);
        self.0.now_nanos()
    }
}

/// An `Expiry` policy whose three methods can panic.
struct Policy;

impl Expiry<Key, Value> for Policy {
    fn expire_after_create(&self, _: &Key, _: &Value, _: Instant) -> Option<Duration> {
        hit(Fault::Create);
        Some(Duration::from_secs(3600))
    }
    fn expire_after_update(
        &self,
        _: &Key,
        _: &Value,
        _: Instant,
        left: Option<Duration>,
    ) -> Option<Duration> {
        hit(Fault::Update);
        left
    }
    fn expire_after_read(
        &self,
        _: &Key,
        _: &Value,
        _: Instant,
        left: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        hit(Fault::Read);
        left
    }
}

type C = Cache<Key, Value>;

#[derive(Clone, Copy, Debug)]
struct Setup {
    listener: bool,
    bounded: bool,
    policy: bool,
}

fn build(setup: Setup, ledger: &Arc<Ledger>, clock: &ManualClock) -> C {
    // A fixed hasher: each run places its keys the same way every time.
    let mut b = Cache::builder()
        .segments(2)
        .hasher(ahash::RandomState::with_seeds(1, 2, 3, 4))
        .clock(Faulty(clock.clone()));
    if setup.listener {
        let ledger = Arc::clone(ledger);
        b = b.eviction_listener(move |_: &Key, v: &Value, _| {
            ledger.heard(v.id);
            hit(Fault::Listener);
        });
    }
    if setup.bounded {
        b = b.max_capacity(6).weigher(|_: &Key, _: &Value| {
            hit(Fault::Weigher);
            1
        });
    }
    if setup.policy {
        b = b.expire_after(Policy);
    }
    b.build()
}

/// One public operation, on keys 0..8 of the prepared cache (see `run`). `None` for the
/// cache drops it.
type Operation = fn(&mut Option<C>, &Arc<Ledger>, &ManualClock);

/// Discards an operation's answer (the runs check the cache, not the answers).
fn ignore<T>(_: T) {}

fn ops() -> Vec<(&'static str, Operation)> {
    fn c(cache: &mut Option<C>) -> &C {
        cache.as_ref().unwrap()
    }
    vec![
        ("insert new", |c_, l, _| {
            c(c_).insert(Key::new(20, l), Value::new(l))
        }),
        ("insert over", |c_, l, _| {
            c(c_).insert(Key::new(1, l), Value::new(l))
        }),
        ("insert_with_ttl", |c_, l, _| {
            c(c_).insert_with_ttl(Key::new(2, l), Value::new(l), Duration::from_secs(9))
        }),
        ("insert zero ttl", |c_, l, _| {
            c(c_).insert_with_ttl(Key::new(3, l), Value::new(l), Duration::ZERO)
        }),
        ("get", |c_, l, _| drop(c(c_).get(&Key::new(1, l)))),
        ("get missing", |c_, l, _| drop(c(c_).get(&Key::new(30, l)))),
        ("contains_key", |c_, l, _| {
            ignore(c(c_).contains_key(&Key::new(2, l)))
        }),
        ("remove", |c_, l, _| drop(c(c_).remove(&Key::new(1, l)))),
        ("invalidate", |c_, l, _| {
            ignore(c(c_).invalidate(&Key::new(2, l)))
        }),
        ("get_or_insert_with present", |c_, l, _| {
            let l2 = Arc::clone(l);
            drop(c(c_).get_or_insert_with(Key::new(1, l), move || {
                hit(Fault::Loader);
                Value::new(&l2)
            }))
        }),
        ("get_or_insert_with absent", |c_, l, _| {
            let l2 = Arc::clone(l);
            drop(c(c_).get_or_insert_with(Key::new(21, l), move || {
                hit(Fault::Loader);
                Value::new(&l2)
            }))
        }),
        ("get_with", |c_, l, _| {
            let l2 = Arc::clone(l);
            drop(c(c_).get_with(Key::new(22, l), move || {
                hit(Fault::Loader);
                Value::new(&l2)
            }))
        }),
        ("try_get_with", |c_, l, _| {
            let l2 = Arc::clone(l);
            drop(c(c_).try_get_with(Key::new(23, l), move || {
                hit(Fault::Loader);
                Ok::<_, ()>(Value::new(&l2))
            }))
        }),
        ("optionally_get_with", |c_, l, _| {
            let l2 = Arc::clone(l);
            drop(c(c_).optionally_get_with(Key::new(24, l), move || {
                hit(Fault::Loader);
                Some(Value::new(&l2))
            }))
        }),
        ("compute put", |c_, l, _| {
            ignore(c(c_).compute(Key::new(1, l), |_| {
                hit(Fault::Closure);
                Op::Put(Value::new(l))
            }))
        }),
        ("compute remove", |c_, l, _| {
            ignore(c(c_).compute(Key::new(2, l), |_| {
                hit(Fault::Closure);
                Op::Remove
            }))
        }),
        ("retain", |c_, _, _| {
            ignore(c(c_).retain(|k, _| {
                hit(Fault::Predicate);
                k.k % 2 == 0
            }))
        }),
        ("invalidate_entries_if", |c_, _, _| {
            ignore(c(c_).invalidate_entries_if(|k, _| {
                hit(Fault::Predicate);
                k.k < 3
            }))
        }),
        ("iter", |c_, _, _| drop(c(c_).iter().collect::<Vec<_>>())),
        ("pinned", |c_, l, _| {
            let pinned = c(c_).pin();
            let _ = pinned.get(&Key::new(4, l)).map(|v| v.id);
            let _ = pinned.iter().count();
        }),
        ("clear", |c_, _, _| c(c_).clear()),
        ("invalidate_all", |c_, _, _| c(c_).invalidate_all()),
        ("run_pending_tasks", |c_, _, clock| {
            clock.advance(Duration::from_secs(10));
            c(c_).run_pending_tasks()
        }),
        ("drop", |c_, _, _| drop(c_.take())),
    ]
}

/// The stored instances the cache lists (fault-free: call disarmed).
fn listed(cache: &C) -> HashSet<u64> {
    cache.iter().map(|(_, v)| v.from).collect()
}

/// One run: a prepared cache (8 entries, three lapsing in 5 s, the clock 6 s on), the
/// operation with `fault` armed at its `nth` call, then the checks. Returns whether the
/// fault fired.
fn run(setup: Setup, op: (&str, Operation), fault: Fault, nth: u32) -> bool {
    let ledger = Arc::new(Ledger::default());
    let clock = ManualClock::new();
    let mut cache = Some(build(setup, &ledger, &clock));
    let c = cache.as_ref().unwrap();
    for k in 0..8 {
        let (key, value) = (Key::new(k, &ledger), Value::new(&ledger));
        if k < 5 {
            c.insert(key, value); // asks the policy, if any, and its reads do too
        } else {
            c.insert_with_ttl(key, value, Duration::from_secs(5));
        }
    }
    clock.advance(Duration::from_secs(6));
    let before = listed(c);
    FIRED.set(false);
    ARMED.set(Some((fault, nth)));
    let _ = catch_unwind(AssertUnwindSafe(|| (op.1)(&mut cache, &ledger, &clock)));
    ARMED.set(None);
    let fired = FIRED.get();
    let what = format!("{setup:?}, {} with {fault:?} at call {nth}", op.0);
    let mut departed: Vec<u64> = Vec::new();
    if let Some(c) = cache.as_ref() {
        c.run_pending_tasks();
        let after = listed(c);
        assert_eq!(
            c.len(),
            after.len(),
            "{what}: len disagrees with the listing"
        );
        departed = before.difference(&after).copied().collect();
        // It still works: it empties (telling of each), then stores, finds and removes.
        c.invalidate_all();
        assert_eq!((c.len(), listed(c).len()), (0, 0), "{what}: not emptied");
        departed.extend(after);
        let fresh = Value::new(&ledger);
        let fresh_id = fresh.id;
        c.insert(Key::new(99, &ledger), fresh);
        assert_eq!(
            c.get(&Key::new(99, &ledger)).map(|v| v.from),
            Some(fresh_id),
            "{what}: a new entry is not found"
        );
        assert!(c.remove(&Key::new(99, &ledger)).is_some(), "{what}");
        departed.push(fresh_id);
    }
    drop(cache);
    let records = ledger.records.lock().unwrap();
    for (id, (drops, heard)) in records.iter() {
        assert_eq!(*drops, 1, "{what}: instance {id} dropped {drops} times");
        assert!(*heard <= 1, "{what}: instance {id} heard {heard} times");
    }
    drop(records);
    if setup.listener {
        for id in departed {
            assert_eq!(
                ledger.heard_of(id),
                1,
                "{what}: departure of {id} not heard"
            );
        }
    }
    fired
}

#[test]
fn every_user_code_panic_in_every_operation_loses_nothing() {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Planted>() {
                default(info);
            }
        }));
    });
    let mut fired: HashSet<Fault> = HashSet::new();
    let mut runs = 0;
    let mut fired_runs = 0;
    for listener in [false, true] {
        for bounded in [false, true] {
            for policy in [false, true] {
                let setup = Setup {
                    listener,
                    bounded,
                    policy,
                };
                for op in ops() {
                    for fault in FAULTS {
                        for nth in 1..=3 {
                            runs += 1;
                            if !run(setup, op, fault, nth) {
                                break; // fewer calls than `nth`: later ones cannot fire
                            }
                            fired.insert(fault);
                            fired_runs += 1;
                        }
                    }
                }
            }
        }
    }
    let never: Vec<_> = FAULTS.iter().filter(|f| !fired.contains(f)).collect();
    assert!(never.is_empty(), "faults that never fired: {never:?}");
    eprintln!("{runs} runs, {fired_runs} of them with the fault fired");
    assert!(runs > 1000, "{runs} runs");
}

/// The one combination the matrix (one fault at a time) cannot reach: a listener that
/// panics while the operation that took its departure is already unwinding (a
/// `V::clone` in `remove` panicked). The listener's panic is caught inside the unwinding
/// (no abort), the departure is still heard once, and every instance is dropped once.
#[test]
fn a_listener_panicking_while_an_operation_unwinds_is_caught() {
    let ledger = Arc::new(Ledger::default());
    let heard = Arc::clone(&ledger);
    let cache: C = Cache::builder()
        .segments(1)
        .eviction_listener(move |_: &Key, v: &Value, _| {
            heard.heard(v.id);
            panic!("the listener always panics");
        })
        .build();
    let stored = Value::new(&ledger);
    let id = stored.id;
    cache.insert(Key::new(1, &ledger), stored);
    ARMED.set(Some((Fault::ValueClone, 1)));
    let unwound = catch_unwind(AssertUnwindSafe(|| cache.remove(&Key::new(1, &ledger))));
    ARMED.set(None);
    assert!(unwound.is_err(), "the clone's panic reaches the caller");
    assert_eq!(ledger.heard_of(id), 1, "the departure was heard once");
    assert_eq!(cache.len(), 0);
    drop(cache);
    for (i, (drops, _)) in ledger.records.lock().unwrap().iter() {
        assert_eq!(*drops, 1, "instance {i} dropped {drops} times");
    }
}
