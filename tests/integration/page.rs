//! The manager's page (issue 14): its event stream read raw, then the page itself in a real
//! browser (Debian's chromium, headless, over WebDriver): baristas appearing live, one killed
//! and its queue adopted, a load run moving the counter and the charts, no requests after the
//! first load, a page opened late showing the last minute, a manager restart ridden out without
//! a reload, a clean console, and the page at a phone's width; with several shops, an overview
//! first, each shop opening its own view. The browser test writes its screenshots under
//! `target/` (`page-1280.png`, `page-phone.png`) and guards the page's two costs loosely (the
//! first load's bytes; one update replayed with 100 baristas): the benchmark measures them with
//! real baristas (`scripts/bench/page_bench.py`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use zk_coffee_tests::fault::*;
use zk_coffee_tests::webdriver::Browser;
use zk_coffee_tests::*;

/// Starts a manager serving on `addr`; waits until it has read the shops.
fn manager_on(connect: &str, addr: SocketAddr) -> Proc {
    let m = role(connect, Role::ShopManager).args(["--listen", &addr.to_string(), "--ensemble", "test"]).spawn();
    m.wait_for_stderr("following ", LOG_TIMEOUT);
    m
}

fn free_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], closed_port()))
}

/// A raw client of `/events`: what it has read so far, and reads with a deadline.
struct EventStream {
    conn: TcpStream,
    seen: String,
}

impl EventStream {
    fn open(addr: SocketAddr) -> EventStream {
        let mut conn = TcpStream::connect(addr).expect("connect to the manager");
        conn.set_read_timeout(Some(Duration::from_millis(200))).expect("a read timeout");
        write!(conn, "GET /events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n").expect("ask for the stream");
        EventStream { conn, seen: String::new() }
    }

    /// The data of the next `name` event whose data satisfies `pred` (skipping the others),
    /// within `timeout`.
    fn next(&mut self, name: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 8192];
        loop {
            while let Some(end) = self.seen.find("\n\n") {
                let message: String = self.seen.drain(..end + 2).collect();
                let event = message.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or_default().to_owned();
                let data = message.lines().find_map(|l| l.strip_prefix("data: "));
                if event == name {
                    let value: Value = serde_json::from_str(data.unwrap_or("null")).expect("each message's data is JSON");
                    if pred(&value) {
                        return value;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no {name} event within {timeout:?}; unread: {}", self.seen);
            match self.conn.read(&mut buf) {
                Ok(0) => panic!("the stream closed; unread: {}", self.seen),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading the stream: {e}"),
            }
        }
    }
}

fn seconds_since(rfc3339: &str) -> f64 {
    let then = humantime_parse(rfc3339);
    SystemTime::now().duration_since(then).map_or(0.0, |d| d.as_secs_f64())
}

/// `2026-12-01T12:00:00.123Z` (what the events carry) as a time.
fn humantime_parse(text: &str) -> SystemTime {
    let (date, time) = text.trim_end_matches('Z').split_once('T').expect("RFC 3339");
    let d: Vec<i64> = date.split('-').map(|x| x.parse().expect("a date")).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().expect("a time")).collect();
    // Days since the epoch of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
    let millis: u64 = format!("{frac:0<3}")[..3].parse().expect("milliseconds");
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64) + Duration::from_millis(millis)
}

#[test]
fn the_event_stream_says_hello_then_each_change_within_a_second() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let addr = free_address();
    let mgr = manager_on(zk, addr);
    let mut stream = EventStream::open(addr);
    let hello = stream.next("hello", LOG_TIMEOUT, |_| true);
    assert_eq!(hello["read_only"], true, "{hello}");
    assert_eq!(hello["ensemble"], "test", "{hello}");
    let shops = stream.next("shops", LOG_TIMEOUT, |_| true);
    assert!(shops["shops"]["/"]["on_shift"].as_array().is_some_and(|b| b.is_empty()), "{shops}");

    let ana = barista(zk, "ana", "0.05").spawn_on_shift();
    let event = stream.next("event", LOG_TIMEOUT, |e| e["event"] == "barista-on-shift" && e["barista"] == "ana");
    let late = seconds_since(event["time"].as_str().expect("a time"));
    assert!(late < 1.0, "the event reached the stream {late:.3} s after the manager learnt of it");
    let shops = stream.next("shops", Duration::from_secs(1), |s| {
        s["shops"]["/"]["on_shift"].as_array().is_some_and(|b| b.iter().any(|b| b["name"] == "ana"))
    });
    assert_eq!(shops["ensemble"], "test");
    // Served orders reach the charts' samples, a second at a time.
    role(zk, Role::Customer).args(["--orders", "20", "--concurrency", "4"]).spawn().wait_exit(EXIT_TIMEOUT).assert_code(exit::OK);
    let samples = stream.next("samples", LOG_TIMEOUT, |s| {
        s["/"].as_array().is_some_and(|v| v.iter().map(|x| x[1].as_u64().unwrap_or(0)).sum::<u64>() > 0)
    });
    assert!(samples["/"][0].as_array().is_some_and(|s| s.len() == 6), "[second, served, waiting, p50, p95, p99]: {samples}");
    ana.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

/// The rows of the baristas' table as `name:state` (an expression).
const BARISTAS: &str =
    "Array.from(document.querySelectorAll('#baristas tbody tr')).map(r => r.dataset.barista + ':' + r.dataset.state).join(' ')";

/// How many resources the page has asked for since it was opened (the stream included).
const REQUESTS: &str = "return performance.getEntriesByType('resource').map(e => e.name)";

/// The served-per-second chart's points: `[seconds, served]`.
const SERVED_CHART: &str =
    "const c = window.zkCoffeePage && window.zkCoffeePage.charts.served; return c ? [c.data[0], c.data[1]] : null";

/// What the first load moved over the network: the page and every asset, headers included.
const FIRST_LOAD_BYTES: &str = "const nav = performance.getEntriesByType('navigation')[0]; \
    return performance.getEntriesByType('resource').reduce((n, e) => n + e.transferSize, nav.transferSize)";

/// Applies a `shops` message of 100 baristas (copies of the first) 21 times, each with one
/// queue changed, and returns the median time to apply and lay it out, in milliseconds.
const APPLY_100: &str = "const p = window.zkCoffeePage; \
    const doc = {ensemble: p.state.ensemble, shops: JSON.parse(JSON.stringify(p.state.shops))}; \
    const shop = doc.shops['/']; const one = shop.on_shift[0]; \
    shop.on_shift = Array.from({length: 100}, (_, i) => Object.assign({}, one, {name: 'bench' + i})); \
    const times = []; \
    for (let i = 0; i < 21; i++) { \
        shop.on_shift[i] = Object.assign({}, shop.on_shift[i], {queue: {orders: i + 1, oldest_ms: 10 * i}}); \
        const data = JSON.stringify(doc); const t0 = performance.now(); \
        p.handlers.shops({data}); document.body.getBoundingClientRect(); \
        times.push(performance.now() - t0); } \
    times.sort((a, b) => a - b); return times[10]";

fn has_row(browser: &Browser, name: &str, state: Option<&str>) -> bool {
    let rows = browser.script(&format!("return {BARISTAS}"));
    let rows = rows.as_str().unwrap_or_default();
    rows.split(' ').any(|r| r.split_once(':').is_some_and(|(n, s)| n == name && state.is_none_or(|want| want == s)))
}

/// The seconds of the served chart that saw orders served.
fn served_span(chart: &Value) -> f64 {
    let (Some(xs), Some(ys)) = (chart[0].as_array(), chart[1].as_array()) else { return 0.0 };
    let busy: Vec<f64> =
        xs.iter().zip(ys).filter(|(_, y)| y.as_f64().unwrap_or(0.0) > 0.0).filter_map(|(x, _)| x.as_f64()).collect();
    match (busy.first(), busy.last()) {
        (Some(first), Some(last)) => last - first,
        _ => 0.0,
    }
}

#[test]
fn the_page_follows_the_shop_live_in_a_real_browser() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let addr = free_address();
    let url = format!("http://{addr}/");
    let mut mgr = manager_on(zk, addr);
    let ana = barista(zk, "ana", "0.05").spawn_on_shift();
    let ben = barista(zk, "ben", "0.05").spawn_on_shift();
    // A slow one, whose queue fills.
    let mut cid = barista(zk, "cid", "30").spawn_on_shift();

    let browser = Browser::start(1280, 900);
    browser.goto(&url);
    browser.script("window.openedOnce = 'first load'; return true");
    browser.wait(LOG_TIMEOUT, "the stream to be live", "return document.getElementById('connection').dataset.state === 'live'");
    browser.wait(
        LOG_TIMEOUT,
        "the three baristas",
        &format!("const r = {BARISTAS}; return r.split(' ').length === 3 ? r : null"),
    );
    for name in ["ana", "ben", "cid"] {
        assert!(has_row(&browser, name, None), "{name}: {}", browser.script(&format!("return {BARISTAS}")));
    }
    assert_eq!(browser.script("return document.getElementById('read-only').textContent"), "read-only");
    let first_load = browser.script(REQUESTS);
    let first_bytes = browser.script(FIRST_LOAD_BYTES).as_f64().expect("a byte count");
    assert!(first_bytes > 10_000.0 && first_bytes < 200_000.0, "the first load moved {first_bytes} bytes (target < 200 kB)");

    // A fourth appears without a reload, within 2 s of coming on shift.
    let dee = barista(zk, "dee", "0.05").spawn_on_shift();
    let on_shift = Instant::now();
    browser.wait(Duration::from_secs(2), "dee on the page within 2 s", &format!("return {BARISTAS}.includes('dee:')"));
    let took = on_shift.elapsed();

    // cid gets orders, then is killed: lost, and its queue adopted.
    let queued: Vec<Proc> = MENU[..3].iter().map(|coffee| place(customer(zk, Some("cid"), coffee, "120"))).collect();
    browser.wait(
        LOG_TIMEOUT,
        "cid's queue on the page",
        "const r = document.querySelector('#baristas tr[data-barista=cid]'); return r && Number(r.cells[6].textContent) >= 3",
    );
    cid.signal("KILL");
    browser.wait(
        LOG_TIMEOUT,
        "cid marked lost",
        "return !!document.querySelector('#baristas tr[data-barista=cid][data-state=lost]')",
    );
    browser.wait(
        LOG_TIMEOUT,
        "cid's queue adopted, in the feed",
        "return Array.from(document.querySelectorAll('#feed li[data-kind=orphan-adopted][data-barista=cid]')).map(l => l.textContent).join()",
    );
    for customer in queued {
        customer.wait_exit(EXIT_TIMEOUT).assert_code(exit::OK);
    }
    let _ = cid.wait_exit(EXIT_TIMEOUT);

    // A load run of a little over a minute: the served counter and the chart move.
    let served_before: u64 =
        browser.script("return Number(document.getElementById('served-total').textContent)").as_u64().unwrap_or(0);
    let load = role(zk, Role::Customer).args(["--duration", "75", "--concurrency", "4", "--patience", "60"]).spawn();
    browser.wait(
        LOG_TIMEOUT,
        "the served counter to move",
        &format!("return Number(document.getElementById('served-total').textContent) > {served_before} + 20"),
    );
    browser.wait(
        LOG_TIMEOUT,
        "orders served in the throughput chart",
        &format!("const c = (function () {{ {SERVED_CHART} }})(); return c && c[1].some(v => v > 0)"),
    );
    let waits = browser.wait(LOG_TIMEOUT, "waits in the wait chart", "const c = window.zkCoffeePage.charts.waits; return c.data[3].some(v => v > 0) ? c.data[3].filter(v => v !== null) : null");
    assert!(
        waits.as_array().is_some_and(|w| w.iter().all(|v| v.as_f64().is_some_and(|s| s > 0.0 && s < 60.0))),
        "p99 waits in seconds: {waits}"
    );
    let chart = browser.wait(Duration::from_secs(100), "a minute of load in the chart", &format!("const c = (function () {{ {SERVED_CHART} }})(); const busy = c[0].filter((x, i) => c[1][i] > 0); return busy.length && busy[busy.length - 1] - busy[0] >= 60 ? c : null"));
    assert!(served_span(&chart) >= 60.0);

    // No request since the first load: one stream carried all of that.
    let now = browser.script(REQUESTS);
    assert_eq!(now, first_load, "the page asked for more after its first load");
    assert_eq!(browser.script("return window.openedOnce"), "first load", "no reload");
    let console = browser.console();
    let errors: Vec<&Value> = console.iter().filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING").collect();
    assert!(errors.is_empty(), "the console: {errors:?}");
    let shots = workspace_root().join("target");
    browser.screenshot(&shots.join("page-1280.png"));

    // A page opened after that minute shows it.
    let late = Browser::start(1280, 900);
    late.goto(&url);
    let chart = late.wait(
        Duration::from_secs(5),
        "the last minute in a page opened late",
        &format!("const c = (function () {{ {SERVED_CHART} }})(); return c && c[0].length >= 60 ? c : null"),
    );
    assert!(served_span(&chart) >= 60.0, "{chart}");
    load.wait_exit(Duration::from_secs(120)).assert_code(exit::OK);

    // At a phone's width: nothing wider than the screen but the tables' own scrolling.
    late.resize(390, 844);
    late.wait(
        Duration::from_secs(5),
        "the page to fit a phone",
        "return document.documentElement.scrollWidth <= window.innerWidth",
    );
    late.screenshot(&shots.join("page-phone.png"));
    let tables = late.script("return document.querySelectorAll('table thead th[scope=col]').length");
    assert!(tables.as_u64().is_some_and(|n| n > 10), "tables with column headers: {tables}");
    drop(late);

    // The manager restarts: the page says so, then recovers by itself.
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    browser.wait(LOG_TIMEOUT, "the page to say it is reconnecting", "return document.getElementById('connection').dataset.state === 'reconnecting' && document.getElementById('connection').textContent.includes('reconnecting')");
    mgr = manager_on(zk, addr);
    browser.wait(LOG_TIMEOUT, "the page live again", "return document.getElementById('connection').dataset.state === 'live'");
    browser.wait(
        LOG_TIMEOUT,
        "the baristas again",
        &format!("const r = {BARISTAS}; return r.includes('ana:') && r.includes('ben:') && r.includes('dee:') ? r : null"),
    );
    assert_eq!(browser.script("return window.openedOnce"), "first load", "recovered without a reload");
    // The only console lines allowed: the browser's own note of each refused reconnection
    // while the manager was down (a page cannot silence them).
    let console = browser.console();
    let errors: Vec<&Value> = console
        .iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .filter(|e| !e["message"].as_str().is_some_and(|m| m.contains("/events") && m.contains("ERR_CONNECTION_REFUSED")))
        .collect();
    assert!(errors.is_empty(), "the console: {errors:?}");

    // A loose guard of one update's cost with 100 baristas on shift (the median of 21, through
    // the page's own handler of the stream's `shops` messages); the benchmark measures it with
    // 100 real baristas.
    let apply_ms = browser.script(APPLY_100).as_f64().expect("a time");
    assert!(apply_ms < 250.0, "one update with 100 baristas took {apply_ms} ms (target < 50 ms)");

    assert!(took < Duration::from_secs(2), "{took:?}");
    for b in [ana, ben, dee] {
        b.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    }
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn with_several_shops_an_overview_comes_first_and_each_shop_opens_its_own_view() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let addr = free_address();
    let mgr = manager_on(zk, addr);
    let root = barista(zk, "ana", "0.05").spawn_on_shift();
    let browser = Browser::start(1280, 900);
    browser.goto(&format!("http://{addr}/"));
    browser.script("window.openedOnce = 'first load'; return true");
    browser.wait(
        LOG_TIMEOUT,
        "the one shop's own view",
        "return !document.getElementById('shop').hidden && document.getElementById('overview').hidden",
    );

    // A second shop, created while the page is open, with a barista of its own.
    server.cmd(Role::ShopInit).args(["--shop", "north"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let north = server.cmd(Role::Barista).args(["--name", "nils", "--brew-time", "0.05", "--shop", "north"]).spawn_on_shift();
    browser.wait(
        LOG_TIMEOUT,
        "the overview of both shops",
        "return !document.getElementById('overview').hidden && !!document.querySelector('#overview-table tr[data-shop=north]')",
    );
    browser.wait(
        LOG_TIMEOUT,
        "both baristas in the totals",
        "return document.getElementById('total-on-shift').textContent === '2'",
    );
    let rows = browser.script("return Array.from(document.querySelectorAll('#overview-table tbody tr')).map(r => r.dataset.shop + ':' + r.cells[1].textContent).join(' ')");
    assert_eq!(rows, "/:1 north:1", "shop:on shift");

    // Each opens its own view (a link within the page: no reload, the stream goes on).
    browser.script("document.querySelector('#overview-table tr[data-shop=north] a').click(); return true");
    browser.wait(
        LOG_TIMEOUT,
        "north's own view",
        &format!("return !document.getElementById('shop').hidden && {BARISTAS} === 'nils:idle'"),
    );
    assert_eq!(browser.script("return document.getElementById('shop-name').textContent"), "Shop north");
    assert_eq!(browser.script("return document.getElementById('crumbs').hidden"), false, "a way back to the overview");
    assert_eq!(browser.script("return window.openedOnce"), "first load", "no reload");
    let console = browser.console();
    let errors: Vec<&Value> = console.iter().filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING").collect();
    assert!(errors.is_empty(), "the console: {errors:?}");
    drop(browser);
    for b in [root, north] {
        b.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    }
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}
