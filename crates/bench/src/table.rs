//! `table`: turns the lines of a run (`KEY STEP key=value ...`, one per step, as
//! `scripts/bench.sh` collects them) into one Markdown table: every figure with its
//! conditions, and the targets of issue 7 (and of issue 13 for the shop manager) next to them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::common::{Fields, Result};

/// The shop runs of the throughput grid: (baristas, customers).
pub const GRID: [(u32, u32); 9] = [(1, 1), (1, 16), (1, 64), (4, 1), (4, 16), (4, 64), (16, 1), (16, 16), (16, 64)];
/// The runs repeated with all the customers on one shared session: (baristas, customers).
pub const SHARED: [(u32, u32); 2] = [(1, 64), (4, 64)];

struct Table {
    lines: BTreeMap<String, Fields>,
    rows: Vec<[String; 5]>,
}

impl Table {
    /// The run's lines (`KEY STEP key=value ...`), by key; no rows yet.
    fn parse(text: &str) -> Result<Table> {
        let mut lines = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (key, rest) = line.split_once(' ').ok_or_else(|| format!("bad line {line:?}"))?;
            lines.insert(key.to_owned(), Fields::parse(rest));
        }
        Ok(Table { lines, rows: Vec::new() })
    }

    fn get(&self, key: &str) -> Result<&Fields> {
        self.lines.get(key).ok_or_else(|| format!("the run has no {key} line"))
    }

    fn num(&self, key: &str, field: &str) -> Result<f64> {
        self.get(key)?.num(field).map_err(|e| format!("{key}: {e}"))
    }

    fn text(&self, key: &str, field: &str) -> Result<String> {
        self.get(key)?.0.get(field).cloned().ok_or_else(|| format!("{key}: no {field}="))
    }

    fn row(
        &mut self,
        figure: impl Into<String>,
        measured: impl Into<String>,
        conditions: impl Into<String>,
        target: &str,
        met: Option<bool>,
    ) {
        let verdict = match met {
            None => "—".to_owned(),
            Some(true) => "met".to_owned(),
            Some(false) => "**missed**".to_owned(),
        };
        self.rows.push([figure.into(), measured.into(), conditions.into(), target.to_owned(), verdict]);
    }
}

/// The table of the run in `text`.
pub fn render(text: &str) -> Result<String> {
    let mut t = Table::parse(text)?;

    // Bounds.
    let clients = [("zk", "`zookeeper` 0.8"), ("zkc", "`zookeeper-client` 0.11 (the shop's)")];
    for (short, long) in clients {
        for threads in [1, 16, 64] {
            let key = format!("pairs-{short}-{threads}");
            let rate = t.num(&key, "pairs_per_s")?;
            let cond = format!(
                "{long}, {threads} thread(s) on one handle, create PERSISTENT_SEQUENTIAL + delete for {} s; pair p50 {} ms; CPU/pair: client {} µs, server {} µs",
                t.text(&key, "seconds")?,
                t.text(&key, "pair_p50_ms")?,
                t.text(&key, "client_cpu_us_per_pair")?,
                t.text(&key, "server_cpu_us_per_pair")?
            );
            t.row(format!("raw pairs/s, {threads} thread(s), {short}"), format!("{rate:.0}/s"), cond, "the bound", None);
        }
    }
    for (short, long) in clients {
        let key = format!("watch-{short}");
        let measured =
            format!("p50 {} ms, p99 {} ms", t.text(&key, "create_watch_p50_ms")?, t.text(&key, "create_watch_p99_ms")?);
        let cond = format!(
            "{long}: session A creates a node, session B's exists watch fires; {} samples; delete→watch p50 {} ms; calls p50: create {} ms, delete {} ms, exists {} ms",
            t.text(&key, "samples")?,
            t.text(&key, "delete_watch_p50_ms")?,
            t.text(&key, "create_call_p50_ms")?,
            t.text(&key, "delete_call_p50_ms")?,
            t.text(&key, "exists_call_p50_ms")?
        );
        t.row(format!("raw watch round trip, {short}"), measured, cond, "the bound", None);
    }
    let measured = format!(
        "exists {} µs vs raw {} µs; create+delete {} µs vs raw {} µs",
        t.text("calls", "session_exists_us")?,
        t.text("calls", "raw_exists_us")?,
        t.text("calls", "session_pair_us")?,
        t.text("calls", "raw_pair_us")?
    );
    let cond = format!(
        "one thread, {} calls each, zk-coffee's Session (protected create) vs the raw `zookeeper-client` under it; CPU/call: exists {} vs {} µs, pair {} vs {} µs",
        t.text("calls", "n")?,
        t.text("calls", "session_exists_cpu_us")?,
        t.text("calls", "raw_exists_cpu_us")?,
        t.text("calls", "session_pair_cpu_us")?,
        t.text("calls", "raw_pair_cpu_us")?
    );
    t.row("session layer cost per call", measured, cond, "", None);

    // Peers, measured before and after the shop's grid: the better run counts.
    let mut best_peer: f64 = 0.0;
    for (key, name) in [("peer-queue", "kazoo Queue"), ("peer-locking", "kazoo LockingQueue")] {
        let first = t.num(key, "items_per_s")?;
        let second = t.num(&format!("{key}-2"), "items_per_s")?;
        let rate = first.max(second);
        best_peer = best_peer.max(rate);
        let cond = format!(
            "kazoo 2.8 (python3-kazoo), 1 producer + 1 consumer process, {} items, from go to the last item consumed; the better of two runs ({first:.0} before the shop's grid, {second:.0} after); producer alone {}/s",
            t.text(key, "items")?,
            t.text(key, "producer_items_per_s")?
        );
        t.row(format!("peer: {name}"), format!("{rate:.0} items/s"), cond, "", None);
    }

    // Shop throughput: the grid (a session per customer), then the same with one session.
    let mut best: Option<(f64, String)> = None;
    for (b, c) in GRID {
        let key = format!("shop-{b}x{c}");
        let rate = throughput_row(&mut t, &key, &format!("bound-{b}x{c}"), best_peer, "")?;
        if c == 64 && best.as_ref().is_none_or(|(r, _)| rate > *r) {
            best = Some((rate, key));
        }
    }
    for (b, c) in SHARED {
        throughput_row(&mut t, &format!("shared-{b}x{c}"), &format!("bound-shared-{b}x{c}"), best_peer, ", one shared session")?;
    }

    // Latency.
    let rtt = t.num("watch-zkc", "create_watch_p50_ms")?;
    let (p50, p99) = (t.num("shop-1x1", "p50_ms")?, t.num("shop-1x1", "p99_ms")?);
    let visit_ms = 1000.0 / t.num("shop-1x1", "throughput")?;
    t.row(
        "order latency p50, 1×1",
        format!("{p50:.2} ms = {:.1} × watch RTT", p50 / rtt),
        format!("from the order placed to the customer told it was served (the summary's p50); whole visit incl. choosing and placing: {visit_ms:.2} ms; watch RTT = zkc p50 {rtt:.3} ms"),
        "≤ 2.5 × raw watch RTT",
        Some(p50 <= 2.5 * rtt),
    );
    t.row(
        "order latency p99 / max, 1×1",
        format!("{p99:.2} / {} ms", t.text("shop-1x1", "max_ms")?),
        format!("1 barista, 1 customer, {} orders, zero brew", t.text("shop-1x1", "served")?),
        "p99 ≤ 15 ms",
        Some(p99 <= 15.0),
    );
    if let Some((rate, key)) = best {
        t.row(
            "order latency near saturation",
            format!("p50 {} / p99 {} / max {} ms", t.text(&key, "p50_ms")?, t.text(&key, "p99_ms")?, t.text(&key, "max_ms")?),
            format!(
                "the busiest run ({} baristas × {} customers, {rate:.0} orders/s)",
                t.text(&key, "baristas")?,
                t.text(&key, "concurrency")?
            ),
            "",
            None,
        );
    }

    // Choosing under uneven load.
    let random_p99 = t.num("uneven-random", "p99_ms")?;
    for (key, name) in [("uneven-random", "random"), ("uneven-shorter", "shorter-of-two")] {
        let p99 = t.num(key, "p99_ms")?;
        let cond = format!(
            "{} baristas, {} of them brewing {} ms, the others 0; {} customers, {} orders; p50 {} ms, max {} ms; {}/s",
            t.text(key, "baristas")?,
            t.text(key, "slow")?,
            t.text(key, "slow_brew_ms")?,
            t.text(key, "concurrency")?,
            t.text(key, "served")?,
            t.text(key, "p50_ms")?,
            t.text(key, "max_ms")?,
            t.text(key, "throughput")?
        );
        let (target, met) = if name == "random" { ("", None) } else { ("p99 below random's", Some(p99 < random_p99)) };
        t.row(format!("wait p99, uneven load, {name}"), format!("{p99:.1} ms"), cond, target, met);
    }

    // Backlog.
    let small = t.num("backlog-small", "per_order_ms")?;
    for (key, name) in [("backlog-small", "small"), ("backlog-large", "large")] {
        let per = t.num(key, "per_order_ms")?;
        let cond = format!(
            "{} orders placed in one bucket before its barista starts (zero brew); drain = from the barista on shift to the last order served: {} s ({}/s); first served {} ms after it came on shift; from first to last served {} ms/order; first tenth {} ms/order, last tenth {} ms/order",
            t.text(key, "orders")?,
            t.text(key, "drain_s")?,
            t.text(key, "orders_per_s")?,
            t.text(key, "first_served_ms")?,
            t.text(key, "first_to_last_per_order_ms")?,
            t.text(key, "head_per_order_ms")?,
            t.text(key, "tail_per_order_ms")?
        );
        let (measured, target, met) = if name == "small" {
            (
                format!(
                    "{per:.3} ms/order (median of {} runs: {}–{})",
                    t.text(key, "repeats")?,
                    t.text(key, "per_order_min_ms")?,
                    t.text(key, "per_order_max_ms")?
                ),
                "",
                None,
            )
        } else {
            (format!("{per:.3} ms/order = {:.2} × small", per / small), "ratio ≤ 1.5", Some(per / small <= 1.5))
        };
        t.row(format!("backlog drain, {name} queue"), measured, cond, target, met);
    }

    // Scale.
    let n = t.text("scale", "baristas")?;
    t.row(
        format!("customer visit, {n} baristas vs 1"),
        format!(
            "{} ms vs {} ms = {} ×",
            t.text("scale", "visitN_ms")?,
            t.text("scale", "visit1_ms")?,
            t.text("scale", "visit_ratio")?
        ),
        format!(
            "one customer, {} orders one after another (whole visit: choose, place, wait); zero brew; latency p50 {} vs {} ms",
            t.text("scale", "orders")?,
            t.text("scale", "p50_N_ms")?,
            t.text("scale", "p50_1_ms")?
        ),
        "",
        None,
    );
    t.row(
        format!("{n} baristas coming on shift"),
        format!("{} s, {} packets", t.text("scale", "register_s")?, t.text("scale", "register_packets")?),
        format!(
            "{n} barista processes started at once; all in the group after {} s, server quiet after {} s; {} packets/barista; SIGTERM to all: gone in {} s, {} packets",
            t.text("scale", "register_s")?,
            t.text("scale", "settle_s")?,
            t.text("scale", "register_packets_per_barista")?,
            t.text("scale", "stop_s")?,
            t.text("scale", "stop_packets")?
        ),
        "",
        None,
    );

    // Memory.
    let mib = |kib: f64| kib / 1024.0;
    let idle = t.num("rss", "barista_idle_kib")?;
    t.row(
        "RSS, idle barista",
        format!("{:.1} MiB", mib(idle)),
        format!("VmRSS after 1 s on shift, {} threads", t.text("rss", "barista_threads")?),
        "< 10 MiB",
        Some(mib(idle) < 10.0),
    );
    t.row(
        "RSS, waiting customer",
        format!("{:.1} MiB", mib(t.num("rss", "customer_waiting_kib")?)),
        format!("VmRSS while its order waits, {} threads", t.text("rss", "customer_threads")?),
        "",
        None,
    );

    // Recovery.
    let timeout = t.num("recovery", "session_timeout_s")?;
    let worst = t.num("recovery", "kill9_to_first_served_max_ms")? / 1000.0;
    t.row(
        "kill -9 of a busy barista → first orphan served",
        format!(
            "max {worst:.2} s (min {:.2}, p50 {:.2})",
            t.num("recovery", "kill9_to_first_served_min_ms")? / 1000.0,
            t.num("recovery", "kill9_to_first_served_p50_ms")? / 1000.0
        ),
        format!(
            "{} trials; session timeout {timeout} s; {} orders queued, another barista on shift; all served by {:.2} s",
            t.text("recovery", "trials")?,
            t.text("recovery", "orders")?,
            t.num("recovery", "kill9_to_all_served_max_ms")? / 1000.0
        ),
        "≤ session timeout + 1 s",
        Some(worst <= timeout + 1.0),
    );
    // A crash followed by a restart under the same name, next to the recovery above.
    let after_restart = t.num("restart", "restart_to_first_served_max_ms")?;
    let adopted = t.num("restart", "adopted_by_colleague")?;
    t.row(
        "kill -9 of a busy barista, restarted at once → first order served",
        format!(
            "max {after_restart:.0} ms after the restart (min {:.0}, p50 {:.0})",
            t.num("restart", "restart_to_first_served_min_ms")?,
            t.num("restart", "restart_to_first_served_p50_ms")?
        ),
        format!(
            "{} trials; session timeout {} s; {} orders queued; a new process under the same name started at once (zero brew) \
             took the dead one's node over {} time(s) and served its own queue (all by {:.0} ms); the colleague on shift \
             adopted {adopted:.0}; kill -9 → first served max {:.0} ms, against max {worst:.2} s by adoption without a restart \
             (the row above)",
            t.text("restart", "trials")?,
            t.num("restart", "session_timeout_s")?,
            t.text("restart", "orders")?,
            t.text("restart", "took_over")?,
            t.num("restart", "restart_to_all_served_max_ms")?,
            t.num("restart", "kill9_to_first_served_max_ms")?,
        ),
        "≤ 1 s after the restart, nothing adopted",
        Some(after_restart <= 1000.0 && adopted == 0.0),
    );
    let code = t.text("recovery", "sigterm_exit_code")?;
    t.row(
        "SIGTERM → clean exit",
        format!("{} ms (exit {code})", t.text("recovery", "sigterm_to_exit_ms")?),
        "an idle barista, alone on shift: leaves the group, removes its empty bucket, closes its session",
        "exit 0",
        Some(code == "0"),
    );

    manager_rows(&mut t)?;
    page_rows(&mut t)?;

    let mut out = String::new();
    let _ = writeln!(out, "| figure | measured | conditions | issue 7 target | verdict |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
    for r in &t.rows {
        let _ = writeln!(out, "| {} | {} | {} | {} | {} |", r[0], r[1], r[2], r[3], r[4]);
    }
    Ok(out)
}

/// The row of one shop throughput run `key` against the raw bound `bound_key` measured just
/// before it (else the raw section's); returns the orders per second.
fn throughput_row(t: &mut Table, key: &str, bound_key: &str, best_peer: f64, label: &str) -> Result<f64> {
    let target = "≥ 0.60 × pairs (shop's client, threads = C, measured just before) and ≥ 2 × best peer";
    let (b, c) = (t.text(key, "baristas")?, t.text(key, "concurrency")?);
    let rate = t.num(key, "throughput")?;
    let bound_key = if t.lines.contains_key(bound_key) { bound_key.to_owned() } else { format!("pairs-zkc-{c}") };
    let bound = t.num(&bound_key, "pairs_per_s")?;
    let bound_zk = t.num(&format!("pairs-zk-{c}"), "pairs_per_s")?;
    let (ratio, ratio_zk, peer) = (rate / bound, rate / bound_zk, rate / best_peer);
    let measured = format!("{rate:.0}/s = {ratio:.2} × pairs = {peer:.2} × peer");
    let sessions = match t.text(key, "sessions")?.as_str() {
        s if s == c => "a session per customer".to_owned(),
        "1" => "all on one session".to_owned(),
        s => format!("on {s} sessions"),
    };
    let cond = format!(
        "{b} barista(s) × {c} customer(s) ({sessions}), zero brew, {} orders, {}; raw pairs (`zookeeper-client`, {c} thread(s)) just before: {bound:.0}/s; {ratio_zk:.2} × the `zookeeper` 0.8 bound ({bound_zk:.0}/s); latency p50 {} / p99 {} / max {} ms; {} packets/order; CPU/order µs: customer {}, barista {}, server {}",
        t.text(key, "served")?,
        t.text(key, "choose")?,
        t.text(key, "p50_ms")?,
        t.text(key, "p99_ms")?,
        t.text(key, "max_ms")?,
        t.text(key, "packets_per_order")?,
        t.text(key, "customer_cpu_us_per_order")?,
        t.text(key, "barista_cpu_us_per_order")?,
        t.text(key, "server_cpu_us_per_order")?
    );
    t.row(format!("shop {b}×{c} orders/s{label}"), measured, cond, target, Some(ratio >= 0.60 && peer >= 2.0));
    Ok(rate)
}

/// The shop manager's rows (issue 13): its CPU per order beside the baristas', the lag to its
/// `/metrics`, its memory following many shops beside following one; all from this run.
/// The manager's page in a real browser (issue 14), from `scripts/bench/page_bench.py`.
fn page_rows(t: &mut Table) -> Result<()> {
    let baristas = t.text("page", "baristas")?;
    let kb = t.num("page", "first_load_bytes")? / 1000.0;
    t.row(
        "page, first load",
        format!("{kb:.1} kB"),
        format!(
            "the page and every asset (uPlot included) over the network, headers included: the navigation's and each \
             resource's transferSize in headless chromium's performance entries, once the {baristas} baristas on shift are \
             on the page"
        ),
        "< 200 kB (issue 14)",
        Some(kb < 200.0),
    );
    let p50 = t.num("page", "update_p50_ms")?;
    t.row(
        format!("page, one update with {baristas} baristas on shift"),
        format!("p50 {p50:.1} / p99 {} / max {} ms", t.text("page", "update_p99_ms")?, t.text("page", "update_max_ms")?),
        format!(
            "{baristas} real barista processes (300 ms a coffee) and `shop-manager --listen`; a raw client places one order at \
             a time into their buckets in turn; each of the {} `shops` messages the page received (every one a document of \
             {baristas} baristas) timed from its arrival to applied and laid out (the page's own handler, then a forced \
             layout), in headless chromium at 1280 px",
            t.text("page", "updates")?,
        ),
        "< 50 ms (issue 14)",
        Some(p50 < 50.0),
    );
    Ok(())
}

fn manager_rows(t: &mut Table) -> Result<()> {
    let (b, c) = (t.text("manager", "baristas")?, t.text("manager", "concurrency")?);
    let (mine, theirs) = (t.num("manager", "manager_cpu_us_per_order")?, t.num("manager", "baristas_cpu_us_per_order")?);
    let ratio = mine / theirs;
    t.row(
        format!("manager CPU per order served, {b}×{c}"),
        format!("{mine:.1} µs vs baristas {theirs:.1} µs = {ratio:.2} ×"),
        format!(
            "`shop-manager --listen` following the shop (`--zk host:port/CHROOT --shop /`) under the shop step's load: {b} zero-brew \
             barista processes × {c} customers, {} orders ({}/s); utime+stime from /proc/PID/stat: the manager's from the load's \
             start until its `/metrics` counted every order served ({} ms after the load), the {b} baristas' together over the load; \
             nobody read `/metrics` meanwhile",
            t.text("manager", "served")?,
            t.text("manager", "throughput")?,
            t.text("manager", "catch_up_ms")?,
        ),
        "≤ 0.5 × the baristas' together (issue 13)",
        Some(ratio <= 0.5),
    );
    let p99 = t.num("manager", "lag_p99_ms")?;
    t.row(
        "manager lag, order deleted → counted in /metrics",
        format!("p50 {} / p99 {p99:.2} / max {} ms", t.text("manager", "lag_p50_ms")?, t.text("manager", "lag_max_ms")?),
        format!(
            "the same shop and manager under the same load again ({b} × {c}, every customer ordering tesora, {}/s): a raw client \
             places {} jacob orders one at a time into the {b} buckets in turn, sees each deleted (`exists` watch), then reads \
             `/metrics` every 2 ms (a new connection each; {} reads per sample, {} ms each) until \
             `zk_coffee_orders_served_total{{coffee=\"jacob\"}}` summed over its series includes it; {} orders served before \
             their watch was set are not samples",
            t.text("manager", "lag_load_throughput")?,
            t.text("manager", "samples")?,
            t.text("manager", "polls_per_sample")?,
            t.text("manager", "poll_ms")?,
            t.text("manager", "skipped")?,
        ),
        "p99 ≤ 100 ms (issue 13)",
        Some(p99 <= 100.0),
    );
    let mib = |kib: f64| kib / 1024.0;
    let (shops, baristas) = (t.text("manager-rss", "shops")?, t.text("manager-rss", "baristas")?);
    let (many, one) = (mib(t.num("manager-rss", "rss_kib")?), mib(t.num("manager-rss", "one_rss_kib")?));
    t.row(
        format!("RSS, manager following {shops} shops × {baristas} baristas"),
        format!("{many:.1} MiB vs {one:.1} MiB following 1 empty shop"),
        format!(
            "VmRSS {} s after its `/api/shops` showed every shop whole (after {} s); the shops made with a raw client as \
             `shop-init` makes them, each barista registered as a raw client would (no barista processes): an ephemeral \
             `/barista_group/bNN` (held by 4 raw sessions), a bucket with {} orders waiting, a ledger `jacob=N`; \
             peak {:.1} MiB, {} threads (1 empty shop: peak {:.1} MiB, {} threads)",
            t.text("manager-rss", "settle_s")?,
            t.text("manager-rss", "ready_s")?,
            t.text("manager-rss", "orders")?,
            mib(t.num("manager-rss", "hwm_kib")?),
            t.text("manager-rss", "threads")?,
            mib(t.num("manager-rss", "one_hwm_kib")?),
            t.text("manager-rss", "one_threads")?,
        ),
        "≤ 30 MiB (issue 13)",
        Some(many <= 30.0),
    );
    Ok(())
}

/// The table of a membership run (`membership-N` lines, each with the older build's figures
/// when it had `--baseline-bin`): per size the packets per arriving barista, the time to all
/// on shift and from a kill -9 to the orphan adopted; the targets of issue 15 against the run
/// with the fewest baristas.
pub fn render_membership(text: &str) -> Result<String> {
    let mut t = Table::parse(text)?;
    let mut sizes: Vec<u32> = t.lines.keys().filter_map(|k| k.strip_prefix("membership-")?.parse().ok()).collect();
    sizes.sort_unstable();
    let Some(&small) = sizes.first() else {
        return Err("the run has no membership-N line".into());
    };
    let old = t.get(&format!("membership-{small}"))?.0.contains_key("old_on_shift_s");
    for prefix in if old { vec!["", "old_"] } else { vec![""] } {
        let build = if prefix.is_empty() { "new (rota)" } else { "old (b45e411, every barista watches the group)" };
        // Received, sent, and the pings among them (an upper bound: a busy session does not ping).
        let per = |t: &Table, n: u32| -> Result<(f64, f64, f64)> {
            let key = format!("membership-{n}");
            Ok((
                t.num(&key, &format!("{prefix}received_per_barista"))?,
                t.num(&key, &format!("{prefix}sent_per_barista"))?,
                t.num(&key, &format!("{prefix}pings_per_barista"))?,
            ))
        };
        let (small_in, small_out, small_pings) = per(&t, small)?;
        for &n in &sizes {
            let key = format!("membership-{n}");
            let (r, s, pings) = per(&t, n)?;
            let cond = format!(
                "{n} `barista` processes started at once ({:.2} s to spawn), session timeout {} s; `mntr` zk_packets_received/sent \
                 from the first spawn until the fleet was quiet ({:.1} s; quiet: two windows of two ping intervals in a row at \
                 most 1.25 × the sessions' pings), the step's own polls taken off; of which pings ≤ {:.1} per barista (an idle \
                 session pings every 2 s); server CPU {} ms per barista",
                t.num(&key, &format!("{prefix}spawn_s"))?,
                t.text(&key, "session_timeout_s")?,
                t.num(&key, &format!("{prefix}quiet_s"))?,
                t.num(&key, &format!("{prefix}pings_per_barista"))?,
                t.text(&key, &format!("{prefix}server_cpu_ms_per_barista"))?,
            );
            let (target, met) = if n == small {
                ("(the base)".to_owned(), None)
            } else {
                let worst = (r / small_in).max(s / small_out);
                let net = ((r - pings) / (small_in - small_pings)).max((s - pings) / (small_out - small_pings));
                (format!("≤ 1.2 × the figure at {small} ({worst:.2} ×; less pings {net:.2} ×)"), Some(worst <= 1.2))
            };
            t.row(
                format!("{build}: packets per arriving barista, {n} at once"),
                format!("received {r:.1}, sent {s:.1} (less pings: {:.1}, {:.1})", r - pings, s - pings),
                cond,
                &target,
                met,
            );
            t.row(
                format!("{build}: all {n} on shift"),
                format!("{:.2} s", t.num(&key, &format!("{prefix}on_shift_s"))?),
                "from the first spawn until `/barista_group` listed every one (polled every 50 ms)",
                "",
                None,
            );
        }
        // The target on the protocol's share: from the session's expiry (the member node
        // gone) to the first order served; the kill's figure also holds the session timeout
        // and where in its ping cycle the victim was frozen (up to 2 s).
        let adopted = |t: &Table, n: u32| t.num(&format!("membership-{n}"), &format!("{prefix}expired_to_adopted_ms"));
        let base = adopted(&t, small)?;
        for &n in &sizes {
            let key = format!("membership-{n}");
            let after = adopted(&t, n)?;
            let (target, met) = if n != small {
                (format!("no slower than with {small} ({base:.1} ms, give or take 20 ms)"), Some(after <= base + 20.0))
            } else {
                (String::new(), None)
            };
            t.row(
                format!("{build}: kill -9 → orphan adopted, {n} on shift"),
                format!(
                    "{after:.1} ms after the session expired ({} ms after the kill; all {} served after {} ms)",
                    t.text(&key, &format!("{prefix}kill9_to_adopted_ms"))?,
                    t.text(&key, "orders")?,
                    t.text(&key, &format!("{prefix}kill9_to_all_served_ms"))?
                ),
                format!(
                    "one of the {n}, frozen while {} raw orders were placed in its bucket, then SIGKILL; from its member node's \
                     deletion (the server expiring its {} s session, seen by an `exists` watch) to its first order deleted by \
                     an adopter",
                    t.text(&key, "orders")?,
                    t.text(&key, "session_timeout_s")?
                ),
                &target,
                met,
            );
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "| figure | measured | conditions | issue 15 target | verdict |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
    for r in &t.rows {
        let _ = writeln!(out, "| {} | {} | {} | {} | {} |", r[0], r[1], r[2], r[3], r[4]);
    }
    Ok(out)
}
