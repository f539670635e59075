//! The shop itself, as its real processes: throughput and latency under load, draining a
//! backlog, 100 baristas, memory, recovery from a crash, and a crash followed by a restart.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zk_coffee::layout;
use zk_coffee::BaristaName;
use zookeeper::{WatchedEvent, ZooKeeper};

use crate::common::{
    await_members, children_cpu, connect, ms, packets_received, per_unit, process_cpu, remove_chroot, stop_all, Env, Fields,
    Proc, Result, ServerCpu, Stats,
};
use crate::raw::place_raw_orders;

/// How long baristas get to leave after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// How long a step waits for baristas to come on shift.
const ON_SHIFT_TIMEOUT: Duration = Duration::from_secs(60);

fn name(s: &str) -> Result<BaristaName> {
    BaristaName::new(s).map_err(|e| e.to_string())
}

/// What one `shop` run is.
#[derive(Debug, Clone)]
pub struct ShopRun {
    pub baristas: usize,
    pub concurrency: usize,
    pub orders: u64,
    pub choose: String,
    /// How many of the baristas brew slowly (the others brew in zero time).
    pub slow: usize,
    pub slow_brew: Duration,
    /// How many sessions the customers share (`None`: one each).
    pub sessions: Option<usize>,
}

/// `shop`: B barista processes with zero brew time (or `slow` of them with `slow_brew`),
/// C customers in load mode; the load generator's summary, and the server's packets per order.
pub fn shop(env: &Env, run: &ShopRun) -> Result<String> {
    let chroot = env.chroot(&format!("shop-{}x{}", run.baristas, run.concurrency));
    env.shop_init(&chroot)?;
    let zk = connect(&env.connect_string(&chroot), Duration::from_secs(10))?;
    let mut baristas = Vec::new();
    for i in 0..run.baristas {
        let brew = if i < run.slow { run.slow_brew } else { Duration::ZERO };
        let name = format!("b{:02}{}", i + 1, if i < run.slow { "-slow" } else { "" });
        baristas.push(env.barista(&chroot, &name, brew, &[])?);
    }
    await_members(&zk, run.baristas, ON_SHIFT_TIMEOUT)?;
    let before = packets_received(&env.servers)?;
    let barista_cpu =
        |baristas: &[crate::common::Proc]| -> Duration { baristas.iter().filter_map(|b| process_cpu(b.pid())).sum() };
    let (server, customer_cpu, baristas_cpu) = (ServerCpu::start(env.server_pid), children_cpu(), barista_cpu(&baristas));
    let mut args: Vec<String> = [
        "--orders",
        &run.orders.to_string(),
        "--concurrency",
        &run.concurrency.to_string(),
        "--choose",
        &run.choose,
        "--patience",
        "60",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(sessions) = run.sessions {
        args.extend(["--sessions".to_string(), sessions.to_string()]);
    }
    let log = format!("load-{}x{}-{}{}", run.baristas, run.concurrency, run.choose, if run.slow > 0 { "-uneven" } else { "" });
    let summary = env.load(&chroot, &log, &args);
    let after = packets_received(&env.servers)?;
    let (customer_cpu, baristas_cpu) = (children_cpu() - customer_cpu, barista_cpu(&baristas).saturating_sub(baristas_cpu));
    let server_cpu = server.used();
    let clean = stop_all(&mut baristas, STOP_GRACE);
    let _ = zk.close();
    remove_chroot(env, &chroot);
    let s = summary?;
    let served = s.num("served")?;
    Ok(format!(
        "shop baristas={} concurrency={} sessions={} orders={} choose={} slow={} slow_brew_ms={} served={} failed={} elapsed_s={} \
         throughput={} p50_ms={} p95_ms={} p99_ms={} max_ms={} packets_per_order={:.1} customer_cpu_us_per_order={:.0} \
         barista_cpu_us_per_order={:.0} server_cpu_us_per_order={} baristas_clean_exit={clean}",
        run.baristas,
        run.concurrency,
        run.sessions.unwrap_or(run.concurrency),
        run.orders,
        run.choose,
        run.slow,
        run.slow_brew.as_millis(),
        served,
        s.num("visits")? - served,
        s.0["elapsed_s"],
        s.0["throughput"],
        s.0["p50_ms"],
        s.0["p95_ms"],
        s.0["p99_ms"],
        s.0["max_ms"],
        (after - before) as f64 / served,
        customer_cpu.as_secs_f64() * 1e6 / served,
        baristas_cpu.as_secs_f64() * 1e6 / served,
        per_unit(server_cpu, served),
    ))
}

/// An `exists` watch on `path` that reports when it fires.
fn watch_gone(zk: &ZooKeeper, path: &str) -> Result<mpsc::Receiver<Instant>> {
    let (tx, rx) = mpsc::channel();
    zk.exists_w(path, move |_: WatchedEvent| {
        let _ = tx.send(Instant::now());
    })
    .map_err(|e| format!("exists_w {path}: {e:?}"))?
    .ok_or_else(|| format!("{path} does not exist"))?;
    Ok(rx)
}

/// The orders in `bucket`, in placement order, as full paths.
fn queued(zk: &ZooKeeper, bucket: &str) -> Result<Vec<String>> {
    let children = zk.get_children(bucket, false).map_err(|e| format!("list {bucket}: {e:?}"))?;
    let (orders, _) = layout::orders_in_placement_order(&children);
    Ok(orders.into_iter().map(|o| format!("{bucket}/{o}")).collect())
}

/// `backlog`: N orders placed with the raw client into one bucket before its barista starts;
/// then the barista process drains them. Times from its first served order to its last, and
/// separately the first and the last tenth of the queue (a cost that grew with the queue
/// would show as a slower head, where the queue is longest).
pub fn backlog(env: &Env, orders: usize, baristas: usize, repeat: usize) -> Result<String> {
    let mut runs = Vec::new();
    for _ in 0..repeat.max(1) {
        runs.push(backlog_once(env, orders, baristas)?);
    }
    // The median run by time per order (short runs are at the mercy of anything else the
    // machine does for a moment).
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (min, max) = (runs[0].0, runs[runs.len() - 1].0);
    let (_, line) = runs.swap_remove(runs.len() / 2);
    Ok(format!("{line} repeats={} per_order_min_ms={min:.4} per_order_max_ms={max:.4}", repeat.max(1)))
}

/// One backlog run: its time per order and its line.
fn backlog_once(env: &Env, orders: usize, baristas: usize) -> Result<(f64, String)> {
    let chroot = env.chroot(&format!("backlog-{orders}"));
    env.shop_init(&chroot)?;
    let zk = Arc::new(connect(&env.connect_string(&chroot), Duration::from_secs(10))?);
    let owner = name("owner")?;
    let bucket = layout::bucket(&owner);
    crate::common::ensure_path(&zk, &bucket)?;
    let fill = place_raw_orders(&zk, &bucket, orders, 16)?;
    let queue = queued(&zk, &bucket)?;
    if queue.len() != orders {
        return Err(format!("placed {orders} orders but the bucket holds {}", queue.len()));
    }
    // Watched positions: first, end of the first tenth, start of the last tenth, last.
    let tenth = (orders / 10).max(1);
    let marks = [0, tenth.min(orders - 1), orders.saturating_sub(tenth + 1), orders - 1];
    let watches: Vec<mpsc::Receiver<Instant>> = marks.iter().map(|&i| watch_gone(&zk, &queue[i])).collect::<Result<_>>()?;
    let (tx, member_rx) = mpsc::channel();
    zk.exists_w(&layout::member(&owner), move |_: WatchedEvent| {
        let _ = tx.send(Instant::now());
    })
    .map_err(|e| format!("exists_w: {e:?}"))?;

    let spawned = Instant::now();
    let mut procs = vec![env.barista(&chroot, owner.as_str(), Duration::ZERO, &[])?];
    for i in 1..baristas {
        procs.push(env.barista(&chroot, &format!("helper{i}"), Duration::ZERO, &[])?);
    }
    let timeout = Duration::from_secs(120) + Duration::from_millis(20 * orders as u64);
    let on_shift = member_rx.recv_timeout(ON_SHIFT_TIMEOUT).map_err(|_| "the barista never came on shift")?;
    let mut at = Vec::new();
    for (rx, &i) in watches.iter().zip(&marks) {
        at.push(rx.recv_timeout(timeout).map_err(|_| format!("order {i} of the backlog was never served"))?);
    }
    let left = zk.get_children(&bucket, false).map(|c| c.len()).unwrap_or(0);
    let clean = stop_all(&mut procs, STOP_GRACE);
    let _ = zk.close();
    remove_chroot(env, &chroot);
    let per = |from: usize, to: usize| -> f64 {
        let n = marks[to].saturating_sub(marks[from]).max(1);
        ms(at[to].saturating_duration_since(at[from])) / n as f64
    };
    // The drain runs from the barista coming on shift (it then lists the queue once) to the
    // last order served. From the first order served to the last is also given, but it says
    // little for a short queue: a barista serves up to 64 orders in one transaction, so 100
    // orders go in two commits a millisecond apart.
    let drain = at[3].saturating_duration_since(on_shift);
    let per_order = ms(drain) / orders.max(1) as f64;
    let line = format!(
        "backlog orders={orders} baristas={baristas} fill_s={:.3} on_shift_ms={:.1} first_served_ms={:.1} drain_s={:.3} \
         per_order_ms={per_order:.4} head_per_order_ms={:.4} tail_per_order_ms={:.4} first_to_last_per_order_ms={:.4} \
         orders_per_s={:.1} left_after={left} baristas_clean_exit={clean}",
        fill.as_secs_f64(),
        ms(on_shift.saturating_duration_since(spawned)),
        ms(at[0].saturating_duration_since(on_shift)),
        drain.as_secs_f64(),
        per(0, 1),
        per(2, 3),
        per(0, 3),
        orders as f64 / drain.as_secs_f64(),
    );
    Ok((per_order, line))
}

/// One customer ordering `orders` times, one after another: per-visit time and latency.
fn visits(env: &Env, chroot: &str, log: &str, orders: u64) -> Result<(f64, Fields)> {
    let args: Vec<String> =
        ["--orders", &orders.to_string(), "--concurrency", "1", "--patience", "60"].iter().map(|s| s.to_string()).collect();
    let s = env.load(chroot, log, &args)?;
    let per_visit_ms = s.num("elapsed_s")? * 1000.0 / s.num("served")?;
    Ok((per_visit_ms, s))
}

/// Waits until the server has received fewer than `quiet` packets in each of two
/// consecutive 500 ms windows (the herd has settled); returns how long that took.
fn settle(env: &Env, quiet: u64, timeout: Duration) -> Result<Duration> {
    let started = Instant::now();
    let mut last = packets_received(&env.servers)?;
    let mut calm = 0;
    while calm < 2 && started.elapsed() < timeout {
        std::thread::sleep(Duration::from_millis(500));
        let now = packets_received(&env.servers)?;
        calm = if now - last < quiet { calm + 1 } else { 0 };
        last = now;
    }
    Ok(started.elapsed().saturating_sub(Duration::from_secs(1)))
}

/// `scale`: the cost of a customer's visit with `baristas` zero-brew baristas on shift
/// against one; and what registering and stopping that many costs the server.
pub fn scale(env: &Env, baristas: usize, orders: u64) -> Result<String> {
    // One barista.
    let chroot1 = env.chroot("scale-1");
    env.shop_init(&chroot1)?;
    let zk1 = connect(&env.connect_string(&chroot1), Duration::from_secs(10))?;
    let mut one = vec![env.barista(&chroot1, "solo", Duration::ZERO, &[])?];
    await_members(&zk1, 1, ON_SHIFT_TIMEOUT)?;
    let single = visits(env, &chroot1, "scale-visits-1", orders);
    stop_all(&mut one, STOP_GRACE);
    let _ = zk1.close();
    remove_chroot(env, &chroot1);
    let (visit1, s1) = single?;

    // Many.
    let chroot = env.chroot(&format!("scale-{baristas}"));
    env.shop_init(&chroot)?;
    let zk = connect(&env.connect_string(&chroot), Duration::from_secs(10))?;
    let before = packets_received(&env.servers)?;
    let started = Instant::now();
    let mut procs = Vec::new();
    for i in 0..baristas {
        procs.push(env.barista(&chroot, &format!("s{:03}", i + 1), Duration::ZERO, &[])?);
    }
    let spawned = started.elapsed();
    await_members(&zk, baristas, ON_SHIFT_TIMEOUT + Duration::from_secs(baristas as u64))?;
    let registered = started.elapsed();
    let settled = registered + settle(env, 5 * baristas as u64, Duration::from_secs(120))?;
    let register_packets = packets_received(&env.servers)? - before;
    let many = visits(env, &chroot, &format!("scale-visits-{baristas}"), orders);
    let before_stop = packets_received(&env.servers)?;
    let stop_started = Instant::now();
    let clean = stop_all(&mut procs, STOP_GRACE + Duration::from_secs(baristas as u64 / 2));
    let stopped = stop_started.elapsed();
    let stop_packets = packets_received(&env.servers)? - before_stop;
    let _ = zk.close();
    remove_chroot(env, &chroot);
    let (visit_n, sn) = many?;
    Ok(format!(
        "scale baristas={baristas} orders={orders} spawn_s={:.2} register_s={:.2} settle_s={:.2} register_packets={register_packets} \
         register_packets_per_barista={:.0} visit1_ms={visit1:.3} p50_1_ms={} visitN_ms={visit_n:.3} p50_N_ms={} visit_ratio={:.2} \
         stop_s={:.2} stop_packets={stop_packets} baristas_clean_exit={clean}",
        spawned.as_secs_f64(),
        registered.as_secs_f64(),
        settled.as_secs_f64(),
        register_packets as f64 / baristas as f64,
        s1.0["p50_ms"],
        sn.0["p50_ms"],
        visit_n / visit1,
        stopped.as_secs_f64(),
    ))
}

/// `rss`: resident memory of an idle barista and of a customer waiting for its order.
pub fn rss(env: &Env, settle_for: Duration) -> Result<String> {
    let chroot = env.chroot("rss");
    env.shop_init(&chroot)?;
    let zk = connect(&env.connect_string(&chroot), Duration::from_secs(10))?;
    let mut idle = env.barista(&chroot, "idle", Duration::ZERO, &[])?;
    // Brews for an hour: its customer waits the whole time.
    let mut busy = env.barista(&chroot, "busy", Duration::from_secs(3600), &[])?;
    await_members(&zk, 2, ON_SHIFT_TIMEOUT)?;
    let args: Vec<String> =
        ["--barista", "busy", "--patience", "600", "--coffee", "jacob"].iter().map(|s| s.to_string()).collect();
    let customer = env.customer(&chroot, "rss-customer", &args)?;
    let bucket = layout::bucket(&name("busy")?);
    let deadline = Instant::now() + ON_SHIFT_TIMEOUT;
    while zk.get_children(&bucket, false).map(|c| c.is_empty()).unwrap_or(true) {
        if Instant::now() >= deadline {
            return Err("the customer never placed its order".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(settle_for);
    let line = format!(
        "rss barista_idle_kib={} barista_idle_hwm_kib={} barista_threads={} customer_waiting_kib={} customer_waiting_hwm_kib={} customer_threads={}",
        idle.status_field("VmRSS")?,
        idle.status_field("VmHWM")?,
        idle.status_field("Threads")?,
        customer.status_field("VmRSS")?,
        customer.status_field("VmHWM")?,
        customer.status_field("Threads")?,
    );
    customer.signal(libc::SIGTERM); // withdraws its order
    let _ = customer.finish();
    busy.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    busy.signal(libc::SIGTERM); // the second signal ends the hour-long brew
    let _ = busy.wait_exit(STOP_GRACE);
    stop_all(std::slice::from_mut(&mut idle), STOP_GRACE);
    let _ = zk.close();
    remove_chroot(env, &chroot);
    Ok(line)
}

/// `recovery`: `kill -9` of a barista busy brewing with orders queued behind it, while another
/// is on shift; the time until the first of its orders is served by the other (`trials`
/// times, a new victim each time). Then SIGTERM of the idle survivor: the time until it has
/// exited.
/// Watches the `orders` orders queued in `bucket`, then kills (SIGKILL) `victim`, which has
/// one of them in hand: the queue, the watches' news (when each order went) and the moment
/// of the kill.
fn kill_busy(
    zk: &ZooKeeper,
    bucket: &str,
    orders: usize,
    mut victim: Proc,
) -> Result<(Vec<String>, mpsc::Receiver<Instant>, Instant)> {
    let queue = queued(zk, bucket)?;
    if queue.len() != orders {
        return Err(format!("expected {orders} queued orders, found {}", queue.len()));
    }
    let (tx, rx) = mpsc::channel();
    for order in &queue {
        let tx = tx.clone();
        zk.exists_w(order, move |_: WatchedEvent| {
            let _ = tx.send(Instant::now());
        })
        .map_err(|e| format!("exists_w {order}: {e:?}"))?;
    }
    let killed = Instant::now();
    victim.signal(libc::SIGKILL);
    let _ = victim.wait_exit(Duration::from_secs(5));
    Ok((queue, rx, killed))
}

/// When the first and the last of `n` orders watched by [`kill_busy`] were served, each
/// awaited for up to `wait`; `whose` names the orders in the error.
fn first_and_last_served(rx: &mpsc::Receiver<Instant>, n: usize, wait: Duration, whose: &str) -> Result<(Instant, Instant)> {
    let first = rx.recv_timeout(wait).map_err(|_| format!("no {whose} order was served"))?;
    let mut last = first;
    for _ in 1..n {
        last = rx.recv_timeout(wait).map_err(|_| format!("not every {whose} order was served"))?;
    }
    Ok((first, last))
}

pub fn recovery(env: &Env, session_timeout: Duration, orders: usize, brew: Duration, trials: usize) -> Result<String> {
    let chroot = env.chroot("recovery");
    env.shop_init(&chroot)?;
    let zk = Arc::new(connect(&env.connect_string(&chroot), Duration::from_secs(10))?);
    let timeout_arg = format!("{}ms", session_timeout.as_millis());
    let extra = ["--session-timeout", timeout_arg.as_str()];
    let mut rescuer = env.barista(&chroot, "rescuer", Duration::ZERO, &extra)?;
    let mut first_served = Stats::default();
    let mut all_served = Stats::default();
    for trial in 1..=trials.max(1) {
        let victim_name = format!("victim{trial}");
        let victim = env.barista(&chroot, &victim_name, brew, &extra)?;
        await_members(&zk, 2, ON_SHIFT_TIMEOUT)?;
        let bucket = layout::bucket(&name(&victim_name)?);
        place_raw_orders(&zk, &bucket, orders, 1)?;
        // Let the victim take the first order in hand (it brews for `brew`), and vary where
        // in its ping cycle (2/3 of the session timeout while it brews) the kill falls.
        std::thread::sleep(Duration::from_millis(500 + 700 * (trial as u64 - 1)));
        let (queue, rx, killed) = kill_busy(&zk, &bucket, orders, victim)?;
        let wait = session_timeout * 3 + Duration::from_secs(30);
        let (first, last) = first_and_last_served(&rx, queue.len(), wait, "orphaned")?;
        first_served.push(first.saturating_duration_since(killed));
        all_served.push(last.saturating_duration_since(killed));
        // The rescuer is idle again once the adopted bucket is gone.
        let deadline = Instant::now() + wait;
        while zk.exists(&bucket, false).ok().flatten().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    rescuer.signal(libc::SIGTERM);
    let status = rescuer.wait_exit(STOP_GRACE).ok_or("the barista did not exit after SIGTERM")?;
    let exit = signalled.elapsed();
    let _ = zk.close();
    remove_chroot(env, &chroot);
    Ok(format!(
        "recovery session_timeout_s={:.1} trials={} orders={orders} victim_brew_ms={} kill9_to_first_served_min_ms={:.1} \
         kill9_to_first_served_p50_ms={:.1} kill9_to_first_served_max_ms={:.1} kill9_to_all_served_max_ms={:.1} \
         sigterm_to_exit_ms={:.1} sigterm_exit_code={}",
        session_timeout.as_secs_f64(),
        first_served.len(),
        brew.as_millis(),
        first_served.ms(0.0),
        first_served.ms(50.0),
        first_served.ms(100.0),
        all_served.ms(100.0),
        ms(exit),
        status.code().unwrap_or(-1),
    ))
}

/// `restart`: `kill -9` of a barista busy brewing with orders queued behind it, then at once a
/// new barista process under its name (what systemd's `Restart=on-failure` does, without its
/// `RestartSec=` pause): the time from the restart until the first of its queued orders is
/// served, `trials` times (a new name each time). The restarted barista brews in zero time,
/// so the figure is the protocol's. A colleague is on shift throughout: it must adopt nothing
/// (it never sees the restarted barista's membership node go).
pub fn restart(env: &Env, session_timeout: Duration, orders: usize, brew: Duration, trials: usize) -> Result<String> {
    let chroot = env.chroot("restart");
    env.shop_init(&chroot)?;
    let zk = Arc::new(connect(&env.connect_string(&chroot), Duration::from_secs(10))?);
    let timeout_arg = format!("{}ms", session_timeout.as_millis());
    let extra = ["--session-timeout", timeout_arg.as_str()];
    let colleague_log = format!("restart-colleague-{}", std::process::id());
    let mut baristas = vec![env.barista_logged(&chroot, "colleague", &colleague_log, Duration::ZERO, &extra)?];
    let (mut to_first, mut killed_to_first, mut to_all) = (Stats::default(), Stats::default(), Stats::default());
    let mut took_over = 0;
    for trial in 1..=trials.max(1) {
        let victim_name = format!("b{trial}");
        let victim = env.barista_logged(&chroot, &victim_name, &format!("restart-{victim_name}-killed"), brew, &extra)?;
        await_members(&zk, 1 + trial, ON_SHIFT_TIMEOUT)?;
        let bucket = layout::bucket(&name(&victim_name)?);
        place_raw_orders(&zk, &bucket, orders, 1)?;
        // Let the victim take the first order in hand (it brews for `brew`).
        std::thread::sleep(Duration::from_millis(500));
        let (queue, rx, killed) = kill_busy(&zk, &bucket, orders, victim)?;
        let restarted = Instant::now();
        let log = format!("restart-{victim_name}-restarted");
        baristas.push(env.barista_logged(&chroot, &victim_name, &log, Duration::ZERO, &extra)?);
        let wait = session_timeout * 3 + Duration::from_secs(30);
        let (first, last) = first_and_last_served(&rx, queue.len(), wait, "restarted barista's")?;
        to_first.push(first.saturating_duration_since(restarted));
        killed_to_first.push(first.saturating_duration_since(killed));
        to_all.push(last.saturating_duration_since(restarted));
        if env.log_text(&log).contains("from a dead holder on this host") {
            took_over += 1;
        }
    }
    let clean = stop_all(&mut baristas, STOP_GRACE);
    let adopted = env.log_text(&colleague_log).matches("adopting the orphaned bucket").count();
    let _ = zk.close();
    remove_chroot(env, &chroot);
    Ok(format!(
        "restart session_timeout_s={:.1} trials={} orders={orders} victim_brew_ms={} restart_to_first_served_min_ms={:.1} \
         restart_to_first_served_p50_ms={:.1} restart_to_first_served_max_ms={:.1} kill9_to_first_served_max_ms={:.1} \
         restart_to_all_served_max_ms={:.1} took_over={took_over} adopted_by_colleague={adopted} baristas_clean_exit={clean}",
        session_timeout.as_secs_f64(),
        to_first.len(),
        brew.as_millis(),
        to_first.ms(0.0),
        to_first.ms(50.0),
        to_first.ms(100.0),
        killed_to_first.ms(100.0),
        to_all.ms(100.0),
    ))
}
