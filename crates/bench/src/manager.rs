//! The shop manager (issue 13): what following a shop under load costs it (CPU per order
//! served, beside the baristas' in the same run), how soon a served order shows in its
//! `/metrics`, and its memory following many shops (beside following one).
//!
//! The manager runs as its real binary with `--zk host:port/CHROOT`: the step's chroot is then
//! its ensemble's root, so it follows the step's shops and nothing else on the server. It is
//! read over HTTP as a scraper reads it, `/metrics` parsed by [`openmetrics`].

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use zk_coffee::config::ShopConfig;
use zk_coffee::layout::{self, BaristaName, ShopName};
use zk_coffee::manager::api::Shops;
use zk_coffee::sales::{self, Counts};
use zookeeper::{Acl, CreateMode, WatchedEvent, WatchedEventType, ZooKeeper};

use crate::common::{
    await_members, connect, delete_tree, ensure_path, ms, process_cpu, remove_chroot, stop_all, Env, Proc, Result, Stats,
};

/// How long the manager gets to come up and to see what the step built.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a sampled order may wait to be served, and then to be counted.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The sampler's pause between two reads of `/metrics` (each read costs the manager an
/// encoding of the page, so it does not spin).
const POLL: Duration = Duration::from_millis(2);
/// How long baristas and the manager get to leave after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// The coffee of the load in the lag run: the sampler orders another ([`SAMPLED`]), so that its
/// series counts only the sampled orders.
const LOAD_COFFEE: &str = "tesora";
/// The sampled orders' coffee.
const SAMPLED: &str = "jacob";
/// The served counter's samples (the family `zk_coffee_orders_served`, a counter).
const SERVED_TOTAL: &str = "zk_coffee_orders_served_total";

fn barista_name(s: &str) -> Result<BaristaName> {
    BaristaName::new(s).map_err(|e| e.to_string())
}

/// A `shop-manager` process serving `--listen` on a port of its own, and an HTTP client for it.
struct Manager {
    proc: Proc,
    base: String,
    agent: ureq::Agent,
}

impl Manager {
    /// Starts `shop-manager` on `chroot` with `extra` flags; its events go to a file in the logs.
    fn start(env: &Env, chroot: &str, log: &str, extra: &[&str]) -> Result<Manager> {
        let address = free_address()?;
        let events = env.logs.join(format!("{log}-events.jsonl"));
        let mut cmd = env.command("shop-manager", chroot);
        cmd.args(["--listen", &address, "--events"]).arg(&events).args(extra).stdout(std::process::Stdio::null());
        let proc = env.spawn(cmd, log)?;
        // A new connection for every request: on a kept-alive connection the manager's
        // HTTP server answers ~40 ms late (its response goes out in two writes; Nagle holds
        // the second until the client's delayed ACK of the first), which would be measured
        // as lag.
        let agent = ureq::Agent::config_builder()
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .proxy(None)
            .max_redirects(0)
            .build()
            .into();
        Ok(Manager { proc, base: format!("http://{address}"), agent })
    }

    /// The body of `GET path`, if it answered 200.
    fn get(&self, path: &str) -> Result<String> {
        let url = format!("{}{path}", self.base);
        let mut response = self.agent.get(&url).call().map_err(|e| format!("GET {url}: {e}"))?;
        let body = response.body_mut().read_to_string().map_err(|e| format!("GET {url}: {e}"))?;
        if response.status() != 200 {
            return Err(format!("GET {url}: {} {}", response.status(), body.trim()));
        }
        Ok(body)
    }

    /// `/api/shops`.
    fn shops(&self) -> Result<Shops> {
        let body = self.get("/api/shops")?;
        serde_json::from_str(&body).map_err(|e| format!("/api/shops is no shops document: {e}"))
    }

    /// The orders served as `/metrics` counts them: `zk_coffee_orders_served_total` summed
    /// over its series, of `coffee` only if given.
    fn served(&self, coffee: Option<&str>) -> Result<f64> {
        let page = self.get("/metrics")?;
        let samples = openmetrics::parse(&page)?;
        openmetrics::check_counter(&page, "zk_coffee_orders_served")?;
        Ok(samples
            .iter()
            .filter(|s| s.name == SERVED_TOTAL)
            .filter(|s| coffee.is_none_or(|c| s.label("coffee") == Some(c)))
            .map(|s| s.value)
            .sum())
    }

    /// Polls `/api/shops` until `done` says the manager sees what it should; the time it took.
    fn await_shops(&self, what: &str, done: impl Fn(&Shops) -> bool) -> Result<Duration> {
        let started = Instant::now();
        loop {
            let last = self.shops();
            if last.as_ref().is_ok_and(&done) {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= READY_TIMEOUT {
                let seen = match last {
                    Ok(shops) => format!("{} shop(s)", shops.shops.len()),
                    Err(e) => e,
                };
                return Err(format!("the manager did not see {what} within {READY_TIMEOUT:?} (last: {seen})"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits; whether it exited cleanly.
    fn stop(mut self) -> bool {
        stop_all(std::slice::from_mut(&mut self.proc), STOP_GRACE) == 1
    }
}

/// A loopback address nothing listens on (it was free a moment ago).
fn free_address() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    Ok(address.to_string())
}

/// `manager`: the `shop` step's load (`baristas` zero-brew baristas, `concurrency` customers,
/// `orders` orders) with a manager following the shop. Two runs on the same shop:
///
/// 1. the load alone, nobody reading the manager: its CPU time (utime + stime from /proc)
///    from the load's start until its `/metrics` counts every order served, per order served,
///    beside the baristas' CPU time over the load;
/// 2. the same load for as long as the sampler needs (all customers ordering [`LOAD_COFFEE`]):
///    the sampler places `samples` orders of [`SAMPLED`] one after another into the baristas'
///    buckets in turn, sees each deleted by an `exists` watch, then reads `/metrics` every
///    [`POLL`] until the sampled coffee's served count includes it: the lag from the deletion
///    seen to the count seen.
pub fn manager(env: &Env, baristas: usize, concurrency: usize, orders: u64, samples: usize) -> Result<String> {
    let chroot = env.chroot(&format!("manager-{baristas}x{concurrency}"));
    env.shop_init(&chroot)?;
    let result = manager_in(env, &chroot, baristas, concurrency, orders, samples);
    remove_chroot(env, &chroot);
    result
}

fn manager_in(env: &Env, chroot: &str, baristas: usize, concurrency: usize, orders: u64, samples: usize) -> Result<String> {
    let zk = connect(&env.connect_string(chroot), Duration::from_secs(10))?;
    let names: Vec<BaristaName> = (1..=baristas).map(|i| barista_name(&format!("b{i:02}"))).collect::<Result<_>>()?;
    let mut procs = Vec::new();
    for name in &names {
        procs.push(env.barista(chroot, name.as_str(), Duration::ZERO, &[])?);
    }
    await_members(&zk, baristas, READY_TIMEOUT)?;
    let manager = Manager::start(env, chroot, "manager-load", &["--shop", "/"])?;
    manager.await_shops(&format!("{baristas} baristas on shift"), |s| {
        s.shops.get("/").is_some_and(|shop| shop.on_shift.len() == baristas)
    })?;

    // 1. CPU: the load alone.
    let cpu = |pid: u32| process_cpu(pid).ok_or_else(|| format!("cannot read /proc/{pid}/stat"));
    let baristas_cpu = |procs: &[Proc]| -> Result<Duration> { procs.iter().map(|p| cpu(p.pid())).sum() };
    let counted_before = manager.served(None)?;
    let (manager_start, baristas_start) = (cpu(manager.proc.pid())?, baristas_cpu(&procs)?);
    let args = load_args(&["--orders", &orders.to_string(), "--concurrency", &concurrency.to_string()]);
    let summary = env.load(chroot, &format!("manager-load-{baristas}x{concurrency}"), &args)?;
    let baristas_used = baristas_cpu(&procs)?.saturating_sub(baristas_start);
    let served = summary.num("served")?;
    // The manager is done with the load once its page counts every order served (it may
    // still be reading the last ledgers when the customers are told).
    let caught_up = Instant::now();
    let counted = loop {
        let counted = manager.served(None)? - counted_before;
        if counted >= served || caught_up.elapsed() >= SAMPLE_TIMEOUT {
            break counted;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let catch_up = caught_up.elapsed();
    let manager_used = cpu(manager.proc.pid())?.saturating_sub(manager_start);
    if counted != served {
        return Err(format!("the manager's /metrics counts {counted} orders served, the load served {served}"));
    }
    let (manager_us, baristas_us) = (manager_used.as_secs_f64() * 1e6 / served, baristas_used.as_secs_f64() * 1e6 / served);

    // 2. Lag: sampled orders under the same load.
    let args = load_args(&["--duration", "600", "--concurrency", &concurrency.to_string(), "--coffee", LOAD_COFFEE]);
    let load = env.customer(chroot, &format!("manager-lag-load-{baristas}x{concurrency}"), &args)?;
    // Let every customer be ordering before the first sample.
    std::thread::sleep(Duration::from_millis(500));
    let sampled = sample_lag(&zk, &manager, &names, samples);
    load.signal(libc::SIGTERM); // its waiting customers withdraw their orders
    let lag_load =
        load.finish().ok().and_then(|(_, out)| out.lines().rev().find(|l| l.starts_with("summary ")).map(str::to_owned));
    let Sampled { lags: mut lag, skipped, polls, polling } = sampled?;
    let lag_throughput = lag_load.map(|l| crate::common::Fields::parse(&l)).and_then(|f| f.num("throughput").ok());

    let manager_clean = manager.stop();
    let clean = stop_all(&mut procs, STOP_GRACE);
    let _ = zk.close();
    Ok(format!(
        "manager baristas={baristas} concurrency={concurrency} orders={orders} served={served} throughput={} \
         manager_cpu_us_per_order={manager_us:.1} baristas_cpu_us_per_order={baristas_us:.1} cpu_ratio={:.3} \
         catch_up_ms={:.1} samples={} skipped={skipped} polls_per_sample={:.1} poll_ms={:.2} lag_load_throughput={} \
         lag_p50_ms={:.2} lag_p99_ms={:.2} lag_max_ms={:.2} manager_clean_exit={} baristas_clean_exit={clean}",
        summary.0["throughput"],
        manager_us / baristas_us,
        ms(catch_up),
        lag.len(),
        polls as f64 / lag.len().max(1) as f64,
        ms(polling) / polls.max(1) as f64,
        lag_throughput.map_or_else(|| "nan".to_owned(), |t| format!("{t:.0}")),
        lag.ms(50.0),
        lag.ms(99.0),
        lag.ms(100.0),
        u8::from(manager_clean),
    ))
}

/// The customer load generator's arguments: `extra`, patient (nobody gives up under load).
fn load_args(extra: &[&str]) -> Vec<String> {
    extra.iter().chain(&["--patience", "60"]).map(|s| s.to_string()).collect()
}

/// What the sampler of the lag run found.
struct Sampled {
    /// From each sampled order's deletion seen to its count seen.
    lags: Stats,
    /// Orders gone before their watch was set (served within the create's round trip): no
    /// deletion time, so no sample (their count is still awaited with the next one's).
    skipped: usize,
    /// Reads of `/metrics`, and the time they took all together.
    polls: usize,
    polling: Duration,
}

/// The sampler of the lag run: `samples` orders of [`SAMPLED`], one at a time, into the
/// buckets of `baristas` in turn.
fn sample_lag(zk: &ZooKeeper, manager: &Manager, baristas: &[BaristaName], samples: usize) -> Result<Sampled> {
    let mut expected = manager.served(Some(SAMPLED))?;
    let (mut lags, mut skipped, mut polls, mut polling) = (Stats::default(), 0, 0, Duration::ZERO);
    let mut k = 0;
    while lags.len() < samples {
        let prefix = layout::order_prefix(&baristas[k % baristas.len()]);
        k += 1;
        let order = zk
            .create(&prefix, SAMPLED.as_bytes().to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential)
            .map_err(|e| format!("create {prefix}: {e:?}"))?;
        expected += 1.0;
        let (tx, rx) = mpsc::channel();
        let watched = zk
            .exists_w(&order, move |event: WatchedEvent| {
                let _ = tx.send((Instant::now(), event.event_type));
            })
            .map_err(|e| format!("exists_w {order}: {e:?}"))?;
        if watched.is_none() {
            skipped += 1;
            if skipped > samples {
                return Err(format!("{skipped} sampled orders were served before their watch was set"));
            }
            continue;
        }
        let (deleted, kind) =
            rx.recv_timeout(SAMPLE_TIMEOUT).map_err(|_| format!("{order} was not served within {SAMPLE_TIMEOUT:?}"))?;
        if kind != WatchedEventType::NodeDeleted {
            return Err(format!("{order}: {kind:?}, not its deletion"));
        }
        loop {
            polls += 1;
            let asked = Instant::now();
            let counted = manager.served(Some(SAMPLED))?;
            polling += asked.elapsed();
            if counted >= expected {
                lags.push(deleted.elapsed());
                break;
            }
            if deleted.elapsed() >= SAMPLE_TIMEOUT {
                return Err(format!("{order} was served but /metrics did not count it within {SAMPLE_TIMEOUT:?}"));
            }
            std::thread::sleep(POLL);
        }
    }
    Ok(Sampled { lags, skipped, polls, polling })
}

/// `manager-rss`: the manager's resident memory following `shops` shops of `baristas`
/// baristas each, against following one empty shop, in the same run. The shops are built
/// with a raw client as `shop-init` would (its nodes, its default configuration), and each
/// barista as a raw client would register one: an ephemeral membership node (held by one of
/// [`HOLDERS`] sessions), its bucket with `orders` orders, and its ledger (`jacob=N`).
pub fn manager_rss(env: &Env, shops: usize, baristas: usize, orders: usize, settle: Duration) -> Result<String> {
    let one = follow(env, 1, 0, 0, settle)?;
    let many = follow(env, shops, baristas, orders, settle)?;
    Ok(format!(
        "manager-rss shops={shops} baristas={baristas} orders={orders} settle_s={:.1} build_s={:.2} ready_s={:.2} \
         rss_kib={} hwm_kib={} threads={} one_rss_kib={} one_hwm_kib={} one_threads={} one_ready_s={:.2} \
         manager_clean_exit={}",
        settle.as_secs_f64(),
        many.build.as_secs_f64(),
        many.ready.as_secs_f64(),
        many.rss_kib,
        many.hwm_kib,
        many.threads,
        one.rss_kib,
        one.hwm_kib,
        one.threads,
        one.ready.as_secs_f64(),
        u8::from(one.clean && many.clean),
    ))
}

/// How many raw sessions hold the baristas' membership nodes.
const HOLDERS: usize = 4;
/// How many threads build (and remove) the shops.
const BUILDERS: usize = 16;

/// What [`follow`] measured.
struct Followed {
    build: Duration,
    ready: Duration,
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
    clean: bool,
}

/// Builds `shops` shops in a chroot of their own, starts a manager on it, waits until its
/// `/api/shops` shows them all as built, lets it settle and reads its memory.
fn follow(env: &Env, shops: usize, baristas: usize, orders: usize, settle: Duration) -> Result<Followed> {
    let chroot = env.chroot(&format!("manager-rss-{shops}"));
    ensure_path(&connect(&env.servers, Duration::from_secs(10))?, &chroot)?;
    let names: Vec<ShopName> =
        (1..=shops).map(|i| ShopName::new(&format!("s{i:03}")).map_err(|e| e.to_string())).collect::<Result<_>>()?;
    let result = follow_in(env, &chroot, &names, baristas, orders, settle);
    remove_chroot_parallel(env, &chroot, &names);
    result
}

fn follow_in(env: &Env, chroot: &str, shops: &[ShopName], baristas: usize, orders: usize, settle: Duration) -> Result<Followed> {
    let connect_string = env.connect_string(chroot);
    let zk = Arc::new(connect(&connect_string, Duration::from_secs(10))?);
    let holders: Vec<Arc<ZooKeeper>> =
        (0..HOLDERS).map(|_| connect(&connect_string, Duration::from_secs(30)).map(Arc::new)).collect::<Result<_>>()?;
    let started = Instant::now();
    ensure_path(&zk, layout::SHOPS)?;
    let names: Arc<Vec<ShopName>> = Arc::new(shops.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..BUILDERS.min(shops.len()))
        .map(|t| {
            let (zk, holder, names, next) =
                (Arc::clone(&zk), Arc::clone(&holders[t % HOLDERS]), Arc::clone(&names), Arc::clone(&next));
            std::thread::spawn(move || -> Result<()> {
                while let Some(shop) = names.get(next.fetch_add(1, Ordering::SeqCst)) {
                    build_shop(&zk, &holder, shop, baristas, orders)?;
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "a builder thread panicked")??;
    }
    let build = started.elapsed();

    let manager = Manager::start(env, chroot, &format!("manager-rss-{}", shops.len()), &[])?;
    let sold: u64 = (1..=baristas as u64).sum();
    let ready = manager.await_shops(&format!("{} shops of {baristas} baristas", shops.len()), |s| {
        s.shops.len() == shops.len()
            && s.shops.values().all(|shop| {
                shop.on_shift.len() == baristas
                    && shop.on_shift.iter().map(|b| b.queue.orders as usize).sum::<usize>() == baristas * orders
                    && shop.sales.total == sold
            })
    })?;
    std::thread::sleep(settle);
    let (rss_kib, hwm_kib, threads) =
        (manager.proc.status_field("VmRSS")?, manager.proc.status_field("VmHWM")?, manager.proc.status_field("Threads")?);
    let clean = manager.stop();
    for holder in holders {
        let _ = holder.close();
    }
    let _ = zk.close();
    Ok(Followed { build, ready, rss_kib, hwm_kib, threads, clean })
}

/// Creates one shop under `/shops` as `shop-init` does, with `baristas` raw baristas.
fn build_shop(zk: &ZooKeeper, holder: &ZooKeeper, shop: &ShopName, baristas: usize, orders: usize) -> Result<()> {
    let create = |zk: &ZooKeeper, path: String, data: Vec<u8>, mode: CreateMode| -> Result<()> {
        match zk.create(&path, data, Acl::open_unsafe().clone(), mode) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("create {path}: {e:?}")),
        }
    };
    let at = |path: &str| layout::in_shop(Some(shop), path);
    create(zk, layout::shop_root(shop), Vec::new(), CreateMode::Persistent)?;
    for path in layout::SHOP_NODES {
        create(zk, at(path), layout::ROOT_DATA.to_vec(), CreateMode::Persistent)?;
    }
    create(zk, at(layout::CONFIG), ShopConfig::default().encode(), CreateMode::Persistent)?;
    for j in 1..=baristas {
        let barista = barista_name(&format!("b{j:02}"))?;
        create(zk, at(&layout::bucket(&barista)), Vec::new(), CreateMode::Persistent)?;
        for _ in 0..orders {
            create(zk, at(&layout::order_prefix(&barista)), LOAD_COFFEE.as_bytes().to_vec(), CreateMode::PersistentSequential)?;
        }
        let ledger = Counts::from([(SAMPLED.to_owned(), j as u64)]);
        create(zk, at(&layout::ledger(&barista)), sales::encode(&ledger), CreateMode::Persistent)?;
        create(holder, at(&layout::member(&barista)), Vec::new(), CreateMode::Ephemeral)?;
    }
    Ok(())
}

/// Removes the shops of [`follow`] on [`BUILDERS`] threads, then the rest of the chroot.
fn remove_chroot_parallel(env: &Env, chroot: &str, shops: &[ShopName]) {
    if let Ok(zk) = connect(&env.connect_string(chroot), Duration::from_secs(10)) {
        let zk = Arc::new(zk);
        let names: Arc<Vec<ShopName>> = Arc::new(shops.to_vec());
        let next = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..BUILDERS.min(shops.len()))
            .map(|_| {
                let (zk, names, next) = (Arc::clone(&zk), Arc::clone(&names), Arc::clone(&next));
                std::thread::spawn(move || {
                    while let Some(shop) = names.get(next.fetch_add(1, Ordering::SeqCst)) {
                        if let Err(e) = delete_tree(&zk, &layout::shop_root(shop)) {
                            eprintln!("zk-coffee-bench: cleaning {}: {e}", layout::shop_root(shop));
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        let _ = zk.close();
    }
    remove_chroot(env, chroot);
}

/// Just enough of the OpenMetrics text format to read counters: the samples of a page
/// (`name{labels} value [timestamp]`), which must end with `# EOF`.
pub mod openmetrics {
    use crate::common::Result;

    /// One sample line.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Sample {
        /// The sample's name: a counter's samples are `{family}_total` (and `{family}_created`).
        pub name: String,
        pub labels: Vec<(String, String)>,
        pub value: f64,
    }

    impl Sample {
        pub fn label(&self, name: &str) -> Option<&str> {
            self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
        }
    }

    /// The samples of `page`; an error if a line is no sample or the page does not end with
    /// `# EOF` (a page cut short would count too little).
    pub fn parse(page: &str) -> Result<Vec<Sample>> {
        let mut samples = Vec::new();
        let mut lines = page.lines();
        for line in lines.by_ref() {
            if line == "# EOF" {
                break;
            }
            if line.starts_with('#') {
                continue;
            }
            samples.push(sample(line).ok_or_else(|| format!("not an OpenMetrics sample: {line:?}"))?);
        }
        if !page.lines().any(|l| l == "# EOF") {
            return Err("the page does not end with # EOF".into());
        }
        if let Some(extra) = lines.find(|l| !l.is_empty()) {
            return Err(format!("a line after # EOF: {extra:?}"));
        }
        Ok(samples)
    }

    /// Checks that `family` is declared a counter on `page` (so its samples are `_total`).
    pub fn check_counter(page: &str, family: &str) -> Result<()> {
        if page.lines().any(|l| l == format!("# TYPE {family} counter")) {
            Ok(())
        } else {
            Err(format!("the page declares no counter {family}"))
        }
    }

    fn sample(line: &str) -> Option<Sample> {
        let name_end = line.find(['{', ' '])?;
        let name = &line[..name_end];
        let (labels, rest) = if line[name_end..].starts_with('{') {
            let (labels, rest) = labels(&line[name_end + 1..])?;
            (labels, rest)
        } else {
            (Vec::new(), &line[name_end..])
        };
        let mut fields = rest.strip_prefix(' ')?.split(' ');
        let value = match fields.next()? {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().ok()?,
        };
        // An optional timestamp, then an optional exemplar (`# {...} value`), which we skip.
        if let Some(ts) = fields.next() {
            if ts != "#" {
                ts.parse::<f64>().ok()?;
            }
        }
        (!name.is_empty()).then(|| Sample { name: name.to_owned(), labels, value })
    }

    /// `a="x",b="y"}` → the pairs and what follows the `}`.
    fn labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
        let mut labels = Vec::new();
        loop {
            if let Some(rest) = s.strip_prefix('}') {
                return Some((labels, rest));
            }
            let eq = s.find('=')?;
            let key = s[..eq].to_owned();
            let mut chars = s[eq + 1..].strip_prefix('"')?.char_indices();
            let mut value = String::new();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '"' => break i,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c @ ('"' | '\\') => value.push(c),
                        _ => return None,
                    },
                    c => value.push(c),
                }
            };
            labels.push((key, value));
            s = &s[eq + 2 + end + 1..];
            s = s.strip_prefix(',').unwrap_or(s);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const PAGE: &str = "# HELP zk_coffee_orders_served Orders served\n\
            # TYPE zk_coffee_orders_served counter\n\
            zk_coffee_orders_served_total{ensemble=\"127.0.0.1:2181\",shop=\"/\",barista=\"b1\",coffee=\"jacob\"} 3\n\
            zk_coffee_orders_served_total{ensemble=\"127.0.0.1:2181\",shop=\"/\",barista=\"b\\\"2\\\\\",coffee=\"tesora\"} 4.0\n\
            zk_coffee_orders_served_created{shop=\"/\"} 1.7e9\n\
            process_start_time_seconds 1.5 1000\n\
            # EOF\n";

        #[test]
        fn reads_samples_labels_and_escapes() {
            let samples = parse(PAGE).unwrap();
            assert_eq!(samples.len(), 4);
            assert_eq!(samples[0].name, "zk_coffee_orders_served_total");
            assert_eq!(samples[0].label("coffee"), Some("jacob"));
            assert_eq!(samples[0].value, 3.0);
            assert_eq!(samples[1].label("barista"), Some("b\"2\\"));
            assert_eq!(samples[1].label("coffee"), Some("tesora"));
            assert_eq!(samples[1].value, 4.0);
            assert_eq!(samples[3].labels, Vec::new());
            assert_eq!(samples[3].value, 1.5);
            check_counter(PAGE, "zk_coffee_orders_served").unwrap();
            assert!(check_counter(PAGE, "zk_coffee_orders").is_err());
        }

        #[test]
        fn refuses_a_page_cut_short_or_a_bad_line() {
            assert!(parse(&PAGE.replace("# EOF\n", "")).is_err());
            assert!(parse(&PAGE.replace(" 3\n", "\n")).is_err());
            assert!(parse(&format!("{PAGE}x 1\n")).is_err());
            assert!(parse("a{b=\"c} 1\n# EOF\n").is_err());
        }
    }
}
