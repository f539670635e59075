//! A real Prometheus server (Debian's `prometheus`, 2.42) scraping the roles, for the tests
//! that check what Prometheus itself makes of a `/metrics` page: that it takes the page, and
//! which series it stores with which labels.
//!
//! [`Prometheus::start`] runs one on a free loopback port with its own storage directory,
//! scraping the given targets every 500 ms as job `zk-coffee`; [`Prometheus::query`] asks
//! its HTTP API for an instant query. The server is killed when the guard drops (and by the
//! kernel if the test process dies).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::command::die_with_parent;
use crate::dir::Dir;
use crate::server::closed_port;
use crate::wait_until;

/// How often the targets are scraped.
pub const SCRAPE_INTERVAL: Duration = Duration::from_millis(500);

/// A running Prometheus server; killed on drop.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: Dir,
}

impl Prometheus {
    /// Starts a server scraping `targets` (job `zk-coffee`) and waits until it is ready.
    pub fn start(targets: &[SocketAddr]) -> Prometheus {
        Prometheus::start_with(targets, "")
    }

    /// [`Prometheus::start`] with more settings for the job: `job` is YAML at the job's
    /// level (four spaces in), e.g. an `authorization:` block.
    pub fn start_with(targets: &[SocketAddr], job: &str) -> Prometheus {
        let dir = Dir::new("prometheus");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let ms = SCRAPE_INTERVAL.as_millis();
        let config = format!(
            "global:\n  scrape_interval: {ms}ms\n  scrape_timeout: {ms}ms\nscrape_configs:\n  - job_name: zk-coffee\n    static_configs:\n      - targets: [{}]\n{job}",
            targets.join(", ")
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write prometheus.yml");
        let addr = SocketAddr::from(([127, 0, 0, 1], closed_port()));
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("create the log");
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        die_with_parent(&mut cmd);
        let child = cmd.spawn().expect("prometheus (Debian package prometheus; scripts/test.sh installs it)");
        let mut server = Prometheus { child, addr, dir };
        let ready = || crate::http::try_request("GET", addr, "/-/ready").is_ok_and(|a| a.status == 200);
        let mut exited = None;
        wait_until(Duration::from_secs(30), "Prometheus to be ready", || {
            exited = server.child.try_wait().ok().flatten();
            exited.is_some() || ready()
        });
        if let Some(status) = exited {
            panic!("prometheus exited ({status}):\n{}", server.log());
        }
        server
    }

    /// Its log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The series an instant query of `expr` returns: each one's labels and value.
    pub fn query(&self, expr: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let answer = crate::http::get_with_query(self.addr, "/api/v1/query", &[("query", expr)]);
        let doc: Value = serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{expr}: {e}: {answer:?}"));
        assert_eq!(doc["status"], "success", "{expr}: {doc}");
        let result = doc["data"]["result"].as_array().unwrap_or_else(|| panic!("{expr}: no result: {doc}"));
        result
            .iter()
            .map(|series| {
                let labels = series["metric"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                    .unwrap_or_default();
                let value = series["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
                (labels, value)
            })
            .collect()
    }

    /// What Prometheus says of its targets (`/api/v1/targets`): each one's health and last error.
    pub fn targets(&self) -> String {
        crate::http::get(self.addr, "/api/v1/targets").body
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
