//! The manager's page and API guarded (issue 16, part 2): an address that is not loopback
//! refused without a guard (exit 2, one line, before anything else), `--http-insecure` serving
//! it anyway, a credential file others may read refused naming its mode; every route but
//! `/healthz` answering 401 without the credential or with a wrong one, the same few bytes
//! everywhere, and 200 with it; `/metrics` read by the official parser with the credential or
//! the scraper's own, and scraped by a real Prometheus with the README's `authorization`
//! setting; the barista's `--metrics-listen` under the same rule with basic auth; the page in a
//! real browser with basic auth, updating live; and HTTPS from the README's nginx in front,
//! checked with the test's own CA.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zk_coffee_tests::fault::*;
use zk_coffee_tests::http::{self, basic};
use zk_coffee_tests::prometheus::Prometheus;
use zk_coffee_tests::webdriver::Browser;
use zk_coffee_tests::*;

const TOKEN: &str = "0f3c9a7e5b1d42c8a6e0f9b3d7c1a5e2";
const SCRAPER: &str = "scraper-token-77";

/// Writes `text` to `name` in `dir` with `mode`; its path.
fn secret(dir: &Dir, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the secret");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

/// An address on every interface nothing listens on (it was free a moment ago), and the
/// loopback address of the same port to ask it on.
fn public_address() -> (String, SocketAddr) {
    let port = closed_port();
    (format!("0.0.0.0:{port}"), SocketAddr::from(([127, 0, 0, 1], port)))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Reads `path` of `addr` raw (for the event stream, which never ends) until `needle`.
fn raw_until(addr: SocketAddr, path: &str, authorization: &str, needle: &str) -> String {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_millis(200))).expect("a read timeout");
    write!(conn, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {authorization}\r\n\r\n").expect("ask");
    let (deadline, mut seen, mut buf) = (Instant::now() + LOG_TIMEOUT, String::new(), [0u8; 4096]);
    while !seen.contains(needle) {
        assert!(Instant::now() < deadline, "no {needle:?} from {path}: {seen}");
        match conn.read(&mut buf) {
            Ok(0) => panic!("{path} closed before {needle:?}: {seen}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("reading {path}: {e}"),
        }
    }
    seen
}

#[test]
fn a_public_address_is_refused_unguarded_and_served_when_told() {
    // Nothing listens at this ZooKeeper: the refusal must come before any connection attempt.
    let nowhere = format!("127.0.0.1:{}", closed_port());
    let (public, _) = public_address();
    let dir = Dir::new("guard-refused");
    let readable = secret(&dir, "token", TOKEN, 0o644);
    let port = public.rsplit_once(':').map(|(_, p)| p.to_owned()).unwrap_or_default();
    for (role, flag, address) in [
        (Role::ShopManager, "--listen", public.clone()),
        (Role::ShopManager, "--listen", format!(":{port}")),
        (Role::Barista, "--metrics-listen", public.clone()),
    ] {
        let out = TestCommand::new(role).zk(&nowhere).args([flag, &address]).run(EXIT_TIMEOUT);
        out.assert_code(exit::USAGE).assert_within(Duration::from_secs(5));
        out.error_line(&[&format!("{flag} {address} is not a loopback address"), "--http-auth-file", "--http-insecure"]);
        assert_eq!(out.stderr.len(), 1, "one line:\n{out}");

        let out = TestCommand::new(role).zk(&nowhere).args([flag, &address, "--http-auth-file"]).arg(&readable).run(EXIT_TIMEOUT);
        out.assert_code(exit::USAGE).assert_within(Duration::from_secs(5));
        out.error_line(&[&format!("{} has mode 0644", readable.display()), "chmod 600"]);

        let out = TestCommand::new(role)
            .zk(&nowhere)
            .args([flag, &address, "--http-insecure", "--http-auth-file"])
            .arg(&readable)
            .run(EXIT_TIMEOUT);
        out.assert_code(exit::USAGE);
        out.error_line(&["--http-insecure", "cannot be used with"]);
    }
    // The same from the environment.
    let out = TestCommand::new(Role::ShopManager).zk(&nowhere).env("MANAGER_LISTEN", &public).run(EXIT_TIMEOUT);
    out.assert_code(exit::USAGE);
    out.error_line(&["is not a loopback address"]);

    // Told it may be open, it serves.
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let (public, addr) = public_address();
    let mgr = role(server.connect_string(), Role::ShopManager).args(["--listen", &public]).env("HTTP_INSECURE", "true").spawn();
    mgr.wait_for_stderr("following ", LOG_TIMEOUT);
    let api = http::get(addr, "/api/shops");
    assert_eq!(api.status, 200, "{api:?}");
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn every_route_but_healthz_asks_for_the_credential_and_tells_nothing_without_it() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    server.cmd(Role::ShopInit).args(["--shop", "north"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let zk = server.connect_string();
    let ana = barista(zk, "ana", "30").spawn_on_shift();
    let waiting = customer(zk, Some("ana"), "jacob", "60").spawn();
    let dir = Dir::new("guard-routes");
    let token = secret(&dir, "token", &format!("# the page's\n{TOKEN}\n"), 0o600);
    let scraper = secret(&dir, "scraper", SCRAPER, 0o400);
    let (public, addr) = public_address();
    let mgr = role(zk, Role::ShopManager)
        .args(["--listen", &public, "--ensemble", "test", "--http-auth-file"])
        .arg(&token)
        .arg("--metrics-auth-file")
        .arg(&scraper)
        .spawn();
    mgr.wait_for_stderr("(asking for credentials)", LOG_TIMEOUT);
    mgr.wait_for_stderr("following ", LOG_TIMEOUT);
    wait_until(LOG_TIMEOUT, "the order in the manager's picture", || {
        http::request_as("GET", addr, "/api/shops", Some(&bearer(TOKEN))).body.contains("\"orders\":1")
    });

    let routes =
        ["/", "/index.html", "/page.js", "/events", "/api/shops", "/api/shops/%2F", "/api/shops/north", "/metrics", "/nope"];
    let wrong = [None, Some(bearer("guess")), Some(bearer(&TOKEN[..TOKEN.len() - 1])), Some(basic(&format!("x:{SCRAPER}")))];
    let mut refusals = Vec::new();
    for path in routes {
        for authorization in &wrong {
            // The scraper's token opens /metrics, and only that.
            if path == "/metrics" && authorization.as_deref() == Some(basic(&format!("x:{SCRAPER}")).as_str()) {
                continue;
            }
            let answer = http::request_as("GET", addr, path, authorization.as_deref());
            assert_eq!(answer.status, 401, "{path} with {authorization:?}: {answer:?}");
            assert!(answer.www_authenticate.as_deref().is_some_and(|c| c.starts_with("Basic realm=")), "{path}: {answer:?}");
            refusals.push(answer.body);
        }
    }
    let first = refusals[0].clone();
    assert!(refusals.iter().all(|r| *r == first), "every refusal says the same: {refusals:?}");
    for secret in ["north", "ana", "jacob", "shops", "orders", "1"] {
        assert!(!first.contains(secret), "the refusal {first:?} tells {secret:?}");
    }
    assert_eq!(http::get(addr, "/healthz").body, "ok\n", "/healthz stays open");

    // With the credential: everything, as a bearer token or as basic auth's password.
    for authorization in [bearer(TOKEN), basic(&format!("anyone:{TOKEN}"))] {
        for path in ["/", "/index.html", "/page.js", "/api/shops", "/api/shops/%2F", "/api/shops/north"] {
            let answer = http::request_as("GET", addr, path, Some(&authorization));
            assert_eq!(answer.status, 200, "{path} with {authorization}: {answer:?}");
        }
        assert_eq!(http::request_as("GET", addr, "/nope", Some(&authorization)).status, 404);
        raw_until(addr, "/events", &authorization, "event: shops");
    }
    let shops = http::request_as("GET", addr, "/api/shops", Some(&bearer(TOKEN))).body;
    assert!(shops.contains("\"north\"") && shops.contains("\"ana\""), "{shops}");
    for authorization in [bearer(TOKEN), bearer(SCRAPER)] {
        let page = http::scrape_as(addr, Some(&authorization));
        assert_eq!(page.value("zk_coffee_orders_waiting", &[("ensemble", "test"), ("shop", "/"), ("barista", "ana")]), Some(1.0));
    }
    waiting.stop(EXIT_TIMEOUT);
    ana.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

/// The README's fenced block (in `lang`) that starts with `# {name}`.
fn readme_block(lang: &str, name: &str) -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let fence = format!("```{lang}\n");
    let mut blocks = readme.split(&fence).skip(1).map(|rest| rest.split("```").next().unwrap_or("").to_owned());
    blocks.find(|b| b.starts_with(&format!("# {name}"))).unwrap_or_else(|| panic!("README.md has no {lang} block {name}"))
}

#[test]
fn prometheus_scrapes_the_guarded_manager_with_the_readmes_authorization() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let dir = Dir::new("guard-prometheus");
    let token = secret(&dir, "token", TOKEN, 0o600);
    let (public, addr) = public_address();
    let mgr =
        role(zk, Role::ShopManager).args(["--listen", &public, "--ensemble", "guarded", "--http-auth-file"]).arg(&token).spawn();
    mgr.wait_for_stderr("following ", LOG_TIMEOUT);
    // The README's job, pointed at this manager and this token.
    let job = readme_block("yaml", "prometheus-guarded.yml");
    let job = job
        .replace("/etc/prometheus/zk-coffee-manager.token", &token.display().to_string())
        .replace("mgr1.example.net:9720", &addr.to_string());
    let config = dir.join("prometheus-guarded.yml");
    std::fs::write(&config, &job).expect("write the config");
    let out = Command::new("promtool").args(["check", "config"]).arg(&config).output().expect("promtool");
    assert!(out.status.success(), "promtool: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let settings: String =
        job.lines().skip_while(|l| !l.trim_start().starts_with("authorization:")).map(|l| format!("{l}\n")).collect();
    assert!(settings.contains("credentials_file"), "{job}");
    let prometheus = Prometheus::start_with(&[addr], &settings);
    wait_until(Duration::from_secs(20), "Prometheus to store the guarded manager's series", || {
        !prometheus.query("zk_coffee_build_info{ensemble=\"guarded\"} or zk_coffee_build_info").is_empty()
    });
    assert!(prometheus.query("up{job=\"zk-coffee\"} == 1").len() == 1, "{}", prometheus.targets());
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);

    // Without the setting, Prometheus is refused.
    let mgr = role(zk, Role::ShopManager).args(["--listen", &public, "--http-auth-file"]).arg(&token).spawn();
    mgr.wait_for_stderr("following ", LOG_TIMEOUT);
    let unguarded = Prometheus::start(&[addr]);
    wait_until(Duration::from_secs(20), "Prometheus to report the target down", || unguarded.targets().contains("401"));
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn a_baristas_metrics_on_a_public_address_ask_for_basic_auth() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let dir = Dir::new("guard-barista");
    let file = secret(&dir, "basic", "prometheus:pa55:word\n", 0o600);
    let (public, addr) = public_address();
    let b = barista(server.connect_string(), "ana", "0.05")
        .args(["--metrics-listen", &public])
        .env("HTTP_AUTH_FILE", file.display().to_string())
        .spawn_on_shift();
    for authorization in [None, Some(basic("prometheus:pa55")), Some(basic("other:pa55:word")), Some(bearer("pa55:word"))] {
        let answer = http::request_as("GET", addr, "/metrics", authorization.as_deref());
        assert_eq!(answer.status, 401, "{authorization:?}: {answer:?}");
    }
    let page = http::scrape_as(addr, Some(&basic("prometheus:pa55:word")));
    assert_eq!(page.get("zk_coffee_barista_orders_served_total"), 0.0);
    assert_eq!(http::get(addr, "/healthz").status, 200);
    b.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

/// The rows of the baristas' table as `name:state` (as `page.rs` reads them).
const BARISTAS: &str =
    "Array.from(document.querySelectorAll('#baristas tbody tr')).map(r => r.dataset.barista + ':' + r.dataset.state).join(' ')";

#[test]
fn the_guarded_page_works_in_a_browser_with_basic_auth() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let dir = Dir::new("guard-browser");
    let file = secret(&dir, "basic", "ops:correct-horse\n", 0o600);
    let addr = SocketAddr::from(([127, 0, 0, 1], closed_port()));
    let mgr = role(zk, Role::ShopManager).args(["--listen", &addr.to_string(), "--http-auth-file"]).arg(&file).spawn();
    mgr.wait_for_stderr("following ", LOG_TIMEOUT);
    assert_eq!(http::get(addr, "/").status, 401, "guarded on loopback too when given the file");
    let ana = barista(zk, "ana", "0.05").spawn_on_shift();

    let browser = Browser::start(1280, 900);
    // The credentials in the address: the browser keeps them for the origin and gives them
    // again with every request there, the event stream's included.
    browser.goto(&format!("http://ops:correct-horse@{addr}/"));
    browser.wait(LOG_TIMEOUT, "the stream to be live", "return document.getElementById('connection').dataset.state === 'live'");
    browser.wait(LOG_TIMEOUT, "ana on the page", &format!("return {BARISTAS}.includes('ana:')"));
    let ben = barista(zk, "ben", "0.05").spawn_on_shift();
    browser.wait(Duration::from_secs(2), "ben on the page, live", &format!("return {BARISTAS}.includes('ben:')"));
    let console = browser.console();
    let errors: Vec<_> = console.iter().filter(|e| e["level"] == "SEVERE").collect();
    assert!(errors.is_empty(), "the console: {errors:?}");
    drop(browser);
    for b in [ana, ben] {
        b.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    }
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

/// Runs `openssl` with `args` in `dir`; panics with what it said if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).stdin(Stdio::null()).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A test CA (`ca.pem`) and a certificate it signed for localhost (`cert.pem`, `key.pem`).
fn test_ca(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        dir,
        &[&["req", "-x509"][..], &ec, &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=zk-coffee test CA"]]
            .concat(),
    );
    openssl(dir, &[&["req"][..], &ec, &["-keyout", "key.pem", "-out", "cert.csr", "-subj", "/CN=localhost"]].concat());
    std::fs::write(dir.join("san.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").expect("write san.cnf");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "cert.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
            "-out",
            "cert.pem",
        ],
    );
}

/// `curl` of `https://localhost:{port}{path}` trusting `ca`, with `extra` arguments: its exit
/// code and stdout.
fn curl(port: u16, ca: Option<&Path>, path: &str, extra: &[&str]) -> (i32, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--noproxy", "*", "--resolve", &format!("localhost:{port}:127.0.0.1")]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    let out = cmd.args(extra).arg(format!("https://localhost:{port}{path}")).stdin(Stdio::null()).output().expect("curl");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn https_comes_from_the_readmes_nginx_in_front_of_the_guarded_manager() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let dir = Dir::new("guard-nginx");
    test_ca(dir.path());
    let token = secret(&dir, "token", TOKEN, 0o600);
    let upstream = SocketAddr::from(([127, 0, 0, 1], closed_port()));
    let mgr = role(zk, Role::ShopManager).args(["--listen", &upstream.to_string(), "--http-auth-file"]).arg(&token).spawn();
    mgr.wait_for_stderr("following ", LOG_TIMEOUT);

    // The README's server block, with this test's certificate, port and manager.
    let port = closed_port();
    let site = readme_block("nginx", "/etc/nginx/conf.d/zk-coffee.conf")
        .replace("listen 443 ssl", &format!("listen 127.0.0.1:{port} ssl"))
        .replace("/etc/ssl/zk-coffee/", &format!("{}/", dir.path().display()))
        .replace("127.0.0.1:9720", &upstream.to_string());
    let d = dir.path().display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
         \x20 uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{site}}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
    let mut cmd = Command::new("nginx");
    cmd.args(["-p", &d.to_string(), "-e", &format!("{d}/error.log"), "-c", &format!("{d}/nginx.conf")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    die_with_parent(&mut cmd);
    let mut nginx = KillOnDrop(cmd.spawn().expect("nginx (Debian package nginx; scripts/test.sh installs it)"));
    let ca = dir.join("ca.pem");
    let authorized = format!("Authorization: Bearer {TOKEN}");
    wait_until(LOG_TIMEOUT, "nginx to answer over TLS", || {
        assert!(
            nginx.0.try_wait().ok().flatten().is_none(),
            "nginx exited: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        curl(port, Some(&ca), "/healthz", &[]).1 == "ok\n"
    });
    let (code, body) = curl(port, Some(&ca), "/api/shops", &["-H", &authorized]);
    assert_eq!(code, 0);
    assert!(body.contains("\"shops\""), "{body}");
    let (_, status) = curl(port, Some(&ca), "/api/shops", &["-o", "/dev/null", "-w", "%{http_code}"]);
    assert_eq!(status, "401", "the guard still asks behind the proxy");
    // The event stream goes through unbuffered: the hello comes at once.
    let (_, stream) = curl(port, Some(&ca), "/events", &["-N", "--max-time", "2", "-H", &authorized]);
    assert!(stream.contains("event: hello") && stream.contains("event: shops"), "{stream}");
    // A client that does not trust the test CA is refused (curl: 60, peer certificate).
    let (code, _) = curl(port, None, "/healthz", &[]);
    assert_eq!(code, 60, "a certificate from an unknown CA must be refused");
    drop(nginx);
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

/// A child killed when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
