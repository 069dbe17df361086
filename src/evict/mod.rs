//! Eviction: a capacity bound kept by S3-FIFO, and the limits (weight, idle time) it and
//! the wheel enforce.
//!
//! ## The policy
//! S3-FIFO (Yang, Zhang, Qiu, Yue and Vinayak, "FIFO queues are all you need for cache
//! eviction", SOSP 2023), per segment, under the segment's maintenance lock:
//! - a new entry joins the *small* queue (a share of the segment's weight that starts at
//!   3%, quick_cache's choice, and is then adapted between 0.5% and 20% by a hill climber
//!   on the cache's hit rate: `climb`; the paper's fixed 10% measured 1-2 points lower on
//!   Zipf streams), unless the segment is still filling (below) or its key's hash is a
//!   *ghost* (evicted from small recently, see `ghost`) and TinyLFU admits it (below), in
//!   which case it joins the *main* queue;
//! - every entry has a 2-bit saturating access counter in its `meta` word
//!   (`entry::node::Node::touch`): a hit loads it and, only while it is below 3, raises it
//!   with one CAS. So **a hit on a hot entry writes nothing**, unlike an LRU list or
//!   moka's read buffers (its reads push to a shared channel);
//! - to evict, the hand takes the small queue's oldest entry while small holds more than
//!   its share (never less than one unit of weight, so that in a cache without a weigher
//!   the entry a write has just queued into a segment too small for a 3% share to hold
//!   one entry is not that write's own victim), or while main is empty: if it was hit
//!   since it arrived it moves to main (counter cleared), else it leaves and its hash
//!   becomes a ghost. Otherwise it takes main's oldest: hit entries go round again with
//!   their counter lowered by one (CLOCK with 2-bit counts), and the first one at zero
//!   leaves. A turn admits the entries written since the last one oldest first (up to a
//!   batch of 32: `Segment::take_stack`), and a bounded cache has at most one segment per
//!   16 units of its bound (`MIN_SEGMENT_SHARE`), so no segment's share is a mere
//!   handful of entries. (While a segment fills, and once after, the order differs: see
//!   "Filling" below.)
//!
//! One-hit wonders (a scan) pass through small and never reach main (once the segment has
//! filled: see "Filling"), so a hot set in main
//! survives a scan of any length; a key that comes back soon after leaving small is let
//! into main by its ghost, if a count-min sketch of recent inserts (`sketch`, TinyLFU:
//! Einziger, Friedman and Manes, ACM TOS 2017) says it was inserted more often lately
//! than the entry main would give up next: the first of main's four oldest with no hits
//! since the hand last passed it (the one the hand would take), else the oldest. (Against
//! main's oldest alone, hit or not, the phase change ran 0.3-1.0 points lower: a newcomer
//! was judged against an entry the hand was about to keep.) That test is what keeps a
//! loop slightly larger than the cache from flushing main over and over (82% hits
//! instead of 72% on a loop of 1.2x the capacity). The sketch is fed by inserts, and by the hand: when it passes a main entry
//! that was hit since its last pass it records that entry once, so hits stay write-free
//! and yet an entry that stays in main on hits alone does not fade against newcomers
//! (on the loop at 10% capacity this raised the typical run from 77% to 80.6%). The test
//! applies only while main is full: a ghost returning while main holds under 94% of the
//! segment goes in unasked (see `beats_main`). Gating the
//! small queue's own evictions with it too cost 2-4 points on Zipf streams (a hot key is
//! inserted once and then only hit, so an insert count undervalues it), so it is not.
//!
//! What the test costs on loops: in a loop twice the cache's size, main's entries are hit,
//! not inserted, and the hand seldom passes main (every miss goes to small, which stays
//! over its share), so their sketch counts fade while each returning ghost's grows.
//! TinyLFU then admits some ghosts over them and main churns. So a victim with hits not
//! yet recorded (its access counter above zero) counts them as one in the test (its
//! whole 2-bit counter cost 1.4 points on the phase change, whose old working set keeps
//! its counters while the hand seldom passes it; one hit gains the loops without that
//! cost once the sketch ages fast enough, see `sketch`). The 2x loop at 1% capacity
//! trailed moka's by a point (48.0 / 48.5% against 49.1-49.7 / 49.7-50.0) while the
//! climber held the small queue at 2.7%; since the climber reaches its floor on loops
//! (see `climb`, "Two samples back") it is level with moka (48.9-49.1 / 49.3-49.6).
//!
//! **Filling.** Until a segment first evicts, a new entry joins main while main has room
//! for it (its share of the segment's share of the bound), as quick_cache admits to its hot
//! queue while the cache fills. Without it a full segment's main was empty, small held
//! everything as one FIFO, and main filled only with promotions and returning ghosts: a
//! loop twice a cache of 10^5 entries lost its whole second lap (43.8% from the first
//! request against quick_cache's 46.1). But a filled main also keeps what merely came
//! first, and at 10% capacity main turns over slowly (its hand moves only as entries are
//! promoted or ghosts admitted): with the fill alone the phase change and the scan mix at
//! 10% stayed 0.4-0.6 points lower after warm-up. So the filled entries are on probation:
//! after one and a half times the segment's entries in evictions (a loop's second lap has
//! hit what it will by then), the hand passes them before small gives up anything more, and
//! those not hit since they came go. `Fill::left` counts them from main's front (main's
//! oldest are the filled ones until the hand has passed them); an entry's remover is not
//! told apart, so the count is an estimate, kept within main's length: for each filled
//! entry removed by its user after the fill (when main holds others too), the hand passes
//! one entry of main early, by CLOCK's rules (kept if hit). A segment that empties
//! (cleared, or every entry removed or expired) fills again. In two runs of `cargo bench
//! --bench hit_ratio -- own` against three before, the 2x loop at 10% went from 43.8 / 48.9
//! to 46.4 / 49.0, the 1.2x loop at 10% from 76.7 / 82.0 to 79.0 / 81.8 and at 1% from 81.8
//! / 82.3 to 82.2 / 82.6; the phase change at 10% lost 0.1 (72.3 / 71.0), every Zipf stream
//! at most 0.07, the 2x loop at 1% 0.25 after warm-up (49.3). A probation of one times the
//! entries kept the phase change level but gave back most of the 2x loop (44.6 from the
//! first request); of twice, the phase change lost 0.3-0.4, of three times 0.5-0.6 (one run
//! each).
//!
//! Measured against moka, quick_cache and an exact LRU on the same streams:
//! `cargo bench --bench hit_ratio` (the table is in the README).
//!
//! ## A global bound with per-segment queues
//! The bound is on the cache's total weight, one counter ([`Limits::weight`]) that every
//! insert raises and every departure lowers. Each segment's queues hold only its own
//! entries, and a segment evicts while the *total* is over `max_capacity` **and** its own
//! queues hold more than its share of the bound ([`Limits::share`], `max_capacity` over the
//! number of segments): a write evicts in its own segment (and, if the total is still over,
//! helps one more segment) within its maintenance budget; `run_pending_tasks` goes round
//! every segment until the total fits. When the total is over, some segment is over its
//! share (the shares sum to at most the bound), so the rounds always find a victim once
//! the segments' queued requests are applied. Capacity is still not divided hard among
//! segments: an entry may weigh up to the whole capacity (its segment is then over its
//! share, and evicts). While writers run, the total can exceed the bound by a sixteenth
//! (past that, writers wait for their segment's lock to evict: back-pressure) plus the
//! inserts in flight, about one maintenance batch per concurrent writer.
//!
//! The share keeps the segments' queues the same size. Without it, a write evicted in its
//! own segment for the whole cache's excess, wherever the excess had come from; with one
//! writer the turns rotate and that evened out, but concurrent writers skip a segment
//! whose lock is taken, so some segments were evicted for others and shrank while the
//! others grew: with 4 threads sharing a cache at 1% of a 10^6-key Zipf(0.8) stream the
//! hit ratio fell from 30.4% to 25.6% (4.9 points), and by 2-6 points on scans and loops.
//! With the share the 4-thread figures are within a point of the one-thread ones
//! (`cargo bench --bench hit_ratio -- concurrent`).
//!
//! **Lapsed entries leave first, cache-wide.** A segment's turn advances its wheel before
//! it evicts, but the lapsed entries that hold the weight may sit in other segments. So a
//! write that finds the total over the bound first sweeps every other segment that may
//! hold an entry lapsed at its clock reading (`Segment::may_hold_lapsed`: its last turn
//! ended at an earlier tick or left work) with an expire-only turn (`Mode::Expire`), and
//! `run_pending_tasks` expires in every segment before it evicts in any. A caught-up
//! segment is not swept again within the tick, so the sweep costs a lock per segment per
//! tick at most. A sweep skips a segment whose lock another thread holds (waiting made
//! every over-the-bound write a convoy) and stops at a turn's budget; when it has left
//! such a segment behind, the write evicts nothing at all (its own turn only expires),
//! since the skipped segment may still hold a lapsed entry. The cache then stays over its
//! bound until a later write's sweep catches up (in the session benchmark at 2 threads,
//! 2-3% of turns held back, and throughput with the bound did not move). So within the
//! back-pressure slack no write evicts a live entry while another segment may hold one
//! lapsed at its reading; past a sixteenth over (`Press`, above) back-pressure wins and
//! a write evicts even if its sweep was locked out. The loom model
//! `a_lapsed_entry_leaves_before_a_live_one_is_evicted` races an over-the-bound insert
//! with `run_pending_tasks` holding the lapsed entry's segment (a write that evicted
//! after a locked-out sweep failed it). A turn that found the cache within its bound
//! when it started does not evict either (an insert landing meanwhile would otherwise
//! have it evict with no sweep before), and "may hold a lapsed entry" is conservative (a
//! segment with any work due counts), so a write holds back a little more often than
//! strictly needed.
//!
//! ## Cost per entry
//! An entry of a bounded cache carries an extension (`entry::layout::Ext`, 16 bytes: its
//! queue links; which queue holds it is a bit of `meta`, and with a time-to-idle its idle
//! tick lives in `meta` too unless it has a TTL deadline, when a prefix of 8 bytes holds
//! it; a weight other than 1 takes 8 bytes more), 1 to 2 bytes of ghost and 2 to 4 bytes
//! of sketch: with the node (32) and its share of the table (13-14), 64 bytes per
//! entry beyond `K` and `V` with a time-to-idle in `tests/memory.rs` (8 segments; 61-66
//! with 2 to 64, whose tables stop at other loads). Unbounded caches
//! pay nothing: their nodes have no extension (a time-to-idle alone gives one only to a
//! node with a TTL, for its stamp's prefix) and no queues exist.
//! Eviction work is O(1) per entry moved or evicted, bounded per call by the caller's
//! maintenance budget, and never runs user code: victims are handed to the caller, who
//! runs the listener unpinned.

pub(crate) mod climb;
pub(crate) mod deque;
mod ghost;
mod sketch;

use crate::entry::node::Node;
use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use deque::{Deque, MAIN, SMALL};
use ghost::Ghost;
use sketch::Sketch;

/// A cache's capacity and idle limits, shared by its segments.
#[derive(Debug)]
pub(crate) struct Limits {
    /// Total weight allowed; `u64::MAX` when unbounded.
    pub(crate) max: u64,
    /// Whether a bound was set (`max_capacity(u64::MAX)` is one, and reported as such,
    /// though it binds nothing).
    pub(crate) bounded: bool,
    /// Whether entries are weighed and queued (a bound or a weigher is set).
    pub(crate) weighed: bool,
    /// Time-to-idle in ticks, plus one (see [`Limits::idle_deadline`]); 0 for none.
    pub(crate) idle_ticks: u64,
    /// A segment's even share of `max` (`max` over the number of segments): a write's
    /// turn evicts in its segment only while the segment holds more than this (see "A
    /// global bound with per-segment queues").
    pub(crate) share: u64,
    /// Total weight of the stored entries (raised before an entry is linked, lowered by
    /// its remover, so it never dips below the true total).
    weight: CachePadded<AtomicU64>,
    /// The small queue's share of each segment's weight, in thousandths: set by the hill
    /// climber (see `climb`), read by every segment's hand.
    small: AtomicU64,
}

impl Limits {
    pub(crate) fn new(max: Option<u64>, weighed: bool, idle_ticks: Option<u64>) -> Self {
        Self {
            max: max.unwrap_or(u64::MAX),
            bounded: max.is_some(),
            weighed: weighed || max.is_some(),
            idle_ticks: idle_ticks.map_or(0, |t| t.saturating_add(1)),
            share: max.unwrap_or(u64::MAX),
            weight: CachePadded::new(AtomicU64::new(0)),
            small: AtomicU64::new(climb::START),
        }
    }

    /// The same limits, with the bound shared among `segments` segments (see [`share`]).
    ///
    /// [`share`]: Limits::share
    pub(crate) fn shared_by(mut self, segments: usize) -> Self {
        self.share = self.max / segments.max(1) as u64;
        self
    }

    /// Total weight of the stored entries.
    pub(crate) fn weight(&self) -> u64 {
        // Relaxed: a gauge that pairs with nothing (no data is published through it);
        // maintenance rereads it every step.
        self.weight.load(Ordering::Relaxed)
    }

    /// The small queue's share of a segment's weight, in thousandths (see `climb`).
    pub(crate) fn small_share(&self) -> u64 {
        if crate::sync::MODEL {
            // No climber under loom (see `climb`): no load, so no scheduling point.
            return climb::START;
        }
        // Relaxed: a tuning knob that publishes nothing; a hand that reads the previous
        // share evicts one entry by it, and the next step rereads it.
        self.small.load(Ordering::Relaxed)
    }

    /// Sets the small queue's share (the climber's, under its lock).
    pub(crate) fn set_small_share(&self, thousandths: u64) {
        // Relaxed: as in `small_share`.
        self.small.store(thousandths, Ordering::Relaxed);
    }

    /// Whether the total is over the bound.
    #[inline]
    pub(crate) fn over(&self) -> bool {
        self.max != u64::MAX && self.weight() > self.max
    }

    /// Whether the total is more than a sixteenth over the bound: then writers wait for
    /// their segment's maintenance lock instead of skipping their turn when it is taken,
    /// so concurrent inserters cannot outrun eviction (the documented slack: a sixteenth,
    /// plus the inserts in flight).
    #[inline]
    pub(crate) fn far_over(&self) -> bool {
        self.max != u64::MAX && self.weight() > self.max.saturating_add(self.max / 16)
    }

    /// Counts an entry about to be linked.
    pub(crate) fn charge(&self, w: u32) {
        if self.weighed && w != 0 {
            // Relaxed: a gauge that pairs with nothing; readers take it as a hint.
            self.weight.fetch_add(u64::from(w), Ordering::Relaxed);
        }
    }

    /// Counts an entry about to be linked, and refunds it if the insert unwinds (a
    /// panicking `Eq`) before [`Charge::keep`].
    pub(crate) fn charge_guard(&self, w: u32) -> Charge<'_> {
        self.charge(w);
        Charge { limits: self, w }
    }

    /// Uncounts an entry that left (or was never linked).
    pub(crate) fn refund(&self, w: u32) {
        if self.weighed && w != 0 {
            // Relaxed: a gauge that pairs with nothing; readers take it as a hint.
            self.weight.fetch_sub(u64::from(w), Ordering::Relaxed);
        }
    }

    /// The tick at which an entry last touched at `idle` has been idle too long: one tick
    /// more than the TTI in ticks, so it stays at least its TTI (the stamp is a tick
    /// rounded down) and at most two ticks longer.
    #[inline]
    pub(crate) fn idle_deadline(&self, idle: u64) -> u64 {
        if self.idle_ticks == 0 {
            crate::clock::NEVER
        } else {
            idle.saturating_add(self.idle_ticks)
                .min(crate::clock::NEVER)
        }
    }
}

/// An entry's weight, counted before it is linked; refunded when dropped unless kept.
#[derive(Debug)]
pub(crate) struct Charge<'a> {
    limits: &'a Limits,
    w: u32,
}

impl Charge<'_> {
    /// The entry was linked: its weight stays counted until its remover refunds it.
    pub(crate) fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        self.limits.refund(self.w);
    }
}

/// One segment's S3-FIFO queues (maintenance lock held for every call).
#[derive(Debug)]
pub(crate) struct Queues<K, V> {
    small: Deque<K, V>,
    main: Deque<K, V>,
    ghost: Ghost,
    sketch: Sketch,
    fill: Fill,
}

// SAFETY: 1. the queues hold pointers to nodes they touch only through their `unsafe`
// methods, whose callers hold the maintenance lock; 2. they move between threads only
// inside that lock's `Mutex`; 3. a cache only stores `K, V: Send + Sync`.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Queues<K, V> {}

/// How deep into main TinyLFU's test looks for the entry the hand would evict (see
/// [`Queues::beats_main`]): 4 took the phase change 0.3-1.0 points up and left every other
/// stream within 0.12 but the 1.2x loop at 1% (+0.2/+0.4, which it moves between runs
/// anyway), in one-thread runs of `cargo bench --bench hit_ratio -- own`; 8 gained the
/// phase change more but cost the Zipf streams at 1% 0.2-0.35; 2 gained half as much.
const VICTIM_DEPTH: usize = 4;

/// A segment's warm-up (see "Filling" in the module docs): until its first eviction new
/// entries join main while it has room; the filled entries the hand has not passed when a
/// probation of evictions ends are passed next, before small's.
#[derive(Debug, Default)]
struct Fill {
    /// Whether the segment has evicted (the fill is over).
    over: bool,
    /// Filled entries the hand has not passed yet: they are main's front, oldest first.
    /// An estimate (an entry unlinked by its remover is not told apart), kept within
    /// main's length.
    left: usize,
    /// Evictions left before the hand passes the `left` entries.
    probation: usize,
}

impl Fill {
    /// Counts an eviction from a segment that has `entries` left.
    fn evicted(&mut self, entries: usize) {
        if self.over {
            self.probation = self.probation.saturating_sub(1);
        } else {
            self.over = true;
            self.probation = entries.saturating_mul(PROBATION_TENTHS) / 10;
        }
    }

    /// Whether the hand passes main's front next, whatever small holds.
    fn due(&self) -> bool {
        self.over && self.probation == 0 && self.left > 0
    }
}

/// A filled entry's probation, in tenths of the segment's entries (see "Filling").
const PROBATION_TENTHS: usize = 15;

impl<K, V> Queues<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            small: Deque::new(SMALL),
            main: Deque::new(MAIN),
            ghost: Ghost::default(),
            sketch: Sketch::default(),
            fill: Fill::default(),
        }
    }

    /// TinyLFU's test: whether `hash` was inserted more often lately than the entry main
    /// would give up next, so taking it into main is worth it. That entry is the first of
    /// main's [`VICTIM_DEPTH`] oldest with no hits since the hand's last pass (the one the
    /// CLOCK hand would evict), or main's oldest, its pending hits counted as one.
    ///
    /// # Safety
    /// 1. Every queued node is alive.
    /// 2. The caller holds the maintenance lock.
    unsafe fn beats_main(&self, hash: u64, small: u64) -> bool {
        // TinyLFU guards a full main queue. While main holds well under its share (small
        // is over its own, as when the hand has passed filled entries), there is no place to
        // defend: a returning ghost goes in. Without this, a segment whose sketch had
        // saturated (every key of a loop counted 15) before main filled refused every
        // ghost on ties and stayed at 10% hits with a small queue of 85% (1 run in 3 of the
        // loop at 10% capacity: 72-77% hits instead of 80.6%).
        let total = self.small.weight + self.main.weight;
        // In u128: weights are u64, and a thousandfold one could overflow.
        let main_room = u128::from(1000u64.saturating_sub(2 * small));
        if u128::from(self.main.weight) * 1000 < u128::from(total) * main_room {
            return true;
        }
        // SAFETY: `first_cold`'s 1 and 2: our 1 and 2.
        match unsafe { self.main.first_cold(VICTIM_DEPTH) } {
            None => true,
            Some(victim) => {
                // A victim whose access counter is above zero (main's oldest, when none
                // of the first few is cold) holds hits the sketch has not seen yet
                // (reads do not record; the hand records a pass): they count as one.
                // SAFETY: 1: `victim` is queued, so alive; `hash` is immutable, so the read
                // races with nothing; `freq` is an atomic load.
                let (theirs, pending) = unsafe { ((*victim).hash(), (*victim).freq()) };
                self.sketch.estimate(hash) > self.sketch.estimate(theirs) + u64::from(pending > 0)
            }
        }
    }

    /// Queues a newly stored entry: main while the segment fills and main has room (see
    /// "Filling"), or if its key is a ghost that TinyLFU admits; else small. `small` is the
    /// small queue's share in thousandths ([`Limits::small_share`]), `share` the segment's
    /// share of the bound ([`Limits::share`]).
    ///
    /// # Safety
    /// 1. `node` is alive, and stays alive until it is unlinked or handed out by
    ///    [`victim`](Self::victim).
    /// 2. `node` is extended (with its allocation's provenance) and in no queue.
    /// 3. The caller holds the maintenance lock.
    pub(crate) unsafe fn admit(&mut self, node: *mut Node<K, V>, small: u64, share: u64) {
        // SAFETY: 1: alive; `hash` is immutable, so the read races with nothing.
        let hash = unsafe { (*node).hash() };
        self.sketch.fit(self.len() + 1);
        self.sketch.record(hash);
        // SAFETY: `weight_of`'s 1 and 2: our 1 and 2 (alive, with its provenance).
        let w = u64::from(unsafe { crate::entry::layout::weight_of(node) });
        // In u128, as in `beats_main`.
        let main_room = u128::from(share) * u128::from(1000u64.saturating_sub(small)) / 1000;
        let fills = !self.fill.over && u128::from(self.main.weight) + u128::from(w) <= main_room;
        // SAFETY: `beats_main`'s 1: every queued node was admitted under our 1 and is
        // still queued, so alive; its 2: our 3. `push_back`'s 1: our 1 and 2; its 2: our
        // 2; its 3: every queued node is alive, as for `beats_main`; its 4: our 3.
        unsafe {
            if fills {
                self.main.push_back(node);
                self.fill.left += 1;
            } else if self.ghost.take(hash) && self.beats_main(hash, small) {
                self.main.push_back(node);
            } else {
                self.small.push_back(node);
            }
        }
    }

    /// Takes a node that left the cache out of its queue, if it is in one.
    ///
    /// # Safety
    /// 1. `node` is alive.
    /// 2. `node` is extended (with its allocation's provenance), and in no queue or in
    ///    one of ours.
    /// 3. The caller holds the maintenance lock.
    pub(crate) unsafe fn unlink(&mut self, node: *mut Node<K, V>) {
        // SAFETY: `queue_of`'s 1: our 1 and 2; its 2: our 3. `Deque::unlink`'s 1: the
        // links and mark name the queue that holds the node, by our 2 that queue is ours,
        // and the pointer carries its allocation's provenance (our 2); its 2: every queued
        // node was admitted under `admit`'s 1, so alive; its 3: our 3.
        unsafe {
            match deque::queue_of(node) {
                SMALL => self.small.unlink(node),
                MAIN => {
                    self.main.unlink(node);
                    // Kept within main's length, so the hand never looks for a filled
                    // entry in an empty main (see `Fill::left`).
                    self.fill.left = self.fill.left.min(self.main.len);
                }
                _ => {}
            }
        }
        if self.len() == 0 {
            // Emptied (cleared, or every entry removed or expired): it fills again.
            self.fill = Fill::default();
        }
    }

    /// Entries queued.
    pub(crate) fn len(&self) -> usize {
        self.small.len + self.main.len
    }

    /// The weight of the queued entries.
    pub(crate) fn weight(&self) -> u64 {
        self.small.weight + self.main.weight
    }

    /// The next victim, out of its queue (the caller takes it out of the table), spending
    /// one unit of `budget` per entry the hand looks at; `None` when the queues are empty or
    /// the budget ran out. `small` is the small queue's share in thousandths.
    ///
    /// # Safety
    /// 1. Every queued node is alive.
    /// 2. The caller holds the maintenance lock.
    pub(crate) unsafe fn victim(
        &mut self,
        budget: &mut usize,
        small: u64,
    ) -> Option<*mut Node<K, V>> {
        while *budget > 0 {
            *budget -= 1;
            let total = self.small.weight + self.main.weight;
            // Small's share is at least one unit of weight: in a segment so small that its
            // share rounds below one entry (a bound of 200 split eight ways: 3% of 25), the
            // entry a write has just queued was otherwise the next victim, evicted by that
            // write's own turn before anyone could read it.
            let share = (u128::from(total) * u128::from(small)).max(1000);
            let from_small = !self.fill.due()
                && (self.main.len == 0 || u128::from(self.small.weight) * 1000 > share);
            // SAFETY: `pop_front`'s 1 and 2: our 1 and 2. The popped node was queued, so it
            // is alive (our 1) and extended (`admit`'s 2): reading its `hash` and `meta`
            // is sound, and `push_back`'s 1 (alive until popped: `admit`'s 1 carries
            // over), 2 (just popped, so in no queue), 3 (our 1) and 4 (our 2) hold.
            unsafe {
                if from_small {
                    let node = self.small.pop_front()?;
                    if (*node).freq() > 0 {
                        // Hit while on probation: promote, and start counting hits afresh.
                        (*node).clear_freq();
                        self.main.push_back(node);
                        continue;
                    }
                    let entries = self.len();
                    self.ghost.insert((*node).hash(), entries);
                    self.fill.evicted(entries);
                    return Some(node);
                }
                let node = self.main.pop_front()?;
                // Main's front is a filled entry while any is left (see `Fill::left`).
                self.fill.left = self.fill.left.saturating_sub(1).min(self.main.len);
                if (*node).age() > 0 {
                    // Hit since the hand last passed: the hits the sketch never saw (reads
                    // write nothing) are counted now, once per pass, so an entry that
                    // lives in main on hits alone keeps a frequency to defend its place.
                    self.sketch.record((*node).hash());
                    self.main.push_back(node);
                    continue;
                }
                self.fill.evicted(self.len());
                return Some(node);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
