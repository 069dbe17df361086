//! The story this crate exists for, measured: a session store under churn.
//!
//! Worker threads run the session workload of `benches/peers/session.rs`: each keeps a
//! window of 512 live sessions and, per operation, reads a random one of them or (one in
//! eight) ends one at a random point of its life (70% `remove`, 30% abandoned to the TTL)
//! and starts a new one. Each subject runs the same work in turn while a sampler records
//! live heap bytes (a counting allocator) and RSS every 100 ms:
//!
//! - `leaky map`: `Mutex<HashMap>` that never deletes (the bug from the story);
//! - `Mutex<HashMap>`, `RwLock<HashMap>` and `dashmap`, with deadlines, swept every TTL/2
//!   but at most every 100 ms from a thread of their own (the usual fix);
//! - `wheelcache`: this crate;
//! - `moka`: per-entry expiry;
//! - `quick_cache`: no timers at all (deadlines checked on read, memory held by its bound).
//!
//! `--mode reaper` (the default): wheelcache runs its background reaper every 100 ms.
//! `--mode housekeeping`: no reaper; a thread calls each subject's own maintenance
//! (`run_pending_tasks` for wheelcache and moka, a sweep for the swept maps) every 100 ms.
//!
//! Each worker thread uses its own range of session ids (no shared counter). It prints a
//! progress line per second, then tables (throughput, hit ratio, insert and remove
//! latency percentiles, memory; mean latencies, and the share of writes slower than 1 us
//! with their share of the writes' time) and the ratios between subjects as measured
//! (losses included), and writes two SVG charts: `target/session_churn.svg` (live heap
//! over time: the leak on its own panel, the fixes zoomed on another) and
//! `target/session_churn_throughput.svg` (throughput and insert p99.9 per subject).
//!
//! `cargo run --release --example session_churn -- [--seconds N] [--threads T] [--ttl-ms M]
//! [--mode reaper|housekeeping] [--only wheelcache,moka]`
//! (`--seconds` is per subject; default 5, so about 40 s in all). For figures to compare,
//! run each subject in its own process (`--only`), alternating rounds.

#[path = "../benches/peers/mod.rs"]
mod peers;

use peers::session::{Histogram, Sessions, Tally, WINDOW};
use peers::{Dash, Moka, MutexMap, Quick, RwLockMap, Subject, Value, Wheel};
use plotters::prelude::*;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../tests/common/counting.rs"]
mod counting;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

/// The bug from the story: sessions are added and never deleted.
struct Leaky(Mutex<HashMap<u64, Value>>);

impl Subject for Leaky {
    const NAME: &'static str = "leaky map";
    const BORROWS: bool = true;
    const SWEPT: bool = false;
    fn new(_ttl: Duration, _capacity: usize) -> Self {
        Self(Mutex::new(HashMap::new()))
    }
    fn insert(&self, key: u64, value: Value) {
        self.0.lock().unwrap().insert(key, value);
    }
    fn get(&self, key: u64) -> Option<Value> {
        self.0.lock().unwrap().get(&key).cloned()
    }
    fn read(&self, key: u64) -> Option<u64> {
        self.0.lock().unwrap().get(&key).map(|s| s.user)
    }
    fn remove(&self, _key: u64) {} // nothing ever deletes
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

struct Outcome {
    name: &'static str,
    len: usize,
    ops: u64,
    secs: f64,
    peak: isize,
    middle: isize,
    last: isize,
    live_sessions: f64,
    rss_peak: u64,
    tally: Tally,
    series: Vec<(f64, isize)>,
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// How lapsed entries leave during a run (see the module docs).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Reaper,
    Housekeeping,
}

/// The background cadence: every TTL/2, at most every 100 ms (the bench's rule).
fn cadence(ttl: Duration) -> Duration {
    (ttl / 2).max(Duration::from_millis(100))
}

fn run<S: Subject>(threads: usize, secs: f64, ttl: Duration, mode: Mode) -> Outcome {
    let name = S::NAME;
    let base = counting::live_bytes();
    let every = cadence(ttl);
    let store = Arc::new(match mode {
        Mode::Reaper => S::with_reaper(ttl, 1 << 16, every),
        Mode::Housekeeping => S::new(ttl, 1 << 16),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let abandoned = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (store, stop, abandoned) = (store.clone(), stop.clone(), abandoned.clone());
            std::thread::spawn(move || {
                let mut sessions = Sessions::new(t);
                let mut tally = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    let before = tally.abandoned;
                    sessions.run(&*store, 256, &mut tally);
                    // Published once per 256 operations, for the sampler's estimate.
                    abandoned.fetch_add(tally.abandoned - before, Ordering::Relaxed);
                }
                tally
            })
        })
        .collect();
    // Swept maps are swept in both modes; with housekeeping, every subject's own
    // maintenance runs at the same cadence.
    let background = (S::SWEPT || mode == Mode::Housekeeping).then(|| {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
                if last.elapsed() >= every {
                    store.maintain();
                    last = Instant::now();
                }
            }
        })
    });
    // Sample every 100 ms; sessions alive now ~ abandoned within the last TTL + in flight.
    let mut series = Vec::new();
    let mut abandons: Vec<u64> = Vec::new();
    let (mut peak, mut rss_peak) = (0isize, 0u64);
    let window = (ttl.as_millis() / 100).max(1) as usize;
    let mut live_sessions = 0.0;
    while started.elapsed().as_secs_f64() < secs {
        std::thread::sleep(Duration::from_millis(100));
        let t = started.elapsed().as_secs_f64();
        let bytes = counting::live_bytes() - base;
        abandons.push(abandoned.load(Ordering::Relaxed));
        let back = abandons.len().saturating_sub(window + 1);
        live_sessions =
            (abandons[abandons.len() - 1] - abandons[back]) as f64 + (threads * WINDOW) as f64;
        peak = peak.max(bytes);
        rss_peak = rss_peak.max(rss_bytes());
        series.push((t, bytes));
        if series.len() % 10 == 0 {
            println!(
                "  {name:<16} t={t:>5.1}s live heap {:>9.1} MiB  rss {:>7.1} MiB",
                bytes as f64 / 1048576.0,
                rss_bytes() as f64 / 1048576.0
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    for w in workers {
        tally.merge(&w.join().unwrap());
    }
    if let Some(s) = background {
        s.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let len = store.len();
    let middle = series.get(series.len() / 2).map_or(0, |s| s.1);
    let last = series.last().map_or(0, |s| s.1);
    drop(store);
    settle_heap();
    Outcome {
        name,
        len,
        ops: tally.ops,
        secs: elapsed,
        peak,
        middle,
        last,
        live_sessions,
        rss_peak,
        tally,
        series,
    }
}

/// Waits (up to 3 s) until the live heap stops changing, pushing crossbeam's epoch along
/// meanwhile, so memory a dropped subject frees late (moka and wheelcache both free
/// through epochs) is not subtracted from the next subject's figures.
fn settle_heap() {
    let (mut last, mut still) = (counting::live_bytes(), 0);
    let deadline = Instant::now() + Duration::from_secs(3);
    while still < 5 && Instant::now() < deadline {
        crossbeam_epoch::pin().flush();
        std::thread::sleep(Duration::from_millis(20));
        let now = counting::live_bytes();
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `p50 / p99 / p99.9 / max` of a histogram, in microseconds.
fn percentiles(h: &Histogram) -> String {
    let us = |ns: u64| ns as f64 / 1e3;
    format!(
        "{:.2} / {:.1} / {:.1} / {:.0}",
        us(h.quantile(0.5)),
        us(h.quantile(0.99)),
        us(h.quantile(0.999)),
        us(h.max)
    )
}

fn main() {
    let secs = arg("--seconds", 5.0);
    let threads = arg("--threads", 4.0) as usize;
    let ttl = Duration::from_millis(arg("--ttl-ms", 200.0) as u64);
    let args: Vec<String> = std::env::args().collect();
    let after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.to_lowercase())
    };
    let mode = match after("--mode").as_deref() {
        None | Some("reaper") => Mode::Reaper,
        Some("housekeeping") => Mode::Housekeeping,
        Some(other) => panic!("--mode {other}: expected reaper or housekeeping"),
    };
    let mode_name = match mode {
        Mode::Reaper => "reaper (wheelcache's own; swept maps swept)",
        Mode::Housekeeping => "housekeeping (each subject's own maintenance from a thread)",
    };
    println!(
        "session churn: {threads} threads x {WINDOW} live sessions, TTL {ttl:?}, {secs} s per subject, \
         background every {:?}: {mode_name}",
        cadence(ttl)
    );
    // `--only wheelcache,moka` runs a subset (names as in the table, case-insensitive).
    let only: Vec<String> = after("--only")
        .map(|list| list.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut outcomes = Vec::new();
    // moka runs last: it frees some memory through crossbeam-epoch well after its drop,
    // which would otherwise show up as negative bytes in the next subject's figures.
    let names = [
        Leaky::NAME,
        MutexMap::NAME,
        RwLockMap::NAME,
        Dash::NAME,
        Quick::NAME,
        Wheel::NAME,
        Moka::NAME,
    ];
    for (i, name) in names.into_iter().enumerate() {
        if !only.is_empty() && !only.contains(&name.to_lowercase()) {
            continue;
        }
        println!("{name}:");
        outcomes.push(match i {
            0 => run::<Leaky>(threads, secs, ttl, mode),
            1 => run::<MutexMap>(threads, secs, ttl, mode),
            2 => run::<RwLockMap>(threads, secs, ttl, mode),
            3 => run::<Dash>(threads, secs, ttl, mode),
            4 => run::<Quick>(threads, secs, ttl, mode),
            5 => run::<Wheel>(threads, secs, ttl, mode),
            _ => run::<Moka>(threads, secs, ttl, mode),
        });
    }
    report(&outcomes);
    match chart(&outcomes) {
        Ok(path) => println!("memory chart: {path}"),
        Err(e) => println!("memory chart not written: {e}"),
    }
    match bars(&outcomes) {
        Ok(path) => println!("throughput chart: {path}"),
        Err(e) => println!("throughput chart not written: {e}"),
    }
}

/// The tables, and wheelcache's ratios against every other subject.
fn report(outcomes: &[Outcome]) {
    println!();
    println!("| subject | Mops/s | hits | insert p50 / p99 / p99.9 / max (us) | remove p50 / p99 / p99.9 / max (us) | read (1 in 16) p50 / p99 / p99.9 / max (us) |");
    println!("|---|---|---|---|---|---|");
    for o in outcomes {
        let t = &o.tally;
        println!(
            "| {} | {:.2} | {:.2}% | {} | {} | {} |",
            o.name,
            o.ops as f64 / o.secs / 1e6,
            100.0 * t.hits as f64 / t.reads.max(1) as f64,
            percentiles(&t.insert),
            percentiles(&t.remove),
            percentiles(&t.read),
        );
    }
    println!();
    println!("| subject | peak heap MiB | final heap MiB | end/middle | bytes per live session | peak RSS MiB | entries at the end |");
    println!("|---|---|---|---|---|---|---|");
    for o in outcomes {
        println!(
            "| {} | {:.1} | {:.1} | {:.2} | {:.0} | {:.0} | {} |",
            o.name,
            o.peak as f64 / 1048576.0,
            o.last as f64 / 1048576.0,
            o.last as f64 / o.middle.max(1) as f64,
            o.last as f64 / o.live_sessions.max(1.0),
            o.rss_peak as f64 / 1048576.0,
            o.len,
        );
    }
    println!();
    println!("| subject | mean insert / remove / read (ns) | inserts over 1 us: of inserts / of insert time | removes over 1 us: of removes / of remove time |");
    println!("|---|---|---|---|");
    for o in outcomes {
        let t = &o.tally;
        let slow = |h: &Histogram| {
            let (ops, time) = h.slower_than(1000.0);
            format!("{:.1}% / {:.0}%", 100.0 * ops, 100.0 * time)
        };
        println!(
            "| {} | {:.0} / {:.0} / {:.0} | {} | {} |",
            o.name,
            t.insert.mean(),
            t.remove.mean(),
            t.read.mean(),
            slow(&t.insert),
            slow(&t.remove),
        );
    }
    let Some(w) = outcomes.iter().find(|o| o.name == Wheel::NAME) else {
        return;
    };
    println!();
    let rate = |o: &Outcome| o.ops as f64 / o.secs;
    let per = |o: &Outcome| o.last as f64 / o.live_sessions.max(1.0);
    let p999 = |h: &Histogram| h.quantile(0.999) as f64;
    for o in outcomes
        .iter()
        .filter(|o| o.name != Wheel::NAME && o.name != Leaky::NAME)
    {
        let t = rate(w) / rate(o);
        println!(
            "wheelcache vs {}: throughput {t:.2}x ({}), memory per live session {:.2}x, insert p99.9 {:.2}x, remove p99.9 {:.2}x",
            o.name,
            if t >= 1.0 { "faster" } else { "SLOWER" },
            per(w) / per(o),
            p999(&w.tally.insert) / p999(&o.tally.insert),
            p999(&w.tally.remove) / p999(&o.tally.remove).max(1.0),
        );
    }
}

fn chart_path(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    std::fs::create_dir_all(&dir)?;
    Ok(format!("{dir}/{name}"))
}

const COLORS: [RGBColor; 7] = [RED, BLUE, CYAN, MAGENTA, YELLOW, GREEN, BLACK];

fn color_of(outcomes: &[Outcome], name: &str) -> RGBColor {
    let i = outcomes.iter().position(|o| o.name == name).unwrap_or(0);
    COLORS[i % COLORS.len()]
}

/// Live heap over time: the leak on its own panel (it dwarfs everything), the fixes on a
/// second panel with their own scale.
fn chart(outcomes: &[Outcome]) -> Result<String, Box<dyn std::error::Error>> {
    let path = chart_path("session_churn.svg")?;
    let root = SVGBackend::new(&path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let leak: Vec<&Outcome> = outcomes.iter().filter(|o| o.name == Leaky::NAME).collect();
    let fixes: Vec<&Outcome> = outcomes.iter().filter(|o| o.name != Leaky::NAME).collect();
    panel(&left, "The leak: sessions never deleted", &leak, outcomes)?;
    panel(
        &right,
        "The fixes, zoomed (lower and flat is better)",
        &fixes,
        outcomes,
    )?;
    root.present()?;
    drop((left, right, root));
    Ok(path)
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    shown: &[&Outcome],
    all: &[Outcome],
) -> Result<(), Box<dyn std::error::Error>> {
    let max_t = shown
        .iter()
        .flat_map(|o| o.series.last())
        .map(|s| s.0)
        .fold(1.0, f64::max);
    let max_mib = shown
        .iter()
        .flat_map(|o| o.series.iter().map(|s| s.1))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        / 1048576.0;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..max_t, 0.0..max_mib * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("live heap, MiB")
        .draw()?;
    for o in shown {
        let color = color_of(all, o.name);
        chart
            .draw_series(LineSeries::new(
                o.series.iter().map(|&(t, b)| (t, b as f64 / 1048576.0)),
                color.stroke_width(2),
            ))?
            .label(o.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Throughput and insert p99.9 per subject, as bars (one panel each).
fn bars(outcomes: &[Outcome]) -> Result<String, Box<dyn std::error::Error>> {
    let path = chart_path("session_churn_throughput.svg")?;
    let root = SVGBackend::new(&path, (1200, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let rates: Vec<f64> = outcomes
        .iter()
        .map(|o| o.ops as f64 / o.secs / 1e6)
        .collect();
    let p999: Vec<f64> = outcomes
        .iter()
        .map(|o| o.tally.insert.quantile(0.999) as f64 / 1e3)
        .collect();
    bar_panel(
        &left,
        "Throughput, M ops/s (higher is better)",
        &rates,
        outcomes,
        false,
    )?;
    bar_panel(
        &right,
        "Insert p99.9, us, log scale (lower is better)",
        &p999,
        outcomes,
        true,
    )?;
    root.present()?;
    drop((left, right, root));
    Ok(path)
}

fn bar_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    values: &[f64],
    outcomes: &[Outcome],
    log: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let top = values.iter().copied().fold(0.0, f64::max).max(1e-9);
    let n = values.len().max(1);
    let mut builder = ChartBuilder::on(area);
    let chart = builder
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(55);
    if log {
        let bottom = values.iter().copied().fold(top, f64::min).max(1e-3) / 2.0;
        let mut chart = chart.build_cartesian_2d(0.0..n as f64, (bottom..top * 2.0).log_scale())?;
        chart.configure_mesh().disable_x_mesh().x_labels(0).draw()?;
        draw_bars(&mut chart, values, outcomes, bottom, top * 2.0)?;
    } else {
        let mut chart = chart.build_cartesian_2d(0.0..n as f64, 0.0..top * 1.15)?;
        chart.configure_mesh().disable_x_mesh().x_labels(0).draw()?;
        draw_bars(&mut chart, values, outcomes, 0.0, top * 1.15)?;
    }
    Ok(())
}

fn draw_bars<Y>(
    chart: &mut ChartContext<
        '_,
        SVGBackend<'_>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, Y>,
    >,
    values: &[f64],
    outcomes: &[Outcome],
    bottom: f64,
    top: f64,
) -> Result<(), Box<dyn std::error::Error>>
where
    Y: Ranged<ValueType = f64>,
{
    let label_gap = if bottom > 0.0 { 1.15 } else { 1.0 };
    for (i, (o, v)) in outcomes.iter().zip(values).enumerate() {
        let color = color_of(outcomes, o.name);
        let x = i as f64;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(x + 0.15, bottom), (x + 0.85, *v)],
            color.filled(),
        )))?;
        let y = if bottom > 0.0 {
            v * label_gap
        } else {
            v + top * 0.02
        };
        chart.draw_series(std::iter::once(Text::new(
            format!("{} {:.2}", o.name, v),
            (x + 0.1, y),
            ("sans-serif", 12),
        )))?;
    }
    Ok(())
}
