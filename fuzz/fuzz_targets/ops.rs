//! Fuzz target: operation sequences decoded from bytes, run against a `HashMap` model with
//! deadlines and a manual clock. Any divergence, panic or sanitizer report is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::time::Duration;
use wheelcache::{Cache, ManualClock};

fuzz_target!(|data: &[u8]| {
    let clock = ManualClock::new();
    let cache: Cache<u8, u32> = Cache::builder()
        .clock(clock.clone())
        .segments(2)
        .tiny_tables_for_tests()
        .build();
    // key -> (value, deadline in ms; None = no expiry)
    let mut model: HashMap<u8, (u32, Option<u64>)> = HashMap::new();
    let mut now = 0u64;
    for (i, chunk) in data.chunks(3).enumerate() {
        let [op, key, arg] = match *chunk {
            [a, b, c] => [a, b, c],
            _ => break,
        };
        let key = key % 16;
        let value = i as u32;
        model.retain(|_, (_, d)| d.is_none_or(|d| d > now));
        match op % 9 {
            0 => {
                cache.insert(key, value);
                model.insert(key, (value, None));
            }
            1 => {
                let ttl = u64::from(arg % 64);
                cache.insert_with_ttl(key, value, Duration::from_millis(ttl));
                if ttl == 0 {
                    model.remove(&key);
                } else {
                    model.insert(key, (value, Some(now + ttl)));
                }
            }
            2 => assert_eq!(cache.get(&key), model.get(&key).map(|e| e.0)),
            3 => assert_eq!(cache.pin().get(&key).copied(), model.get(&key).map(|e| e.0)),
            4 => assert_eq!(cache.remove(&key), model.remove(&key).map(|e| e.0)),
            5 => {
                let want = model.entry(key).or_insert((value, None)).0;
                assert_eq!(cache.get_or_insert_with(key, || value), want);
            }
            6 => {
                let ms = u64::from(arg % 32);
                clock.advance(Duration::from_millis(ms));
                now += ms;
            }
            7 => {
                cache.run_pending_tasks();
                model.retain(|_, (_, d)| d.is_none_or(|d| d > now));
                assert_eq!(cache.len(), model.len());
            }
            _ => {
                if arg % 8 == 0 {
                    cache.clear();
                    model.clear();
                } else {
                    assert_eq!(cache.contains_key(&key), model.contains_key(&key));
                }
            }
        }
    }
});
