//! What happened to the orders of a load run: the count of each outcome, the latencies in a
//! histogram, the `summary` line for scripts, the summary file (`--summary-json`) and the
//! merging of several runs' files into one summary.
//!
//! Percentiles of several processes cannot be averaged (the mean of two p99s is nobody's p99);
//! their histograms can be added. So the latencies are kept in an HdrHistogram (the
//! `hdrhistogram` crate, the port of the histogram wrk2 and most load tools use: three
//! significant digits, microseconds, any range), and a summary file carries it in HdrHistogram's
//! V2 serialization, base64-encoded, so that `customer --merge-summaries` can add the runs of
//! many processes on many hosts and read the percentiles off the sum. The figures are exact to
//! 0.1 %.
//!
//! Two modes are summed up. Closed loop (`--concurrency`): a served order's latency counts from
//! placing it. Open loop (`--rate`): orders are due on a schedule, and an order's latency counts
//! from the moment it was due, whether or not the load could place it then; an order withdrawn
//! when patience ran out counts too, at its wait (patience or more), so that a stall of the
//! shop shows in the percentiles instead of dropping out of them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::customer::Outcome;
use crate::error::{Error, Result};

/// What a summary file says it is, so that a wrong file is refused by name.
pub const FORMAT: &str = "zk-coffee-summary/1";

/// Latencies, in microseconds, three significant digits: a histogram that adds up.
#[derive(Debug, Clone, PartialEq)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Latencies {
        // An hour from the start, growing past it if need be: any latency fits.
        let mut histogram = Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .unwrap_or_else(|_| unreachable!("1 µs to an hour at 3 significant digits is valid"));
        histogram.auto(true);
        Latencies(histogram)
    }
}

impl Latencies {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if self.0.record(micros).is_err() {
            self.0.saturating_record(micros);
        }
    }

    /// How many latencies were recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `p`-th percentile (0-100): the latency that `p` % of those recorded do not exceed.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        (!self.is_empty()).then(|| Duration::from_micros(self.0.value_at_quantile(p / 100.0)))
    }

    /// The longest.
    pub fn max(&self) -> Option<Duration> {
        (!self.is_empty()).then(|| Duration::from_micros(self.0.max()))
    }

    /// Adds `other`'s latencies to these.
    pub fn add(&mut self, other: &Latencies) {
        // Auto-resizing histograms take any other's range.
        let _ = self.0.add(&other.0);
    }

    /// HdrHistogram's V2 serialization, base64-encoded.
    pub fn to_base64(&self) -> String {
        let mut bytes = Vec::new();
        // Writing to a Vec fails only on a histogram too large to encode, which ours cannot be.
        let _ = V2Serializer::new().serialize(&self.0, &mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Reads what [`Latencies::to_base64`] wrote.
    pub fn from_base64(text: &str) -> std::result::Result<Latencies, String> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("not base64: {e}"))?;
        let mut histogram: Histogram<u64> =
            Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| format!("not an HdrHistogram: {e:?}"))?;
        histogram.auto(true);
        Ok(Latencies(histogram))
    }
}

/// What an open-loop run adds to its summary.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenLoop {
    /// Orders due per second.
    pub rate: f64,
    /// Orders that became due.
    pub due: u64,
    /// The most orders placed and not yet done at once (`--max-outstanding`).
    pub max_outstanding: u64,
    /// Orders held back because that many were outstanding (their latency still counts from
    /// when they were due).
    pub capped: u64,
    /// The longest an order waited for a free place under the cap.
    pub max_held: Duration,
}

/// What happened to the orders of a load run (or of several, merged).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Orders served.
    pub served: u64,
    /// Orders withdrawn when patience ran out.
    pub gave_up: u64,
    /// Orders a barista rejected.
    pub rejected: u64,
    /// Visits that found no barista on shift.
    pub no_barista: u64,
    /// Visits that found every queue full.
    pub shop_full: u64,
    /// Visits that ended in any other error.
    pub failed: u64,
    /// From the first order (open loop: the first due) to the last outcome.
    pub elapsed: Duration,
    /// Closed loop: the served orders' latencies from placing them. Open loop: the served and
    /// given-up orders' latencies from when they were due.
    pub latencies: Latencies,
    /// Served orders per barista.
    pub per_barista: BTreeMap<String, u64>,
    /// `Some` for an open-loop run.
    pub open: Option<OpenLoop>,
    /// Wall-clock time of the first order and of the last outcome: runs of several processes
    /// (on hosts with synchronised clocks) merge into one span.
    pub span: Option<(SystemTime, SystemTime)>,
}

impl Summary {
    /// Every visit counted.
    pub fn visits(&self) -> u64 {
        self.served + self.gave_up + self.rejected + self.no_barista + self.shop_full + self.failed
    }

    /// Orders served per second over the run.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.served as f64 / secs
        } else {
            0.0
        }
    }

    /// The `p`-th percentile (0-100) of the latencies.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        self.latencies.percentile(p)
    }

    /// Whether every visit was served.
    pub fn all_served(&self) -> bool {
        self.served == self.visits()
    }

    /// Counts a visit's outcome. `from_due`: in open loop, the time from when the order was
    /// due to its outcome, which is then its latency (also for a give-up); else a served
    /// order's latency is its wait from placing it.
    pub fn count(&mut self, outcome: &Result<Outcome>, from_due: Option<Duration>) {
        match outcome {
            Ok(Outcome::Served(receipt)) => {
                self.served += 1;
                self.latencies.record(from_due.unwrap_or(receipt.waited));
                *self.per_barista.entry(receipt.barista.to_string()).or_default() += 1;
            }
            Ok(Outcome::GaveUp(_)) => {
                self.gave_up += 1;
                if let Some(latency) = from_due {
                    self.latencies.record(latency);
                }
            }
            Ok(Outcome::Rejected(..)) => self.rejected += 1,
            Err(Error::NoBarista(_)) => self.no_barista += 1,
            Err(Error::ShopFull { .. }) => self.shop_full += 1,
            Err(_) => self.failed += 1,
        }
    }

    /// Adds the counts and latencies of `other` (a part of the same run: `elapsed` and the
    /// span are the caller's).
    pub(crate) fn add_counts(&mut self, other: &Summary) {
        self.served += other.served;
        self.gave_up += other.gave_up;
        self.rejected += other.rejected;
        self.no_barista += other.no_barista;
        self.shop_full += other.shop_full;
        self.failed += other.failed;
        self.latencies.add(&other.latencies);
        for (barista, n) in &other.per_barista {
            *self.per_barista.entry(barista.clone()).or_default() += n;
        }
    }

    /// The summaries of several runs made at the same time (several processes, several
    /// hosts) as one: counts and histograms added, open-loop rates added, and the elapsed
    /// time from the earliest start to the latest end. Runs of both modes do not merge.
    pub fn merge(summaries: &[Summary]) -> Result<Summary> {
        let mut total = Summary::default();
        let Some(first) = summaries.first() else { return Ok(total) };
        if summaries.iter().any(|s| s.open.is_some() != first.open.is_some()) {
            return Err(Error::usage("cannot merge open-loop (--rate) and closed-loop summaries: their latencies differ"));
        }
        for s in summaries {
            total.add_counts(s);
            total.elapsed = total.elapsed.max(s.elapsed);
            if let Some(open) = &s.open {
                let sum = total.open.get_or_insert(OpenLoop {
                    rate: 0.0,
                    due: 0,
                    max_outstanding: 0,
                    capped: 0,
                    max_held: Duration::ZERO,
                });
                sum.rate += open.rate;
                sum.due += open.due;
                sum.max_outstanding += open.max_outstanding;
                sum.capped += open.capped;
                sum.max_held = sum.max_held.max(open.max_held);
            }
        }
        let spans: Vec<(SystemTime, SystemTime)> = summaries.iter().filter_map(|s| s.span).collect();
        if spans.len() == summaries.len() {
            let start = spans.iter().map(|s| s.0).min().unwrap_or(UNIX_EPOCH);
            let end = spans.iter().map(|s| s.1).max().unwrap_or(UNIX_EPOCH);
            total.span = Some((start, end));
            total.elapsed = end.duration_since(start).unwrap_or(total.elapsed);
        }
        Ok(total)
    }

    /// A few lines for people.
    pub fn report(&self) -> String {
        let ms = |d: Option<Duration>| d.map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0)).unwrap_or_else(|| "-".into());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} visits in {:.2}s: {} served, {} gave up, {} rejected, {} no barista, {} shop full, {} failed",
            self.visits(),
            self.elapsed.as_secs_f64(),
            self.served,
            self.gave_up,
            self.rejected,
            self.no_barista,
            self.shop_full,
            self.failed
        );
        let _ = writeln!(out, "throughput: {:.1} orders served/s", self.throughput());
        if let Some(open) = &self.open {
            let _ = writeln!(
                out,
                "open loop: {:.1} orders due/s, {} due, {} held back by the cap of {} outstanding (longest {} ms); \
                 latency counts from when an order was due",
                open.rate,
                open.due,
                open.capped,
                open.max_outstanding,
                ms(Some(open.max_held))
            );
        }
        let _ = writeln!(
            out,
            "latency ms: p50 {}  p95 {}  p99 {}  max {}",
            ms(self.percentile(50.0)),
            ms(self.percentile(95.0)),
            ms(self.percentile(99.0)),
            ms(self.latencies.max())
        );
        let per: Vec<String> = self.per_barista.iter().map(|(b, n)| format!("{b} {n}")).collect();
        let _ = write!(out, "served per barista: {}", if per.is_empty() { "-".into() } else { per.join(", ") });
        out
    }

    /// One `key=value` line for scripts, starting with `summary`; an open-loop run adds
    /// `rate= due= capped= max_held_ms=` at the end.
    pub fn line(&self) -> String {
        let per: Vec<String> = self.per_barista.iter().map(|(b, n)| format!("{b}:{n}")).collect();
        let mut line = format!(
            "summary visits={} served={} gave_up={} rejected={} no_barista={} shop_full={} failed={} elapsed_s={:.3} \
             throughput={:.1} p50_ms={} p95_ms={} p99_ms={} max_ms={} per_barista={}",
            self.visits(),
            self.served,
            self.gave_up,
            self.rejected,
            self.no_barista,
            self.shop_full,
            self.failed,
            self.elapsed.as_secs_f64(),
            self.throughput(),
            line_ms(self.percentile(50.0)),
            line_ms(self.percentile(95.0)),
            line_ms(self.percentile(99.0)),
            line_ms(self.latencies.max()),
            if per.is_empty() { "-".into() } else { per.join(",") }
        );
        if let Some(open) = &self.open {
            let _ = write!(
                line,
                " rate={:.1} due={} capped={} max_held_ms={}",
                open.rate,
                open.due,
                open.capped,
                line_ms(Some(open.max_held))
            );
        }
        line
    }

    /// The summary file's JSON (one line): see README, "The summary file".
    pub fn to_json(&self) -> String {
        // Milliseconds to the microsecond, as the histogram holds them.
        let ms = |d: Option<Duration>| d.map(|d| d.as_micros() as f64 / 1000.0);
        let unix_ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let file = File {
            format: FORMAT.to_owned(),
            mode: if self.open.is_some() { Mode::Open } else { Mode::Closed },
            visits: self.visits(),
            served: self.served,
            gave_up: self.gave_up,
            rejected: self.rejected,
            no_barista: self.no_barista,
            shop_full: self.shop_full,
            failed: self.failed,
            elapsed_s: self.elapsed.as_micros() as f64 / 1e6,
            started_unix_ms: self.span.map(|s| unix_ms(s.0)),
            ended_unix_ms: self.span.map(|s| unix_ms(s.1)),
            throughput: (self.throughput() * 10.0).round() / 10.0,
            p50_ms: ms(self.percentile(50.0)),
            p95_ms: ms(self.percentile(95.0)),
            p99_ms: ms(self.percentile(99.0)),
            max_ms: ms(self.latencies.max()),
            per_barista: self.per_barista.clone(),
            open_loop: self.open.as_ref().map(|o| OpenFile {
                rate: o.rate,
                due: o.due,
                max_outstanding: o.max_outstanding,
                capped: o.capped,
                max_held_ms: o.max_held.as_micros() as f64 / 1000.0,
            }),
            histogram: StoredHistogram { count: self.latencies.len(), unit: "us".into(), v2_base64: self.latencies.to_base64() },
        };
        serde_json::to_string(&file).unwrap_or_else(|e| unreachable!("a summary always serialises: {e}"))
    }

    /// Reads a summary file's JSON; `what` names it in the error.
    pub fn from_json(text: &str, what: &str) -> Result<Summary> {
        let bad = |why: String| Error::usage(format!("{what} is not a zk-coffee summary file: {why}"));
        let file: File = serde_json::from_str(text.trim()).map_err(|e| bad(e.to_string()))?;
        if file.format != FORMAT {
            return Err(bad(format!("its format is {:?}, not {FORMAT:?}", file.format)));
        }
        let latencies = Latencies::from_base64(&file.histogram.v2_base64).map_err(bad)?;
        if latencies.len() != file.histogram.count {
            return Err(bad(format!("its histogram holds {} latencies, not {}", latencies.len(), file.histogram.count)));
        }
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        let seconds = |s: f64, name: &str| {
            Duration::try_from_secs_f64(s.max(0.0) / if name.ends_with("_ms") { 1000.0 } else { 1.0 })
                .map_err(|_| bad(format!("{name} {s} is not a duration")))
        };
        let summary = Summary {
            served: file.served,
            gave_up: file.gave_up,
            rejected: file.rejected,
            no_barista: file.no_barista,
            shop_full: file.shop_full,
            failed: file.failed,
            elapsed: seconds(file.elapsed_s, "elapsed_s")?,
            latencies,
            per_barista: file.per_barista,
            open: match (file.mode, file.open_loop) {
                (Mode::Open, Some(o)) => Some(OpenLoop {
                    rate: o.rate,
                    due: o.due,
                    max_outstanding: o.max_outstanding,
                    capped: o.capped,
                    max_held: seconds(o.max_held_ms, "max_held_ms")?,
                }),
                (Mode::Closed, None) => None,
                _ => return Err(bad("open_loop must be there exactly when the mode is open".into())),
            },
            span: file.started_unix_ms.zip(file.ended_unix_ms).map(|(s, e)| (at(s), at(e))),
        };
        if summary.visits() != file.visits {
            return Err(bad(format!("its outcomes add up to {} visits, not {}", summary.visits(), file.visits)));
        }
        Ok(summary)
    }

    /// Writes the summary file.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        std::fs::write(path, format!("{}\n", self.to_json()))
            .map_err(|e| Error::usage(format!("cannot write the summary file {}: {e}", path.display())))
    }

    /// Reads a summary file.
    pub fn read_json(path: &Path) -> Result<Summary> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("cannot read the summary file {}: {e}", path.display())))?;
        Summary::from_json(&text, &path.display().to_string())
    }
}

/// Milliseconds with three decimals for the `summary` line (`nan`: none).
fn line_ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.3}", d.as_secs_f64() * 1000.0)).unwrap_or_else(|| "nan".into())
}

/// The summary file, as written.
#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    mode: Mode,
    visits: u64,
    served: u64,
    gave_up: u64,
    rejected: u64,
    no_barista: u64,
    shop_full: u64,
    failed: u64,
    elapsed_s: f64,
    started_unix_ms: Option<u64>,
    ended_unix_ms: Option<u64>,
    throughput: f64,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    per_barista: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    open_loop: Option<OpenFile>,
    histogram: StoredHistogram,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Closed,
    Open,
}

#[derive(Serialize, Deserialize)]
struct OpenFile {
    rate: f64,
    due: u64,
    max_outstanding: u64,
    capped: u64,
    max_held_ms: f64,
}

/// The latencies as stored: how many, their unit, and the histogram.
#[derive(Serialize, Deserialize)]
struct StoredHistogram {
    count: u64,
    unit: String,
    v2_base64: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Absence;

    fn summary(latencies_ms: &[u64]) -> Summary {
        let mut latencies = Latencies::default();
        latencies_ms.iter().for_each(|&ms| latencies.record(Duration::from_millis(ms)));
        Summary { served: latencies_ms.len() as u64, latencies, elapsed: Duration::from_secs(2), ..Summary::default() }
    }

    /// Within the histogram's 0.1 %.
    fn close_to(d: Option<Duration>, ms: u64) -> bool {
        d.is_some_and(|d| (d.as_secs_f64() * 1000.0 - ms as f64).abs() <= ms as f64 / 1000.0)
    }

    #[test]
    fn percentiles_use_the_nearest_rank_to_a_tenth_of_a_percent() {
        let s = summary(&(1..=100).collect::<Vec<_>>());
        assert!(close_to(s.percentile(50.0), 50), "{:?}", s.percentile(50.0));
        assert!(close_to(s.percentile(99.0), 99), "{:?}", s.percentile(99.0));
        assert!(close_to(s.percentile(100.0), 100));
        assert!(close_to(s.latencies.max(), 100));
        assert!(close_to(summary(&[7]).percentile(1.0), 7));
        assert_eq!(summary(&[]).percentile(50.0), None);
    }

    #[test]
    fn the_line_has_every_count_and_figure() {
        let mut s = summary(&[10, 20]);
        s.gave_up = 1;
        s.per_barista.insert("b1".into(), 2);
        let line = s.line();
        for field in
            ["visits=3", "served=2", "gave_up=1", "failed=0", "throughput=1.0", "p50_ms=10.00", "max_ms=20.0", "per_barista=b1:2"]
        {
            assert!(line.contains(field), "{field} missing from {line}");
        }
        assert!(!line.contains("rate="), "a closed-loop line has no open-loop fields: {line}");
        s.open = Some(OpenLoop { rate: 5.0, due: 3, max_outstanding: 8, capped: 1, max_held: Duration::from_millis(40) });
        assert!(s.line().ends_with(" rate=5.0 due=3 capped=1 max_held_ms=40.000"), "{}", s.line());
    }

    #[test]
    fn failed_visits_are_counted_by_kind() {
        let mut s = Summary::default();
        s.count(&Err(Error::NoBarista(Absence::AllLeft { left: 3 })), None);
        s.count(&Err(Error::ShopFull { max_queue: 2, baristas: 1 }), None);
        s.count(&Err(Error::ShopFull { max_queue: 9, baristas: 4 }), None);
        s.count(&Err(Error::usage("x")), None);
        assert_eq!((s.no_barista, s.shop_full, s.failed), (1, 2, 1));
    }

    fn receipt(waited_ms: u64) -> crate::customer::Receipt {
        crate::customer::Receipt {
            order: "/orders/b1/coffee0000000001".into(),
            barista: "b1".parse().expect("a name"),
            coffee: "jacob".into(),
            waited: Duration::from_millis(waited_ms),
        }
    }

    #[test]
    fn open_loop_latencies_count_from_the_due_time_and_give_ups_count_too() {
        let mut closed = Summary::default();
        closed.count(&Ok(Outcome::Served(receipt(5))), None);
        closed.count(&Ok(Outcome::GaveUp(receipt(9000))), None);
        assert_eq!(closed.latencies.len(), 1, "closed loop: served orders only");
        assert!(close_to(closed.latencies.max(), 5));

        let mut open = Summary::default();
        open.count(&Ok(Outcome::Served(receipt(5))), Some(Duration::from_millis(2000)));
        open.count(&Ok(Outcome::GaveUp(receipt(9000))), Some(Duration::from_millis(9500)));
        assert_eq!(open.latencies.len(), 2);
        assert!(close_to(open.percentile(50.0), 2000), "from the due time, not the placing");
        assert!(close_to(open.latencies.max(), 9500), "a give-up at its wait");
    }

    #[test]
    fn a_summary_file_reads_back_as_written() {
        let mut s = summary(&[3, 30, 300]);
        s.gave_up = 2;
        s.per_barista.insert("b1".into(), 3);
        let start = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        s.span = Some((start, start + Duration::from_millis(2000)));
        s.open = Some(OpenLoop { rate: 2.5, due: 5, max_outstanding: 100, capped: 0, max_held: Duration::ZERO });
        let json = s.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(
            (value["format"].as_str(), value["mode"].as_str(), value["histogram"]["count"].as_u64()),
            (Some(FORMAT), Some("open"), Some(3))
        );
        assert_eq!(Summary::from_json(&json, "the file").expect("reads back"), s);

        let closed = summary(&[1]);
        assert_eq!(Summary::from_json(&closed.to_json(), "f").expect("reads back"), closed);
    }

    #[test]
    fn a_file_that_is_not_a_summary_is_refused_by_name() {
        for (text, why) in [
            ("{}", "missing field"),
            ("not json", "expected"),
            (&summary(&[1]).to_json().replace(FORMAT, "other/9"), "format"),
            (&summary(&[1]).to_json().replace("\"visits\":1", "\"visits\":7"), "7"),
            (&summary(&[1]).to_json().replace("\"count\":1", "\"count\":2"), "holds 1"),
        ] {
            let err = Summary::from_json(text, "x.json").expect_err(text).to_string();
            assert!(err.contains("x.json is not a zk-coffee summary file") && err.contains(why), "{err}");
        }
    }

    #[test]
    fn merged_summaries_add_counts_and_histograms_and_span_the_runs() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s);
        let mut a = summary(&(1..=50).collect::<Vec<_>>());
        a.per_barista.insert("b1".into(), 50);
        a.span = Some((at(0), at(4)));
        let mut b = summary(&(51..=100).collect::<Vec<_>>());
        b.per_barista.insert("b1".into(), 20);
        b.per_barista.insert("b2".into(), 30);
        b.span = Some((at(1), at(6)));
        let merged = Summary::merge(&[a.clone(), b]).expect("merge");
        assert_eq!((merged.served, merged.elapsed), (100, Duration::from_secs(6)));
        assert_eq!(merged.per_barista, BTreeMap::from([("b1".into(), 70), ("b2".into(), 30)]));
        // The p99 of the merged runs, not of either run, nor their mean (75).
        assert!(close_to(merged.percentile(99.0), 99), "{:?}", merged.percentile(99.0));
        assert!(close_to(merged.percentile(50.0), 50));

        let mut open = a.clone();
        open.open = Some(OpenLoop { rate: 1.0, due: 50, max_outstanding: 10, capped: 0, max_held: Duration::ZERO });
        assert!(Summary::merge(&[a, open]).is_err(), "open and closed loop do not merge");
    }
}
