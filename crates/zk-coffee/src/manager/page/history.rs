//! What the page's charts draw: per shop, one sample a second for the last [`SECONDS`]
//! (orders served in that second, orders waiting at its end, and the p50/p95/p99 of the
//! waits served in it), kept by the manager so that a page opened late still shows them.
//!
//! Memory is bounded: [`SECONDS`] samples a shop, and at most [`WAITS_PER_SECOND`] waits kept
//! for the open second's percentiles (beyond that, a reservoir sample: every later wait
//! replaces a kept one at random, so the percentiles stay those of a uniform sample; the count
//! stays exact).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// How much history the charts get: 15 minutes.
pub const SECONDS: usize = 15 * 60;

/// Waits kept for one second's percentiles: at thousands of orders a second, a sample.
pub const WAITS_PER_SECOND: usize = 4096;

/// One second of one shop.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The second, since the Unix epoch.
    pub second: u64,
    /// Orders served in it.
    pub served: u64,
    /// Orders waiting at its end.
    pub waiting: u64,
    /// The waits served in it, p50/p95/p99 in seconds (none if nothing was served).
    pub waits: Option<[f64; 3]>,
}

impl Sample {
    /// `[second, served, waiting, p50, p95, p99]`, compact for the page (nulls where nothing
    /// was served).
    fn to_json(&self) -> Value {
        let [p50, p95, p99] = self.waits.map_or([None; 3], |w| w.map(Some));
        json!([self.second, self.served, self.waiting, p50, p95, p99])
    }
}

#[derive(Debug, Default)]
struct Shop {
    samples: VecDeque<Sample>,
    /// The second being filled, and what it has so far.
    open: Option<u64>,
    served: u64,
    waits: Vec<f64>,
}

impl Shop {
    fn close(&mut self, second: u64, waiting: u64) {
        let waits = (!self.waits.is_empty()).then(|| percentiles(&mut self.waits));
        if self.samples.len() == SECONDS {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample { second, served: self.served, waiting, waits });
        self.served = 0;
        self.waits.clear();
    }
}

/// The p50, p95 and p99 of `waits` (nearest rank), which it sorts.
fn percentiles(waits: &mut [f64]) -> [f64; 3] {
    waits.sort_by(f64::total_cmp);
    let rank = |p: f64| waits[((p * waits.len() as f64).ceil() as usize).clamp(1, waits.len()) - 1];
    [rank(0.50), rank(0.95), rank(0.99)]
}

/// Every followed shop's samples.
#[derive(Debug, Default)]
pub struct History {
    shops: BTreeMap<String, Shop>,
    /// The last second closed, in any shop.
    last: u64,
}

impl History {
    /// An order of `shop` was served after waiting `wait` (in the open second).
    pub fn served(&mut self, shop: &str, wait: Duration) {
        let s = self.shops.entry(shop.to_owned()).or_default();
        s.served += 1;
        let wait = wait.as_secs_f64();
        if s.waits.len() < WAITS_PER_SECOND {
            s.waits.push(wait);
        } else {
            // Reservoir sampling: the n-th wait is kept with probability WAITS_PER_SECOND / n.
            let slot = rand::random_range(0..s.served) as usize;
            if slot < WAITS_PER_SECOND {
                s.waits[slot] = wait;
            }
        }
    }

    /// At `wall`, `shop` has `waiting` orders: the second open until now is closed once
    /// `wall` is in a later one (a second with no tick at all, the manager busy, is skipped).
    pub fn sample(&mut self, shop: &str, wall: SystemTime, waiting: u64) {
        let now = wall.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let s = self.shops.entry(shop.to_owned()).or_default();
        match s.open {
            Some(open) if open < now => {
                s.close(open, waiting);
                s.open = Some(now);
                self.last = self.last.max(open);
            }
            Some(_) => {}
            None => s.open = Some(now),
        }
    }

    /// `shop` is no longer followed.
    pub fn forget(&mut self, shop: &str) {
        self.shops.remove(shop);
    }

    /// The last second closed (0: none yet).
    pub fn last_second(&self) -> u64 {
        self.last
    }

    /// `{shop: [[second, served, waiting, p50, p95, p99], ...]}` for the seconds after `since`.
    pub fn to_json(&self, since: u64) -> Value {
        let shops: serde_json::Map<String, Value> = self
            .shops
            .iter()
            .map(|(name, s)| {
                let samples: Vec<Value> = s.samples.iter().filter(|x| x.second > since).map(Sample::to_json).collect();
                (name.clone(), Value::Array(samples))
            })
            .collect();
        Value::Object(shops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(second) + Duration::from_millis(millis)
    }

    #[test]
    fn a_second_is_closed_with_its_count_waiting_and_percentiles() {
        let mut h = History::default();
        h.sample("/", at(100, 0), 0);
        for ms in 1..=100 {
            h.served("/", Duration::from_millis(ms));
        }
        h.sample("/", at(100, 900), 7);
        assert_eq!(h.last_second(), 0, "the second is still open");
        h.sample("/", at(101, 10), 3);
        assert_eq!(h.last_second(), 100);
        let json = h.to_json(0);
        assert_eq!(json["/"], json!([[100, 100, 3, 0.05, 0.095, 0.099]]));
        h.sample("/", at(102, 0), 0);
        assert_eq!(h.to_json(100)["/"], json!([[101, 0, 0, null, null, null]]), "a quiet second has no waits");
    }

    #[test]
    fn memory_is_bounded() {
        let mut h = History::default();
        for second in 0..(SECONDS as u64 + 50) {
            h.sample("s", at(second, 0), 1);
        }
        assert_eq!(h.shops["s"].samples.len(), SECONDS);
        assert_eq!(h.shops["s"].samples[0].second, 49);
        for _ in 0..(WAITS_PER_SECOND * 3) {
            h.served("s", Duration::from_secs(1));
        }
        assert_eq!(h.shops["s"].waits.len(), WAITS_PER_SECOND);
        assert_eq!(h.shops["s"].served, WAITS_PER_SECOND as u64 * 3, "the count stays exact");
        h.forget("s");
        assert_eq!(h.to_json(0), json!({}));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        assert_eq!(percentiles(&mut [3.0]), [3.0, 3.0, 3.0]);
        assert_eq!(percentiles(&mut [4.0, 1.0, 3.0, 2.0]), [2.0, 4.0, 4.0]);
    }
}
