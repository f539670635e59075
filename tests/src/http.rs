//! The roles' HTTP side as a test sees it: asking an address for a path, and reading a
//! `/metrics` page the way Prometheus would.
//!
//! [`scrape`] fetches `/metrics`, parses it with the official Prometheus parser (Debian's
//! `python3-prometheus-client`, through `tests/scripts/parse_metrics.py`: the page is
//! OpenMetrics, which that parser reads strictly) and lints it with `promtool check metrics`
//! (Debian's `prometheus`). promtool 2.42 reads only the classic text format (it takes an
//! OpenMetrics counter's `_total` sample for a metric without help), so the page is linted as
//! the official client writes the same families in that format: the names, types, units and
//! help texts linted are the page's. [`parse`] alone reads any OpenMetrics text, e.g. a page
//! a test encodes from one of the library's collectors. A test then looks series up by name
//! and labels ([`Metrics::value`], [`Metrics::samples`]), never by grepping the text.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::command::workspace_root;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often [`wait_metrics`] reads the page again (each read runs the parser: ~50 ms).
const POLL: Duration = Duration::from_millis(50);

/// What an address answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    /// The `WWW-Authenticate` challenge, if any (a 401's).
    pub www_authenticate: Option<String>,
}

/// Asks `addr` for `path` with `method` (no redirects, no proxy); panics only if nothing
/// answers.
pub fn request(method: &str, addr: SocketAddr, path: &str) -> Answer {
    try_request(method, addr, path).unwrap_or_else(|e| panic!("{method} http://{addr}{path}: {e}"))
}

/// `GET` [`request`].
pub fn get(addr: SocketAddr, path: &str) -> Answer {
    request("GET", addr, path)
}

/// `GET` `path` with `query` (its pairs percent-encoded), e.g. a Prometheus API query.
pub fn get_with_query(addr: SocketAddr, path: &str, query: &[(&str, &str)]) -> Answer {
    let url = format!("http://{addr}{path}");
    let response = agent().get(&url).query_pairs(query.iter().copied()).call();
    response.map_err(|e| e.to_string()).and_then(answer).unwrap_or_else(|e| panic!("GET {url} {query:?}: {e}"))
}

/// An agent that returns every status as an answer, follows no redirect and uses no proxy.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .proxy(None)
        .max_redirects(0)
        .build()
        .into()
}

/// [`request`], with the failure to get any answer as an error.
pub fn try_request(method: &str, addr: SocketAddr, path: &str) -> Result<Answer, String> {
    try_request_as(method, addr, path, None)
}

/// [`request`] with an `Authorization` header (`Bearer TOKEN`, [`basic`]) if given.
pub fn request_as(method: &str, addr: SocketAddr, path: &str, authorization: Option<&str>) -> Answer {
    try_request_as(method, addr, path, authorization).unwrap_or_else(|e| panic!("{method} http://{addr}{path}: {e}"))
}

/// [`try_request`] with an `Authorization` header if given.
pub fn try_request_as(method: &str, addr: SocketAddr, path: &str, authorization: Option<&str>) -> Result<Answer, String> {
    let url = format!("http://{addr}{path}");
    let method = ureq::http::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut request = ureq::http::Request::builder().method(method).uri(&url);
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    answer(agent().run(request.body(()).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?)
}

/// The `Authorization` value of HTTP basic auth for `user:password`.
pub fn basic(user_password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password))
}

/// The status, type and body of `response`.
fn answer(mut response: ureq::http::Response<ureq::Body>) -> Result<Answer, String> {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = header("content-type").unwrap_or_default();
    let www_authenticate = header("www-authenticate");
    let body = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
    Ok(Answer { status: response.status().as_u16(), content_type, body, www_authenticate })
}

/// One sample of a metric family.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Sample {
    /// The sample's own name (`..._total`, `..._bucket`).
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The parser writes NaN and the infinities as Prometheus' strings (JSON has none).
    #[serde(deserialize_with = "sample_value")]
    pub value: f64,
}

impl Sample {
    /// Whether every `(name, value)` of `labels` is among the sample's labels.
    pub fn has_labels(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|(k, v)| self.labels.get(*k).is_some_and(|x| x == v))
    }
}

/// A sample's value: a JSON number, or `NaN`, `+Inf`, `-Inf`.
fn sample_value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Number(f64),
        Text(String),
    }
    match Written::deserialize(deserializer)? {
        Written::Number(n) => Ok(n),
        Written::Text(t) => t.parse().map_err(|_| D::Error::custom(format!("a sample value {t:?}"))),
    }
}

/// One metric family as the parser read it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Family {
    /// The family's name: without `_total` for a counter, the name of a histogram's series.
    pub name: String,
    /// `counter`, `gauge`, `histogram`, `info`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `seconds`, `bytes`, or empty.
    pub unit: String,
    pub help: String,
    pub samples: Vec<Sample>,
}

/// A histogram's samples for one label set.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub count: f64,
    pub sum: f64,
    /// `(le, cumulative count)` in the page's order, `+Inf` last.
    pub buckets: Vec<(f64, f64)>,
}

/// A parsed `/metrics` page ([`scrape`] also lints it).
#[derive(Debug, Clone)]
pub struct Metrics {
    /// The page as served.
    pub text: String,
    pub families: Vec<Family>,
}

impl Metrics {
    /// The family named `name` (a counter's without `_total`).
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// The samples named `name` that carry all of `labels` (and perhaps others).
    pub fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.families.iter().flat_map(|f| &f.samples).filter(|s| s.name == name && s.has_labels(labels)).collect()
    }

    /// The value of the sample `name` whose labels are exactly `labels`; `None` if there is
    /// none, a panic if there are several.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<&Sample> = self.samples(name, labels).into_iter().filter(|s| s.labels.len() == labels.len()).collect();
        assert!(found.len() <= 1, "{} samples {name}{labels:?}: {found:?}", found.len());
        found.first().map(|s| s.value)
    }

    /// [`Metrics::value`] of an unlabelled sample; panics (showing the page) if it is absent.
    pub fn get(&self, name: &str) -> f64 {
        self.value(name, &[]).unwrap_or_else(|| panic!("no sample {name} in:\n{}", self.text))
    }

    /// The unlabelled histogram `name`; panics if it is absent.
    pub fn histogram(&self, name: &str) -> Histogram {
        let family = self.family(name).unwrap_or_else(|| panic!("no histogram {name} in:\n{}", self.text));
        assert_eq!(family.kind, "histogram", "{name}");
        let mut buckets = Vec::new();
        for s in family.samples.iter().filter(|s| s.name == format!("{name}_bucket")) {
            let le = &s.labels["le"];
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().expect("a bucket bound") };
            buckets.push((le, s.value));
        }
        Histogram { count: self.get(&format!("{name}_count")), sum: self.get(&format!("{name}_sum")), buckets }
    }
}

/// Fetches `http://{addr}/metrics`, checks it is served as OpenMetrics, parses and lints it.
pub fn scrape(addr: SocketAddr) -> Metrics {
    scrape_as(addr, None)
}

/// [`scrape`] with an `Authorization` header if given.
pub fn scrape_as(addr: SocketAddr, authorization: Option<&str>) -> Metrics {
    let answer = request_as("GET", addr, "/metrics", authorization);
    assert_eq!(answer.status, 200, "GET /metrics: {answer:?}");
    assert!(answer.content_type.starts_with("application/openmetrics-text"), "GET /metrics: {answer:?}");
    let metrics = parse(&answer.body).unwrap_or_else(|e| panic!("the page of {addr} does not parse: {e}\n{}", answer.body));
    if let Err(e) = lint(&answer.body) {
        panic!("promtool finds fault with the page of {addr}: {e}\n{}", answer.body);
    }
    metrics
}

/// Reads an OpenMetrics page with the official parser (`tests/scripts/parse_metrics.py`);
/// the parser's complaint if it is not valid OpenMetrics.
pub fn parse(text: &str) -> Result<Metrics, String> {
    /// What the script prints.
    #[derive(Deserialize)]
    struct Parsed {
        families: Vec<Family>,
    }
    let json = parser(&[], text)?;
    let parsed: Parsed = serde_json::from_str(&json).map_err(|e| format!("the parser's JSON: {e}: {json}"))?;
    Ok(Metrics { text: text.to_owned(), families: parsed.families })
}

/// Lints an OpenMetrics page with `promtool check metrics`, as the classic text format the
/// official client writes of the same families (see the module docs).
pub fn lint(text: &str) -> Result<(), String> {
    let classic = parser(&["--classic"], text)?;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("promtool (Debian package prometheus; scripts/test.sh installs it): {e}"))?;
    promtool.stdin.take().expect("stdin").write_all(classic.as_bytes()).map_err(|e| e.to_string())?;
    let out = promtool.wait_with_output().map_err(|e| e.to_string())?;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", out.status, said.trim()))
    }
}

/// Runs the parser script on `text` with `args`; its stdout, or its complaint.
fn parser(args: &[&str], text: &str) -> Result<String, String> {
    let script = workspace_root().join("tests/scripts/parse_metrics.py");
    // Debian's python, where python3-prometheus-client is (not a pyenv or venv one).
    let mut child = Command::new("/usr/bin/python3")
        .arg(&script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("/usr/bin/python3 {}: {e}", script.display()))?;
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Reads `http://{addr}/metrics` (parsed, not linted: [`scrape`] lints) until `done` says
/// so, for at most `timeout`; returns the page that satisfied it. Panics naming `what`, with
/// the last page read, if none did.
pub fn wait_metrics(addr: SocketAddr, what: &str, timeout: Duration, mut done: impl FnMut(&Metrics) -> bool) -> Metrics {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match try_request("GET", addr, "/metrics").and_then(|answer| parse(&answer.body)) {
            Ok(metrics) if done(&metrics) => return metrics,
            Ok(metrics) => metrics.text,
            Err(e) => e,
        };
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}; the last page of {addr}:\n{last}");
        // The pace of the polling, within the deadline above.
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_parsed_and_a_bad_one_refused() {
        let m = parse(concat!(
            "# HELP a_seconds How long.\n# TYPE a_seconds gauge\n# UNIT a_seconds seconds\n",
            "a_seconds{x=\"1\"} 0.25\na_seconds{x=\"2\"} +Inf\n",
            "# HELP b Things.\n# TYPE b counter\nb_total 3\n# EOF\n"
        ))
        .expect("parses");
        assert_eq!(m.family("a_seconds").map(|f| (f.kind.as_str(), f.unit.as_str())), Some(("gauge", "seconds")));
        assert_eq!(m.value("a_seconds", &[("x", "1")]), Some(0.25));
        assert_eq!(m.value("a_seconds", &[("x", "2")]), Some(f64::INFINITY));
        assert_eq!(m.samples("a_seconds", &[]).len(), 2);
        assert_eq!(m.value("a_seconds", &[]), None, "labels must match exactly");
        assert_eq!(m.value("b_total", &[]), Some(3.0));
        assert_eq!(m.value("c", &[]), None);
        let refused = parse("a_seconds 1\n").expect_err("no # EOF: not OpenMetrics");
        assert!(refused.contains("not a valid OpenMetrics page"), "{refused}");
    }
}
