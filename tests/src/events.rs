//! The manager's events, as a test reads them: one JSON object per stdout line, waited for
//! with a deadline while the manager runs, or read whole from its output once it has exited.

use std::time::Duration;

use serde_json::Value;

use crate::process::{Output, Proc};

/// Parses the stdout lines that are events (JSON objects with an `event` field).
pub fn parse_events(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|value| value.get("event").is_some())
        .collect()
}

/// Whether `event` is of `kind` about `barista` (any barista for `None`).
pub fn is_event(event: &Value, kind: &str, barista: Option<&str>) -> bool {
    event["event"] == kind && barista.is_none_or(|b| event["barista"] == b)
}

/// Waits until the manager has reported an event of `kind` (about `barista`, if given) for
/// which `pred` holds, and returns the first such.
pub fn wait_event(manager: &Proc, kind: &str, barista: Option<&str>, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let what = format!("event {kind}{}", barista.map(|b| format!(" about {b}")).unwrap_or_default());
    manager.wait_stdout(&what, timeout, |lines| parse_events(lines).into_iter().find(|e| is_event(e, kind, barista) && pred(e)))
}

/// The events in an exited manager's output.
pub fn events_of(output: &Output) -> Vec<Value> {
    parse_events(&output.stdout)
}

/// How many events of `kind` (about `barista`) there are in `events`.
pub fn count_events(events: &[Value], kind: &str, barista: Option<&str>) -> usize {
    events.iter().filter(|e| is_event(e, kind, barista)).count()
}
