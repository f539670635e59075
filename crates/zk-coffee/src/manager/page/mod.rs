//! The manager's page: `/` shows the shops it follows, live, in a browser, from what the
//! manager already knows (the `/api/shops` documents, its events, and the [`history`] it keeps
//! for the charts). It reveals nothing `shop-status` would not, and changes nothing.
//!
//! After the first load the page asks for nothing more: one stream of Server-Sent Events at
//! `/events` carries everything (`stream`): a `hello` (the shops, the last
//! [`RECENT_EVENTS`] events, the history), then each event as it is told, the shops' documents
//! whenever they change (looked at every [`LOOK`]), and each second's samples for the charts.
//! The browser's `EventSource` reconnects by itself when the manager goes away, and the page
//! says so meanwhile. Every asset is in the binary: the page, its script and style, and a
//! vendored build of uPlot (see `assets/README.md` for how to update it); no CDN.
//!
//! The [`Hub`] is what the manager's loop feeds (events, waits served, the queues' lengths
//! every tick) and what each open stream subscribes to. Its lock is taken after the shops'
//! lock where both are held, never the other way round.

pub mod history;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use super::{api, Event, Shared};
use crate::lock;
use crate::metrics::{Request, Response};
use history::History;

/// How many of the last events the page is given when it opens (the feed's length).
pub const RECENT_EVENTS: usize = 100;

/// How often a stream looks whether the shops' documents changed: well within the 1 s the page
/// promises between a change in ZooKeeper and the page showing it.
pub const LOOK: Duration = Duration::from_millis(250);

/// A stream with nothing to say for this long sends a comment, so that proxies and the
/// browser see the connection alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Events queued for one stream before it is dropped as too slow (its browser reconnects and
/// starts afresh from a `hello`).
const STREAM_QUEUE: usize = 1024;

const INDEX_HTML: &str = include_str!("assets/index.html");
const PAGE_JS: &str = include_str!("assets/page.js");
const PAGE_CSS: &str = include_str!("assets/page.css");
const UPLOT_JS: &str = include_str!("assets/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("assets/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("assets/uPlot.LICENSE");
const ICON_SVG: &str = include_str!("assets/icon.svg");

/// What the page's streams share with the manager's loop.
#[derive(Debug, Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The last [`RECENT_EVENTS`] events, as JSON.
    recent: VecDeque<Arc<str>>,
    /// The open streams' queues.
    subscribers: Vec<SyncSender<Arc<str>>>,
    history: History,
}

impl Hub {
    /// Tells every open stream `event`, and keeps it for pages opened later.
    pub fn publish(&self, event: &Event) {
        let json: Arc<str> = event.to_json().into();
        let mut inner = lock(&self.inner);
        if inner.recent.len() == RECENT_EVENTS {
            inner.recent.pop_front();
        }
        inner.recent.push_back(Arc::clone(&json));
        inner.subscribers.retain(|tx| match tx.try_send(Arc::clone(&json)) {
            Ok(()) => true,
            // Too slow, or gone: its stream ends, and its browser starts afresh.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        });
    }

    /// An order of `shop` was served after waiting `wait`.
    pub fn served(&self, shop: &str, wait: Duration) {
        lock(&self.inner).history.served(shop, wait);
    }

    /// `shop` has `waiting` orders now (`wall`): closes the seconds that have passed.
    pub fn sample(&self, shop: &str, wall: SystemTime, waiting: u64) {
        lock(&self.inner).history.sample(shop, wall, waiting);
    }

    /// `shop` is no longer followed.
    pub fn forget(&self, shop: &str) {
        lock(&self.inner).history.forget(shop);
    }

    /// A new stream's queue, and what it is told first: the recent events and the history.
    fn subscribe(&self) -> (Receiver<Arc<str>>, Vec<Arc<str>>, Value, u64) {
        let (tx, rx) = mpsc::sync_channel(STREAM_QUEUE);
        let mut inner = lock(&self.inner);
        inner.subscribers.push(tx);
        let recent = inner.recent.iter().cloned().collect();
        (rx, recent, inner.history.to_json(0), inner.history.last_second())
    }

    /// The samples of the seconds after `since`, and the last second closed.
    fn samples_since(&self, since: u64) -> Option<(Value, u64)> {
        let inner = lock(&self.inner);
        let last = inner.history.last_second();
        (last > since).then(|| (inner.history.to_json(since), last))
    }
}

/// The page's answer to `request`, if it is one of its paths.
pub fn route(shared: &Arc<Shared>, request: &Request) -> Option<Response> {
    if request.path() == "/events" {
        let shared = Arc::clone(shared);
        return Some(Response::stream("text/event-stream; charset=utf-8", move |out, stopping| stream(&shared, out, stopping)));
    }
    asset(request)
}

/// The page's files, all in the binary.
fn asset(request: &Request) -> Option<Response> {
    let asset =
        |content_type: &str, body: &'static str| Some(Response::new(200, content_type, body).with_cache_control("no-cache"));
    match request.path() {
        "/" | "/index.html" => asset("text/html; charset=utf-8", INDEX_HTML),
        "/page.js" => asset("text/javascript; charset=utf-8", PAGE_JS),
        "/page.css" => asset("text/css; charset=utf-8", PAGE_CSS),
        "/uPlot.iife.min.js" => asset("text/javascript; charset=utf-8", UPLOT_JS),
        "/uPlot.min.css" => asset("text/css; charset=utf-8", UPLOT_CSS),
        "/uPlot.LICENSE" => asset("text/plain; charset=utf-8", UPLOT_LICENSE),
        "/favicon.ico" | "/icon.svg" => asset("image/svg+xml", ICON_SVG),
        _ => None,
    }
}

/// Writes one Server-Sent Event.
fn send(out: &mut dyn Write, name: &str, data: &str) -> io::Result<()> {
    // `data` is one line of JSON: serde_json escapes every newline inside strings.
    write!(out, "event: {name}\ndata: {data}\n\n")?;
    out.flush()
}

/// One page's stream, until its browser goes, the manager stops, or it falls too far behind
/// (then it says `bye`).
fn stream(shared: &Shared, out: &mut dyn Write, stopping: &AtomicBool) -> io::Result<()> {
    let (rx, recent, history, mut second) = shared.page.subscribe();
    let shops = serde_json::to_string(&api::shops(shared)).unwrap_or_default();
    let recent: Vec<Value> = recent.iter().filter_map(|e| serde_json::from_str(e).ok()).collect();
    let hello = json!({
        "ensemble": shared.ensemble,
        "read_only": true,
        "recent_events": recent,
        "history": history,
        "history_seconds": history::SECONDS,
    });
    // A reconnecting browser waits 1 s before it tries again.
    out.write_all(b"retry: 1000\n\n")?;
    send(out, "hello", &hello.to_string())?;
    send(out, "shops", &shops)?;
    let mut last_shops = shops;
    let mut said = Instant::now();
    let mut next_look = Instant::now() + LOOK;
    while !stopping.load(Ordering::SeqCst) {
        match rx.recv_timeout(next_look.saturating_duration_since(Instant::now())) {
            Ok(event) => {
                send(out, "event", &event)?;
                said = Instant::now();
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        next_look = Instant::now() + LOOK;
        let shops = serde_json::to_string(&api::shops(shared)).unwrap_or_default();
        if shops != last_shops {
            send(out, "shops", &shops)?;
            last_shops = shops;
            said = Instant::now();
        }
        if let Some((samples, last)) = shared.page.samples_since(second) {
            send(out, "samples", &samples.to_string())?;
            second = last;
            said = Instant::now();
        }
        if said.elapsed() >= KEEP_ALIVE {
            out.write_all(b": still here\n\n")?;
            out.flush()?;
            said = Instant::now();
        }
    }
    // The page closes and reconnects: the connection is not closed from this side (see
    // `metrics::http`), and a fresh `hello` catches up a stream that fell behind.
    send(out, "bye", "{}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::{Kind, ROOT_SHOP};

    #[test]
    fn the_feed_keeps_the_last_events_and_drops_slow_streams() {
        let hub = Hub::default();
        let (rx, recent, _, _) = hub.subscribe();
        assert!(recent.is_empty());
        for i in 0..(RECENT_EVENTS + 5) {
            hub.publish(&Event::new(Kind::BaristaOnShift, ROOT_SHOP, Some(&format!("b{i}")), "k"));
        }
        let (_rx2, recent, _, _) = hub.subscribe();
        assert_eq!(recent.len(), RECENT_EVENTS);
        assert!(recent[0].contains("\"barista\":\"b5\""), "{}", recent[0]);
        assert!(rx.try_recv().expect("told").contains("\"barista\":\"b0\""));
        drop(rx);
        hub.publish(&Event::new(Kind::BaristaLeft, ROOT_SHOP, None, "k"));
        assert_eq!(lock(&hub.inner).subscribers.len(), 1, "the stream that went is no longer told");
    }

    #[test]
    fn every_asset_is_served_from_the_binary_and_names_no_other_host() {
        for path in ["/", "/page.js", "/page.css", "/uPlot.iife.min.js", "/uPlot.min.css", "/favicon.ico", "/uPlot.LICENSE"] {
            let response = asset(&Request::new("GET", path)).expect(path);
            assert_eq!(response.status, 200, "{path}");
            assert!(!response.body.is_empty(), "{path}");
        }
        let html = String::from_utf8(asset(&Request::new("GET", "/")).unwrap().body).unwrap();
        for asset in ["page.js", "page.css", "uPlot.iife.min.js", "uPlot.min.css"] {
            assert!(html.contains(asset), "the page loads {asset}");
        }
        assert!(!html.contains("http://") && !html.contains("https://"), "no asset from elsewhere");
        assert!(html.to_lowercase().contains("read-only"), "the page says it is read-only");
        let js = String::from_utf8(asset(&Request::new("GET", "/page.js")).unwrap().body).unwrap();
        assert!(
            !js.contains("fetch(") && !js.contains("XMLHttpRequest") && !js.contains("setInterval"),
            "one stream, no polling"
        );
        assert!(asset(&Request::new("GET", "/nope")).is_none());
    }
}
