//! The shop run like production, on one real server: several shops side by side (`--shop`), a
//! menu changed under running baristas (`shop-init --menu`), sales counted exactly once through
//! a load run with a barista restart, the load mode's summary checked against what happened, and
//! `scripts/launch.sh` starting, showing and stopping baristas on this host. The same across
//! network namespaces (several "hosts") is in `multihost`.

pub mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use support::*;
use zk_coffee_tests::*;

/// A load run of `orders` orders, `concurrency` at a time, patient enough never to give up.
fn load(server: &ZkServer, orders: u64, concurrency: u16) -> TestCommand {
    server.cmd(Role::Customer).args([
        "--orders",
        &orders.to_string(),
        "--concurrency",
        &concurrency.to_string(),
        "--patience",
        "60",
    ])
}

/// Waits until no bucket holds an order.
fn wait_for_empty_buckets(server: &ZkServer, root: &str) {
    wait_until(LOG_TIMEOUT, "every bucket to be empty", || {
        server
            .children(&format!("{root}/orders"))
            .unwrap_or_default()
            .iter()
            .all(|b| server.children(&format!("{root}/orders/{b}")).unwrap_or_default().is_empty())
    });
}

// ---------------------------------------------------------------------------------------------
// Several shops on one server

#[test]
fn two_shops_on_one_server_see_neither_each_others_baristas_nor_orders() {
    let server = ZkServer::start();
    for (shop, menu) in [("a", "tesora,jacob"), ("b", "tesora,latte")] {
        server.cmd(Role::ShopInit).args(["--shop", shop, "--menu", menu]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    }
    let mut ba = server.cmd(Role::Barista).args(["--shop", "a", "--name", "ba", "--brew-time", "0.05"]).spawn_on_shift();
    let mut bb = server.cmd(Role::Barista).args(["--shop", "b", "--name", "bb", "--brew-time", "0.05"]).spawn_on_shift();

    // A customer of shop a asking for shop b's barista finds nobody.
    let out = server.cmd(Role::Customer).args(["--shop", "a", "--barista", "bb", "--patience", "2"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::NO_BARISTA).assert_failure_line();
    out.error_line(&["bb"]);
    // Nor can it order shop b's coffee.
    let out = server.cmd(Role::Customer).args(["--shop", "a", "--coffee", "latte"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::USAGE).assert_failure_line();
    out.error_line(&["latte", "menu"]);

    // Each shop's customers are served by its own barista; ZK_SHOP selects the shop too.
    let served = |cmd: TestCommand| {
        let out = cmd.run(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        Receipt::parse(out.single_stdout_line())
    };
    let r = served(server.cmd(Role::Customer).args(["--shop", "a", "--coffee", "jacob"]));
    assert_eq!(r.barista, "ba");
    let r = served(server.cmd(Role::Customer).args(["--shop", "b", "--coffee", "latte"]));
    assert_eq!(r.barista, "bb");
    let r = served(server.cmd(Role::Customer).env("ZK_SHOP", "b").args(["--coffee", "tesora"]));
    assert_eq!(r.barista, "bb");

    // The same barista name in both shops: two different baristas, both on shift at once.
    let twin_a = server.cmd(Role::Barista).args(["--shop", "a", "--name", "twin", "--brew-time", "0.05"]).spawn_on_shift();
    let twin_b = server.cmd(Role::Barista).args(["--shop", "b", "--name", "twin", "--brew-time", "0.05"]).spawn_on_shift();

    let a = Status::read(server.connect_string(), Some("a"));
    let b = Status::read(server.connect_string(), Some("b"));
    assert_eq!(a.menu(), ["tesora", "jacob"]);
    assert_eq!(b.menu(), ["tesora", "latte"]);
    assert_eq!(a.on_shift(), ["ba", "twin"]);
    assert_eq!(b.on_shift(), ["bb", "twin"]);
    assert_eq!(a.facts("twin").pid, twin_a.pid());
    assert_eq!(b.facts("twin").pid, twin_b.pid());
    assert_eq!((a.sales_total(), b.sales_total()), (1, 2));
    assert_eq!(a.sales_per_coffee(), BTreeMap::from([("jacob".to_owned(), 1)]));
    assert_eq!(b.sales_per_coffee(), BTreeMap::from([("latte".to_owned(), 1), ("tesora".to_owned(), 1)]));
    assert_eq!(a.sales_per_barista().get("bb"), None, "shop a's ledgers: {:?}", a.sales_per_barista());
    assert_eq!(b.sales_per_barista().get("ba"), None, "shop b's ledgers: {:?}", b.sales_per_barista());

    // Nothing outside /shops; the root is no shop at all.
    let outside: Vec<String> = server.tree("/").into_iter().filter(|p| !p.starts_with("/shops")).collect();
    assert!(outside.is_empty(), "nodes outside /shops: {outside:?}");
    let mut root_status = Command::new(shop_status_bin());
    clean_env(&mut root_status).args(["--zk", server.connect_string()]);
    let out = root_status.output().expect("run shop-status");
    assert_eq!(out.status.code(), Some(exit::NOT_INITIALISED), "{}", show(&out));

    for b in [&mut ba, &mut bb] {
        b.signal("TERM");
    }
    ba.wait_exit(EXIT_TIMEOUT).assert_code(exit::OK);
    bb.wait_exit(EXIT_TIMEOUT).assert_code(exit::OK);
    for twin in [twin_a, twin_b] {
        let out = twin.stop(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        assert_eq!(out.count_stderr("held by another session"), 0, "the twins met\n{out}");
    }
}

// ---------------------------------------------------------------------------------------------
// The menu

#[test]
fn a_menu_change_reaches_running_baristas_and_arriving_customers() {
    let server = ZkServer::start();
    server.init_shop();
    let barista = server.cmd(Role::Barista).args(["--name", "m1", "--brew-time", "0.1"]).spawn_on_shift();
    let served = |coffee: Option<&str>| {
        let mut cmd = server.cmd(Role::Customer).args(["--patience", "30"]);
        if let Some(coffee) = coffee {
            cmd = cmd.args(["--coffee", coffee]);
        }
        let out = cmd.run(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        Receipt::parse(out.single_stdout_line())
    };
    served(Some("jacob"));

    // A new menu: latte (1.5 s to brew) comes, jacob, swisswater and sogood go.
    let out = server.cmd(Role::ShopInit).args(["--menu", "tesora,latte=1.5"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert!(out.stdout.iter().any(|l| l == "updated /zk-coffee/config"), "{out}");
    barista.wait_for_stderr("shop menu: tesora, latte", LOG_TIMEOUT);

    // The new coffee is served, at its own brew time (the barista's own is 0.1 s).
    let latte = served(Some("latte"));
    assert_eq!(latte.barista, "m1");
    assert!(latte.wait_ms >= 1500, "a latte took {} ms, less than its 1.5 s brew time", latte.wait_ms);
    let events = barista.wait_log("the latte served", LOG_TIMEOUT, |log| {
        let events: Vec<BaristaEvent> = barista_events(log).into_iter().filter(|e| e.order == latte.order_name()).collect();
        events.iter().any(|e| e.kind == Brew::Served).then_some(events)
    });
    assert_eq!(events.len(), 2, "making and served lines for {}: {events:?}", latte.order);
    assert!(events.iter().all(|e| e.coffee == "latte"));

    // A removed coffee is refused before anything is ordered, by one customer and by a load run.
    let out = server.cmd(Role::Customer).args(["--coffee", "jacob"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::USAGE).assert_failure_line();
    out.error_line(&["jacob", "not on this shop's menu", "tesora, latte"]);
    let out = server.cmd(Role::Customer).args(["--coffee", "sogood", "--orders", "3"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::USAGE);
    out.error_line(&["sogood", "menu"]);

    // Customers who let the shop choose pick from the new menu.
    for _ in 0..4 {
        let r = served(None);
        assert!(["tesora", "latte"].contains(&r.coffee.as_str()), "ordered {r:?} from the new menu");
    }

    let status = Status::read(server.connect_string(), None);
    assert_eq!(status.menu(), ["tesora", "latte"]);
    let sold = status.sales_per_coffee();
    assert_eq!(sold.get("jacob"), Some(&1), "only the jacob ordered before the change: {sold:?}");
    assert!(!sold.contains_key("sogood") && !sold.contains_key("swisswater"), "{sold:?}");
    assert_eq!(status.sales_total(), 6);
    assert_eq!(status.facts("m1").brew_ms, 100, "the barista's own brew time is unchanged");
}

// ---------------------------------------------------------------------------------------------
// Sales and the load mode

#[test]
fn sales_equal_served_orders_after_a_load_run_with_a_barista_restarted_midway() {
    let server = ZkServer::start();
    server.init_shop();
    let barista = |name: &str| server.cmd(Role::Barista).args(["--name", name, "--brew-time", "0.05"]);
    let b1 = barista("b1").spawn_on_shift();
    let mut b2 = barista("b2").spawn_on_shift();
    let b3 = barista("b3").spawn_on_shift();
    const ORDERS: u64 = 300;
    let run = load(&server, ORDERS, 6).spawn();

    // Midway: b2 leaves on SIGTERM and comes back under its name.
    b2.wait_served(5, LOG_TIMEOUT);
    b2.signal("TERM");
    let b2_first = b2.wait_exit(EXIT_TIMEOUT);
    b2_first.assert_code(exit::OK);
    let b2_again = barista("b2").spawn_on_shift();
    let mut run = run;
    assert!(!run.has_exited(), "the load ended before b2 was back: the restart was not midway");

    let out = run.wait_exit(Duration::from_secs(120));
    out.assert_code(exit::OK);
    let summary = Summary::from_stdout(&out.stdout);
    assert_eq!((summary.count("visits"), summary.count("served")), (ORDERS, ORDERS), "{}", summary.line);
    assert!(summary.other_outcomes().values().all(|n| *n == 0), "{}", summary.line);
    wait_for_empty_buckets(&server, "");

    let status = Status::read(server.connect_string(), None);
    assert_eq!(status.on_shift(), ["b1", "b2", "b3"]);
    assert_eq!((status.orphans(), status.queued()), (vec![], 0));

    // Every served order is in exactly one ledger: the one of the barista that served it (the
    // restarted b2 carries on with its ledger, and adopters count what they adopted). The logs
    // are complete once the baristas have left.
    let [b1, b2_again, b3] = [b1, b2_again, b3].map(|b| b.stop(EXIT_TIMEOUT));
    let logs = [("b1", &b1.stderr), ("b2", &b2_first.stderr), ("b2", &b2_again.stderr), ("b3", &b3.stderr)];
    let from_logs = served_lines(logs.iter().map(|(n, l)| (*n, l.as_slice())));
    assert_eq!(status.sales_total(), ORDERS, "sales: {:?}", status.sales_per_barista());
    assert_eq!(status.sales_per_barista(), from_logs, "ledgers vs the baristas' `served` lines");
    assert!(!served_orders(&b2_again.stderr).is_empty(), "the restarted b2 served nothing");
    assert_eq!(status.sales_per_coffee().values().sum::<u64>(), ORDERS);
    // The summary counts orders by the bucket they were placed in.
    let per_bucket = summary.per_barista();
    assert_eq!(per_bucket.values().sum::<u64>(), ORDERS, "{}", summary.line);
    assert!(per_bucket.keys().all(|b| ["b1", "b2", "b3"].contains(&b.as_str())), "{}", summary.line);
}

#[test]
fn the_load_summary_matches_what_happened() {
    let server = ZkServer::start();
    server.init_shop();
    let b1 = server.cmd(Role::Barista).args(["--name", "b1", "--brew-time", "0.02"]).spawn_on_shift();
    let b2 = server.cmd(Role::Barista).args(["--name", "b2", "--brew-time", "0.02"]).spawn_on_shift();
    // Something sold before, so the ledgers' delta is what is checked: the load's orders are
    // the ones logged after the marks.
    let first = server.cmd(Role::Customer).args(["--coffee", "jacob"]).run(EXIT_TIMEOUT);
    first.assert_code(exit::OK);
    let first = Receipt::parse(first.single_stdout_line());
    [&b1, &b2][usize::from(first.barista == "b2")].wait_served(1, LOG_TIMEOUT);
    let before = Status::read(server.connect_string(), None);
    assert_eq!(before.sales_total(), 1);
    let marks = (b1.mark(), b2.mark());

    const ORDERS: u64 = 80;
    let out = load(&server, ORDERS, 5).run(Duration::from_secs(120));
    out.assert_code(exit::OK);
    let summary = Summary::from_stdout(&out.stdout);
    assert_eq!((summary.count("visits"), summary.count("served")), (ORDERS, ORDERS), "{}", summary.line);
    assert!(summary.other_outcomes().values().all(|n| *n == 0), "{}", summary.line);
    // Nothing left waiting anywhere.
    wait_for_empty_buckets(&server, "");
    let after = Status::read(server.connect_string(), None);
    assert_eq!((after.orphans(), after.queued()), (vec![], 0));

    // served = sum of per-barista counts = the baristas' `served` lines = the ledgers' delta.
    let per_barista = summary.per_barista();
    assert_eq!(per_barista.values().sum::<u64>(), ORDERS, "{}", summary.line);
    let (b1, b2) = (b1.stop(EXIT_TIMEOUT), b2.stop(EXIT_TIMEOUT));
    let logged_delta: BTreeMap<String, u64> = served_lines([("b1", b1.stderr_since(marks.0)), ("b2", b2.stderr_since(marks.1))])
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(per_barista, logged_delta, "summary per barista vs the baristas' logs");
    let ledger_delta: BTreeMap<String, u64> = after
        .sales_per_barista()
        .iter()
        .map(|(b, n)| (b.clone(), n - before.sales_per_barista().get(b).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(per_barista, ledger_delta, "summary per barista vs the sales ledgers' delta");
    assert_eq!(after.sales_total() - before.sales_total(), ORDERS);

    // The figures are consistent with each other and with the report for people.
    let (p50, p95, p99, max) =
        (summary.figure("p50_ms"), summary.figure("p95_ms"), summary.figure("p99_ms"), summary.figure("max_ms"));
    assert!(0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= max, "{}", summary.line);
    let elapsed = summary.figure("elapsed_s");
    let throughput = summary.figure("throughput");
    assert!((throughput - ORDERS as f64 / elapsed).abs() < 0.1 + throughput * 0.01, "{}", summary.line);
    assert!(
        out.stderr.iter().any(|l| l.starts_with(&format!("{ORDERS} visits in ")) && l.contains(&format!(": {ORDERS} served,"))),
        "{out}"
    );
    let people: Vec<String> = per_barista.iter().map(|(b, n)| format!("{b} {n}")).collect();
    assert!(out.stderr.iter().any(|l| *l == format!("served per barista: {}", people.join(", "))), "{out}");
}

#[test]
fn a_load_run_for_a_duration_reports_progress_and_adds_up() {
    let server = ZkServer::start();
    server.init_shop();
    let b = server.cmd(Role::Barista).args(["--name", "solo", "--brew-time", "0.05"]).spawn_on_shift();
    let out = server.cmd(Role::Customer).args(["--duration", "6", "--concurrency", "2"]).run(Duration::from_secs(60));
    out.assert_code(exit::OK);
    let progress: Vec<&String> = out.stderr.iter().filter(|l| l.contains(" INFO ") && l.contains("progress: ")).collect();
    assert!(!progress.is_empty(), "no progress line in a 6 s run\n{out}");
    let summary = Summary::from_stdout(&out.stdout);
    let served = summary.count("served");
    assert!(served > 0 && served == summary.count("visits"), "{}", summary.line);
    assert!(summary.figure("elapsed_s") >= 6.0, "{}", summary.line);
    assert_eq!(summary.per_barista(), BTreeMap::from([("solo".to_owned(), served)]));
    wait_for_empty_buckets(&server, "");
    let b = b.stop(EXIT_TIMEOUT);
    assert_eq!(served_orders(&b.stderr).len() as u64, served, "{b}");
    assert_eq!(Status::read(server.connect_string(), None).sales_total(), served);
}

// ---------------------------------------------------------------------------------------------
// scripts/launch.sh on this host

/// Runs `scripts/launch.sh ARGS...` to completion.
fn launch(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("bash");
    // A test that forgot --state fails instead of writing the real default state file.
    clean_env(&mut cmd)
        .arg(launch_script())
        .args(args)
        .env("RUST_LOG", "info")
        .env("ZK_COFFEE_LAUNCH_STATE", "/nonexistent/launch.state");
    cmd.output().expect("run scripts/launch.sh")
}

/// Kills (SIGKILL) whatever baristas a state file still records, so a failed test leaves none
/// behind: launch.sh starts them detached, not as the test's children.
struct StateGuard(std::path::PathBuf);

impl Drop for StateGuard {
    fn drop(&mut self) {
        let Ok(state) = std::fs::read_to_string(&self.0) else { return };
        for line in state.lines().filter(|l| l.starts_with("barista\t")) {
            let fields: Vec<&str> = line.split('\t').collect();
            if let [_, "local", pid, name, ..] = fields.as_slice() {
                if cmdline(pid.parse().unwrap_or(0)).windows(2).any(|w| w[0] == "--name" && w[1] == *name) {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
        }
    }
}

/// This host's short name, as launch.sh puts it in names.
fn short_hostname() -> String {
    let out = Command::new("hostname").output().expect("hostname");
    let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    name.split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' })
        .collect()
}

#[test]
fn launch_sh_starts_shows_and_stops_baristas_on_this_host() {
    let server = ZkServer::start();
    server.cmd(Role::ShopInit).args(["--shop", "s1"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let dir = Dir::new("launch");
    let state = dir.join("launch.state");
    let _guard = StateGuard(state.clone());
    let host = short_hostname();
    // {host}_1 is already on shift (as a systemd unit would name it): launch.sh must skip it.
    let mut squatter =
        server.cmd(Role::Barista).args(["--shop", "s1", "--name", &format!("{host}_1"), "--brew-time", "0.05"]).spawn_on_shift();

    let barista = Role::Barista.path();
    let shop_status = shop_status_bin();
    let (state_s, logs) = (state.to_string_lossy().into_owned(), dir.join("logs").to_string_lossy().into_owned());
    let common = ["--state", &state_s, "--shop-status", shop_status.to_str().expect("utf-8 path")];
    let mut args = vec!["--hosts", "local,local", "--per-host", "2", "--zk", server.connect_string(), "--shop", "s1"];
    args.extend(common);
    args.extend(["--barista", barista.to_str().expect("utf-8 path"), "--log-dir", &logs, "--", "--brew-time", "0.05"]);
    let out = launch(&args);
    assert!(out.status.success(), "launch.sh start failed: {}", show(&out));

    // Four baristas, named {host}_2..5, recorded with their pids.
    let expected: Vec<String> = (2..=5).map(|i| format!("{host}_{i}")).collect();
    let text = std::fs::read_to_string(&state).expect("the state file");
    let recorded: Vec<(u32, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("barista\t"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!((f[0], f.len()), ("local", 4), "state line {l:?}");
            (f[1].parse().expect("a pid"), f[2].to_owned())
        })
        .collect();
    assert_eq!(recorded.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>(), expected, "{text}");
    let status = Status::read(server.connect_string(), Some("s1"));
    let mut all = expected.clone();
    all.insert(0, format!("{host}_1"));
    assert_eq!(status.on_shift(), all);
    for (pid, name) in &recorded {
        let args = cmdline(*pid);
        assert!(args.windows(2).any(|w| w == ["--shop", "s1"]), "{name}: {args:?}");
        assert_eq!(status.facts(name).pid, *pid);
        assert_eq!(status.facts(name).brew_ms, 50, "the extra args reached {name}");
        assert!(std::path::Path::new(&logs).join(format!("{name}.log")).exists());
    }

    // They serve.
    let out = load(&server, 40, 4).arg("--shop").arg("s1").run(Duration::from_secs(60));
    out.assert_code(exit::OK);

    // status: every one running and on shift, then the shop as shop-status shows it.
    let mut status_args = vec!["status"];
    status_args.extend(common);
    let out = launch(&status_args);
    assert!(out.status.success(), "launch.sh status: {}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (pid, name) in &recorded {
        let row = stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name.as_str()))
            .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[..5], ["local", name.as_str(), &pid.to_string(), "running", "yes"], "{row}");
    }
    assert!(stdout.contains("on shift: 5"), "{stdout}");

    // Starting again on the same state is refused.
    let out = launch(&args);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already records baristas"), "{}", show(&out));

    // stop: all four leave gracefully, the squatter stays.
    let mut stop_args = vec!["stop"];
    stop_args.extend(common);
    let out = launch(&stop_args);
    assert!(out.status.success(), "launch.sh stop: {}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (pid, name) in &recorded {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(name.as_str()) && l.contains("stopped after") && l.contains("removed my empty bucket")),
            "{name}:\n{stdout}"
        );
        assert!(cmdline(*pid).is_empty(), "{name} (pid {pid}) still runs");
    }
    assert!(!state.exists(), "the state file is removed once every barista is stopped");
    let status = Status::read(server.connect_string(), Some("s1"));
    assert_eq!(status.on_shift(), [format!("{host}_1")]);
    assert_eq!(status.sales_total(), 40);
    assert_eq!(server.children("/shops/s1/orders"), Some(vec![format!("{host}_1")]), "the stopped baristas' buckets are gone");
    let out = launch(&status_args);
    assert_eq!(out.status.code(), Some(1), "status with nothing launched: {}", show(&out));

    squatter.signal("TERM");
    squatter.wait_exit(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn launch_sh_reports_baristas_that_never_come_on_shift() {
    let server = ZkServer::start();
    server.init_shop();
    let dir = Dir::new("launch-fail");
    let state = dir.join("state").to_string_lossy().into_owned();
    let _guard = StateGuard(state.clone().into());
    let barista = Role::Barista.path();
    let shop_status = shop_status_bin();
    let common = ["--state", state.as_str(), "--shop-status", shop_status.to_str().expect("utf-8 path")];
    let mut args = vec!["--hosts", "local", "--per-host", "2", "--zk", server.connect_string(), "--wait", "60"];
    args.extend(common);
    let logs = dir.join("logs").to_string_lossy().into_owned();
    // A flag the barista refuses: both exit 2 at once, and launch.sh says so without waiting
    // out its 60 s.
    args.extend(["--barista", barista.to_str().expect("utf-8 path"), "--log-dir", &logs, "--", "--brew-time", "soon"]);
    let started = std::time::Instant::now();
    let out = launch(&args);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?} to notice", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exited before coming on shift"), "{stderr}");
    assert!(stderr.contains("barista: error: ") && stderr.contains("soon"), "the baristas' own error lines are shown: {stderr}");
    // What started is still recorded; stop finds nothing running and clears it.
    let mut stop = vec!["stop"];
    stop.extend(common);
    let out = launch(&stop);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).matches("was not running").count(), 2, "{}", show(&out));
    assert!(!dir.join("state").exists());
}

#[test]
fn launch_sh_refuses_bad_arguments_and_is_shellcheck_clean() {
    let out = launch(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["--hosts", "--per-host", "--zk", "--shop", "status", "stop", "BatchMode", "{host}_{i}"] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
    let dir = Dir::new("launch-args");
    let state = dir.join("state").to_string_lossy().into_owned();
    for (args, needle) in [
        (vec!["--hosts", "local", "--per-host", "0", "--zk", "127.0.0.1:1"], "--per-host"),
        (vec!["--per-host", "1", "--zk", "127.0.0.1:1"], "--hosts"),
        (vec!["--hosts", "local", "--per-host", "1", "--zk", "127.0.0.1:1", "--", "--name", "x"], "--name"),
        (vec!["--hosts", "local;rm", "--per-host", "1", "--zk", "127.0.0.1:1"], "bad host"),
        (vec!["--bogus"], "unknown argument"),
    ] {
        let mut all = args.clone();
        all.extend(["--state", &state]);
        let out = launch(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("launch.sh: error: ") && stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!dir.join("state").exists(), "{args:?} wrote a state file");
    }
    let out = launch(&["stop", "--state", &state]);
    assert!(out.status.success(), "stop with nothing launched: {}", show(&out));

    match Command::new("shellcheck").arg("-x").arg(launch_script()).current_dir(workspace_root()).output() {
        Ok(out) => assert!(out.status.success(), "shellcheck scripts/launch.sh:\n{}", show(&out)),
        Err(e) => eprintln!("note: shellcheck is not installed ({e}); scripts/launch.sh not linted"),
    }
}
