//! Metrics (issue 13, part 5): the HTTP server every role shares, and the barista's
//! `/metrics`, parsed by the official Prometheus parser and linted by promtool (see
//! `zk_coffee_tests::http`), never grepped. Its counts are checked against what the customers
//! and the ledger say, its gauges against what the test did, an address that cannot be used
//! stops the barista before it touches ZooKeeper, and two instances on one host, set up the
//! way the systemd unit sets them up, each serve their own.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zookeeper::{Acl, CreateMode};

use zk_coffee::metrics::{self, HttpServer, Registry, Response};
use zk_coffee_tests::fault;
use zk_coffee_tests::http::{self, Metrics};
use zk_coffee_tests::prometheus::Prometheus;
use zk_coffee_tests::*;

/// A loopback address nothing listens on (it was free a moment ago).
fn free_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], closed_port()))
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs_f64()
}

/// The `process_*` metrics are there and sane for a process started at about `started`.
fn assert_process_metrics(m: &Metrics, started: f64) {
    assert!(m.get("process_resident_memory_bytes") > 0.0, "{}", m.text);
    assert!(m.get("process_virtual_memory_bytes") >= m.get("process_resident_memory_bytes"), "{}", m.text);
    let start = m.get("process_start_time_seconds");
    assert!((started - 5.0..=now() + 1.0).contains(&start), "started at {start}, the test started it at {started}");
    assert!(m.get("process_cpu_seconds_total") >= 0.0, "{}", m.text);
    let (open, max) = (m.get("process_open_fds"), m.get("process_max_fds"));
    assert!(open >= 3.0 && open <= max, "open fds {open}, max {max}");
    for (family, unit) in [("process_cpu_seconds", "seconds"), ("process_resident_memory_bytes", "bytes")] {
        assert_eq!(m.family(family).map(|f| f.unit.as_str()), Some(unit), "{family}");
    }
}

/// Every family has help text (the lint checks the names and types).
fn assert_documented(m: &Metrics) {
    for f in &m.families {
        assert!(!f.help.trim().is_empty(), "{} has no help text", f.name);
    }
}

/// The histogram's buckets are cumulative and end with `+Inf` = its count.
fn assert_consistent(h: &http::Histogram) {
    assert!(h.buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{h:?}");
    assert_eq!(h.buckets.last(), Some(&(f64::INFINITY, h.count)), "{h:?}");
}

/// How many coffees `barista`'s ledger counts.
fn ledger_total(server: &ZkServer, barista: &str) -> f64 {
    let node = server.node(&format!("/zk-coffee/sales/{barista}")).expect("the ledger");
    let text = String::from_utf8(node.data).expect("UTF-8 ledger");
    text.lines().filter_map(|l| l.split_once('=')).map(|(_, n)| n.parse::<f64>().expect("a count")).sum()
}

#[test]
fn the_http_server_answers_survives_a_panicking_handler_and_stops() {
    let server = HttpServer::start("127.0.0.1:0", |request| match request.path() {
        "/boom" => panic!("a handler bug"),
        path => Response::text(format!("{} {path} {}", request.method(), request.query())),
    })
    .expect("start");
    let addr = server.local_addr();
    assert_eq!(http::get(addr, "/boom").status, 500);
    // The panic took neither the server nor its thread.
    let answer = http::get(addr, "/x?y=1");
    assert_eq!((answer.status, answer.body.as_str()), (200, "GET /x y=1"));
    assert_eq!(answer.content_type, "text/plain; charset=utf-8");
    server.stop();
    wait_until(LOG_TIMEOUT, "the stopped server to refuse connections", || http::try_request("GET", addr, "/x").is_err());
}

#[test]
fn serve_metrics_answers_metrics_healthz_the_extra_routes_and_404() {
    let mut registry = Registry::default();
    metrics::build_info(&mut registry);
    let extra = |r: &metrics::Request| (r.path() == "/api/shops").then(|| Response::json(&["main"]));
    let started = now();
    let server = metrics::serve_metrics("127.0.0.1:0", Arc::new(registry), metrics::Guard::open(), extra).expect("serve");
    let addr = server.local_addr();
    let m = http::scrape(addr);
    assert_eq!(m.value("zk_coffee_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0));
    // This test process: it started before the test did.
    assert_process_metrics(&m, started - 3600.0);
    assert_documented(&m);
    let healthz = http::get(addr, "/healthz");
    assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok\n"));
    let api = http::get(addr, "/api/shops");
    assert_eq!((api.status, api.content_type.as_str(), api.body.as_str()), (200, "application/json", "[\"main\"]"));
    assert_eq!(http::get(addr, "/nothing").status, 404);
    assert_eq!(http::request("POST", addr, "/metrics").status, 405);
}

#[test]
fn the_parser_and_the_lint_refuse_bad_pages() {
    let misnamed = "# HELP zk_coffee_x_total Things.\n# TYPE zk_coffee_x_total counter\nzk_coffee_x_total 1\n# EOF\n";
    assert!(http::parse(misnamed).is_err(), "an OpenMetrics counter's family is named without _total");
    let good = "# HELP zk_coffee_x Things.\n# TYPE zk_coffee_x counter\nzk_coffee_x_total 1\n# EOF\n";
    assert_eq!(http::parse(good).expect("parses").value("zk_coffee_x_total", &[]), Some(1.0));
    http::lint(good).expect("lints");
    assert!(http::parse("zk_coffee_x 1\n").is_err(), "no # EOF");
    assert!(http::parse("not a page at all\n# EOF\n").is_err());
    // Parses, but breaks the naming conventions: a gauge ending in _total, a unit abbreviated.
    for bad in [
        "# HELP zk_coffee_y_total Y.\n# TYPE zk_coffee_y_total gauge\nzk_coffee_y_total 1\n# EOF\n",
        "# HELP zk_coffee_wait_ms Wait.\n# TYPE zk_coffee_wait_ms gauge\nzk_coffee_wait_ms 1\n# EOF\n",
    ] {
        http::parse(bad).expect("parses");
        assert!(http::lint(bad).is_err(), "promtool took {bad:?}");
    }
}

#[test]
fn a_barista_serves_its_counts_gauges_and_histograms_on_metrics() {
    let mut server = ZkServer::builder().tick_ms(fault::TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string().to_owned();
    let addr = free_address();
    let started = now();
    // Brewing takes a second: the queue is seen, and each serving transaction holds one order.
    let barista = fault::barista(&zk, "host", "1").args(["--metrics-listen", &addr.to_string()]).spawn_on_shift();
    barista.wait_for_stderr(&format!("serving metrics on http://{addr}/metrics"), LOG_TIMEOUT);

    let m = http::scrape(addr);
    assert_documented(&m);
    for (name, value) in [
        ("zk_coffee_barista_orders_served_total", 0.0),
        ("zk_coffee_barista_orders_rejected_total", 0.0),
        ("zk_coffee_barista_withdrawn_while_brewing_total", 0.0),
        ("zk_coffee_barista_orphans_adopted_total", 0.0),
        ("zk_coffee_barista_sessions_total", 1.0),
        ("zk_coffee_barista_connected", 1.0),
        ("zk_coffee_barista_queue_length", 0.0),
        ("zk_coffee_barista_brew_seconds_count", 0.0),
        ("zk_coffee_barista_batch_size_count", 0.0),
    ] {
        assert_eq!(m.get(name), value, "{name}");
    }
    assert_eq!(m.value("zk_coffee_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0));
    assert_process_metrics(&m, started);

    // Three orders at once from a raw client: the queue holds them while the first brews.
    let raw = server.raw();
    for _ in 0..3 {
        raw.create("/orders/host/coffee", b"jacob".to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential)
            .expect("a raw order");
    }
    http::wait_metrics(addr, "a queue of at least 2", LOG_TIMEOUT, |m| m.get("zk_coffee_barista_queue_length") >= 2.0);
    // Customers are served as well.
    let customers: Vec<Proc> = (0..2).map(|_| fault::customer(&zk, Some("host"), "tesora", "30").spawn()).collect();
    let mut served = 3.0;
    for c in customers {
        let out = c.wait_exit(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        assert_eq!(Receipt::parse(out.single_stdout_line()).outcome, "served", "{out}");
        served += 1.0;
    }
    http::wait_metrics(addr, "every order served and the queue empty", LOG_TIMEOUT, |m| {
        m.get("zk_coffee_barista_orders_served_total") == served && m.get("zk_coffee_barista_queue_length") == 0.0
    });
    assert_eq!(ledger_total(&server, "host"), served, "the ledger and the metric");

    // A customer who gives up while its coffee brews: found gone when it is to be served.
    let out = fault::customer(&zk, Some("host"), "jacob", "0.3").run(EXIT_TIMEOUT);
    out.assert_code(exit::GAVE_UP);
    http::wait_metrics(addr, "the withdrawn order counted", LOG_TIMEOUT, |m| {
        m.get("zk_coffee_barista_withdrawn_while_brewing_total") == 1.0
    });
    // Garbage is rejected, and counted once.
    raw.create("/orders/host/coffee", b"\xff\xfe garbage".to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential)
        .expect("a garbage order");
    http::wait_metrics(addr, "the garbage order rejected", LOG_TIMEOUT, |m| {
        m.get("zk_coffee_barista_orders_rejected_total") == 1.0
    });

    let m = http::scrape(addr);
    assert_eq!(m.get("zk_coffee_barista_orders_served_total"), served);
    // Every coffee made (the withdrawn one too) took a second or a little more.
    let brew = m.histogram("zk_coffee_barista_brew_seconds");
    assert_consistent(&brew);
    assert_eq!(brew.count, served + 1.0, "{brew:?}");
    assert!(brew.sum >= brew.count && brew.sum < brew.count * 5.0, "{brew:?}");
    assert_eq!(brew.buckets.iter().find(|(le, _)| *le == 0.5).map(|b| b.1), Some(0.0), "{brew:?}");
    // One order per transaction: each was served before the next was brewed.
    let batches = m.histogram("zk_coffee_barista_batch_size");
    assert_consistent(&batches);
    assert_eq!((batches.count, batches.sum), (served, served), "{batches:?}");
    assert_eq!(batches.buckets.first(), Some(&(1.0, served)), "{batches:?}");

    // The connection goes and comes back with the server.
    server.stop();
    http::wait_metrics(addr, "connected 0 with the server down", LOG_TIMEOUT, |m| m.get("zk_coffee_barista_connected") == 0.0);
    server.start_again();
    let m = http::wait_metrics(addr, "connected 1 again", LOG_TIMEOUT, |m| m.get("zk_coffee_barista_connected") == 1.0);
    let sessions = m.get("zk_coffee_barista_sessions_total");
    assert!(sessions >= 1.0, "{}", m.text);
    // Frozen past its session's expiry: once thawed it counts a new session.
    let frozen = fault::Frozen::freeze(barista.pid());
    wait_until(LOG_TIMEOUT, "the frozen barista's session to expire", || !server.exists("/barista_group/host"));
    frozen.thaw();
    http::wait_metrics(addr, "one session more, connected", LOG_TIMEOUT, |m| {
        m.get("zk_coffee_barista_sessions_total") == sessions + 1.0 && m.get("zk_coffee_barista_connected") == 1.0
    });
    barista.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn a_metrics_address_that_cannot_be_used_stops_the_barista_before_it_registers() {
    let server = ZkServer::start();
    server.init_shop();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("addr").to_string();
    let out = server.cmd(Role::Barista).args(["--name", "b1", "--metrics-listen", &address]).run(EXIT_TIMEOUT);
    out.assert_code(exit::LISTEN).assert_within(Duration::from_secs(5));
    out.error_line(&[&format!("cannot listen on {address}"), "in use"]);
    assert_eq!(out.stderr.len(), 1, "one line, nothing before it:\n{out}");
    assert!(!server.exists("/barista_group/b1") && !server.exists("/orders/b1"), "the barista touched the shop");

    for (how, value) in [("flag", "127.0.0.1"), ("flag", "localhost:http"), ("env", "127.0.0.1:99999")] {
        let cmd = server.cmd(Role::Barista).args(["--name", "b1"]);
        let cmd = if how == "flag" { cmd.args(["--metrics-listen", value]) } else { cmd.env("BARISTA_METRICS_LISTEN", value) };
        let out = cmd.run(EXIT_TIMEOUT);
        out.assert_code(exit::USAGE);
        out.error_line(&["--metrics-listen", "is not a listen address"]);
    }
    assert!(!server.exists("/orders/b1"));
}

/// The variables systemd gives instance `instance` of the shipped `barista@.service`, with
/// its `/etc/zk-coffee` read from `etc`: its `Environment=` lines (`%i`, `%l`, `%B` filled
/// in), then each `EnvironmentFile=` in order, later ones overriding earlier ones (a file
/// named with `-` may be missing). The files are read as systemd reads simple `KEY=VALUE`
/// lines: blank lines and `#` comments skipped, no quoting used.
fn unit_environment(etc: &Path, instance: &str, host: &str) -> BTreeMap<String, String> {
    let unit = std::fs::read_to_string(workspace_root().join("systemd/barista@.service")).expect("read the unit");
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    let fill = |s: &str| s.replace("%i", instance).replace("%l", host).replace("%B", boot_id.trim());
    let mut env = BTreeMap::new();
    for line in unit.lines() {
        if let Some(assignment) = line.strip_prefix("Environment=") {
            let (key, value) = assignment.split_once('=').expect("KEY=VALUE");
            env.insert(key.to_owned(), fill(value));
        }
    }
    for line in unit.lines() {
        let Some(file) = line.strip_prefix("EnvironmentFile=") else { continue };
        let (optional, file) = match file.strip_prefix('-') {
            Some(file) => (true, file),
            None => (false, file),
        };
        let path = etc.join(fill(file).strip_prefix("/etc/zk-coffee/").expect("a file in /etc/zk-coffee"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(_) if optional => continue,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("{}: not KEY=VALUE: {line}", path.display()));
            env.insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    env
}

#[test]
fn two_instances_on_one_host_each_serve_their_own_metrics() {
    let server = ZkServer::builder().tick_ms(fault::TICK_MS).start();
    server.init_shop();
    let dir = Dir::new("instances");
    let etc = dir.join("etc-zk-coffee");
    std::fs::create_dir_all(&etc).expect("mkdir");
    // barista.env as install-systemd.sh installs it and the operator edits it: ZK_SERVERS set.
    let example = std::fs::read_to_string(workspace_root().join("systemd/barista.env.example")).expect("the example");
    assert!(example.lines().any(|l| l.starts_with("# BARISTA_METRICS_LISTEN=")), "the example lacks the metrics setting");
    let shared: String = example
        .lines()
        .map(
            |l| if l.starts_with("ZK_SERVERS=") { format!("ZK_SERVERS={}\n", server.connect_string()) } else { format!("{l}\n") },
        )
        .chain(["BARISTA_BREW_TIME=0.05\n".to_owned()])
        .collect();
    std::fs::write(etc.join("barista.env"), shared).expect("write barista.env");
    // One port per instance, in its own file (the README's scheme, on free ports here).
    let addrs = [free_address(), free_address()];
    assert_ne!(addrs[0], addrs[1]);
    for (i, addr) in addrs.iter().enumerate() {
        let file = format!("# barista@{n} only\nBARISTA_METRICS_LISTEN={addr}\n", n = i + 1);
        std::fs::write(etc.join(format!("barista-{}.env", i + 1)), file).expect("write the instance's file");
    }
    let mut instances: Vec<Proc> = ["1", "2"]
        .iter()
        .map(|n| {
            let env = unit_environment(&etc, n, "testhost");
            assert_eq!(env["BARISTA_NAME"], format!("testhost_{n}"));
            env.iter().fold(TestCommand::new(Role::Barista), |cmd, (k, v)| cmd.env(k, v)).spawn_on_shift()
        })
        .collect();

    // Two customers for the first, three for the second.
    let visits = [("testhost_1", 2), ("testhost_2", 3)];
    let zk = server.connect_string().to_owned();
    let customers: Vec<Proc> = visits
        .iter()
        .flat_map(|(name, n)| (0..*n).map(move |_| *name))
        .map(|name| fault::customer(&zk, Some(name), "jacob", "30").spawn())
        .collect();
    for c in customers {
        c.wait_exit(EXIT_TIMEOUT).assert_code(exit::OK);
    }
    for ((name, n), addr) in visits.iter().zip(addrs) {
        let what = format!("{name} to count its {n} orders at {addr}");
        http::wait_metrics(addr, &what, LOG_TIMEOUT, |m| m.get("zk_coffee_barista_orders_served_total") == f64::from(*n));
        let m = http::scrape(addr);
        assert_eq!(m.get("zk_coffee_barista_orders_served_total"), ledger_total(&server, name), "{name}");
        assert_eq!(m.get("zk_coffee_barista_connected"), 1.0);
    }
    // Each is its own process: the second killed, its port goes quiet and the first adopts
    // its orphaned bucket once its session expires.
    let second = instances.pop().expect("two");
    drop(second);
    wait_until(LOG_TIMEOUT, "the killed instance's port to go quiet", || http::try_request("GET", addrs[1], "/metrics").is_err());
    http::wait_metrics(addrs[0], "the first to adopt the second's bucket", LOG_TIMEOUT, |m| {
        m.get("zk_coffee_barista_orphans_adopted_total") == 1.0
    });
    let first = instances.pop().expect("one");
    first.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

/// Under the unit's `ProcSubset=pid` (procfs mounted `subset=pid` in a private mount
/// namespace, as in `restart.rs`; needs root) `/proc/stat` is hidden, and with it the boot
/// time: the start time is reckoned from the clocks, and every `process_*` metric is there.
#[test]
fn under_the_units_proc_subset_every_process_metric_is_there() {
    const MOUNT_PROC: &str = "mount -t proc -o subset=pid proc /proc";
    let unshare = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c"];
    let probe = format!("{MOUNT_PROC} && ! test -e /proc/stat && test -r /proc/self/stat");
    let out = std::process::Command::new(unshare[0]).args(&unshare[1..]).arg(&probe).output().expect("run unshare");
    if !out.status.success() {
        let why = format!("cannot mount /proc subset=pid ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        assert!(std::env::var_os("ZK_COFFEE_SKIP_NETNS").is_some_and(|v| v == "1"), "{why} (needs root)");
        eprintln!("skipped: {why}");
        return;
    }
    let sandbox: Vec<String> =
        unshare.iter().map(|s| s.to_string()).chain([format!("{MOUNT_PROC} && exec \"$@\""), "sandbox".into()]).collect();
    let server = ZkServer::start();
    server.init_shop();
    let addr = free_address();
    let started = now();
    let barista = server
        .cmd(Role::Barista)
        .wrapped_in(&sandbox)
        .args(["--name", "hidden", "--metrics-listen", &addr.to_string()])
        .spawn_on_shift();
    let m = http::scrape(addr);
    assert_process_metrics(&m, started);
    barista.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

/// Prometheus itself (Debian's 2.42) takes the barista's OpenMetrics page and stores its
/// series under the scrape's `job` and `instance`, with no label of ours.
#[test]
fn a_real_prometheus_scrapes_the_barista_and_stores_its_series() {
    let server = ZkServer::start();
    server.init_shop();
    let addr = free_address();
    let barista = server
        .cmd(Role::Barista)
        .args(["--name", "b1", "--brew-time", "0", "--metrics-listen", &addr.to_string()])
        .spawn_on_shift();
    for _ in 0..2 {
        server.cmd(Role::Customer).args(["--coffee", "jacob"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    }
    let prometheus = Prometheus::start(&[addr]);
    let scraped: BTreeMap<String, String> =
        [("job", "zk-coffee"), ("instance", &addr.to_string())].iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let with = |extra: &[(&str, &str)]| {
        let mut labels = scraped.clone();
        labels.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        labels
    };
    let stored = |expr: &str, labels: &BTreeMap<String, String>, value: f64| {
        prometheus.query(expr).iter().any(|(l, v)| l == labels && *v == value)
    };
    wait_until(LOG_TIMEOUT, "Prometheus to store the barista's served count", || {
        stored("zk_coffee_barista_orders_served_total", &with(&[("__name__", "zk_coffee_barista_orders_served_total")]), 2.0)
    });
    assert!(stored("up", &with(&[("__name__", "up")]), 1.0), "{}", prometheus.targets());
    let inf = with(&[("__name__", "zk_coffee_barista_brew_seconds_bucket"), ("le", "+Inf")]);
    assert!(
        stored("zk_coffee_barista_brew_seconds_bucket", &inf, 2.0),
        "{:?}",
        prometheus.query("zk_coffee_barista_brew_seconds_bucket")
    );
    let build = with(&[("__name__", "zk_coffee_build_info"), ("version", env!("CARGO_PKG_VERSION"))]);
    assert!(stored("zk_coffee_build_info", &build, 1.0), "{:?}", prometheus.query("zk_coffee_build_info"));
    let rss = prometheus.query("process_resident_memory_bytes");
    assert!(
        matches!(rss.as_slice(), [(labels, v)] if *labels == with(&[("__name__", "process_resident_memory_bytes")]) && *v > 0.0),
        "{rss:?}"
    );
    barista.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}
