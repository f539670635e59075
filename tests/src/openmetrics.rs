//! Metrics pages read by a real parser: the OpenMetrics text that `prometheus-client` writes
//! goes through the official Prometheus parser (Debian's `python3-prometheus-client`, called by
//! `tests/scripts/openmetrics_to_json.py`) and comes back as [`Family`]s. A page it refuses
//! fails the test: nothing here is grepped.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::Deserialize;

/// The Python the parser runs with: Debian's, where `python3-prometheus-client` installs.
pub const PYTHON: &str = "/usr/bin/python3";

/// One metric family of a page.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Family {
    /// Its name, with the unit suffix and without `_total` (as OpenMetrics names families).
    pub name: String,
    /// `gauge`, `counter`, `histogram`, `info`, `stateset`, `unknown`...
    #[serde(rename = "type")]
    pub kind: String,
    /// Its unit (`seconds`), empty if none.
    pub unit: String,
    pub help: String,
    pub samples: Vec<Sample>,
}

/// One sample of a family.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Sample {
    /// The sample's own name (`..._total`, `..._bucket`).
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The value as the parser read it (Python's repr of a float).
    #[serde(rename = "value")]
    raw_value: String,
}

impl Sample {
    /// The value.
    pub fn value(&self) -> f64 {
        self.raw_value.parse().unwrap_or_else(|_| panic!("the parser gave the value {:?}", self.raw_value))
    }

    /// Whether every `(name, value)` of `labels` is among the sample's labels.
    pub fn has_labels(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|(k, v)| self.labels.get(*k).is_some_and(|x| x == v))
    }
}

/// A parsed page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub families: Vec<Family>,
}

impl Page {
    /// The family named `name`, if the page has it.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// The samples named `sample` carrying all of `labels`.
    pub fn samples(&self, sample: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.families.iter().flat_map(|f| &f.samples).filter(|s| s.name == sample && s.has_labels(labels)).collect()
    }

    /// The value of the one sample named `sample` with `labels`; `None` if there is none,
    /// and a panic if there are several.
    pub fn value(&self, sample: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.samples(sample, labels);
        assert!(found.len() <= 1, "{} samples {sample}{labels:?}: {found:?}", found.len());
        found.first().map(|s| s.value())
    }
}

fn script() -> PathBuf {
    crate::workspace_root().join("tests/scripts/openmetrics_to_json.py")
}

/// Parses an OpenMetrics text page with the official parser; panics, with the parser's
/// message and the page, if it is not valid OpenMetrics.
pub fn parse(text: &str) -> Page {
    let mut child = Command::new(PYTHON)
        .arg(script())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON} (apt-get install -y python3 python3-prometheus-client): {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let page = text.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(page.as_bytes()));
    let out = child.wait_with_output().expect("wait for the parser");
    let _ = writer.join();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the parser needs Debian's python3-prometheus-client (scripts/test.sh installs it): {stderr}"
    );
    assert!(out.status.success(), "the official parser refused the page ({}): {stderr}\n---- page ----\n{text}", out.status);
    let families: Vec<Family> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the parser's JSON does not read: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    Page { families }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_parsed_and_a_bad_one_refused() {
        let page = parse(concat!(
            "# HELP a_seconds How long.\n# TYPE a_seconds gauge\n# UNIT a_seconds seconds\n",
            "a_seconds{x=\"1\"} 0.25\na_seconds{x=\"2\"} +Inf\n",
            "# HELP b Things.\n# TYPE b counter\nb_total 3\n# EOF\n"
        ));
        assert_eq!(page.family("a_seconds").map(|f| (f.kind.as_str(), f.unit.as_str())), Some(("gauge", "seconds")));
        assert_eq!(page.value("a_seconds", &[("x", "1")]), Some(0.25));
        assert_eq!(page.value("a_seconds", &[("x", "2")]), Some(f64::INFINITY));
        assert_eq!(page.value("b_total", &[]), Some(3.0));
        assert_eq!(page.value("c", &[]), None);
        let refused = std::panic::catch_unwind(|| parse("a_seconds 1\n"));
        let message = *refused.expect_err("no # EOF: not OpenMetrics").downcast::<String>().expect("a message");
        assert!(message.contains("refused the page"), "{message}");
    }
}
