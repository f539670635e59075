//! Metrics for Prometheus, shared by every role that serves them: the exposition format, the
//! HTTP server, the `process_*` metrics and the build's version.
//!
//! A role keeps its metric handles (counters and gauges are atomics, cheap to update even when
//! nobody scrapes them) and registers them in a [`Registry`] of the official
//! [`prometheus_client`] crate when asked to serve them; [`serve_metrics`] then answers
//! `/metrics` with that registry and the `process_*` metrics ([`process`]) in the OpenMetrics
//! text format, `/healthz` with `ok`, and anything else the role adds. Names follow
//! Prometheus' conventions: the prefix `zk_coffee_`, base units (seconds, bytes) named in the
//! name, counters ending in `_total` (which the encoder appends), help text on every metric,
//! and no order or customer ids as labels. (`Registry::register` ends the help text with a
//! full stop of its own: give it none.)
//!
//! - [`http`]: the HTTP server ([`HttpServer`], [`Request`], [`Response`]).
//! - [`guard`]: who may ask ([`Guard`]: a bearer token or basic auth, `/healthz` open).
//! - [`process`]: the `process_*` collector.

pub mod guard;
pub mod http;
pub mod process;

use std::sync::Arc;

use prometheus_client::encoding::text;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::registry::Registry;

pub use self::guard::{Credential, Guard};
pub use self::http::{HttpServer, Request, Response};
use crate::error::Result;
use process::ProcessCollector;

/// The `Content-Type` of what [`encode`] writes: OpenMetrics text 1.0.0, which Prometheus
/// asks for first.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric of `registry`, in the OpenMetrics text format (ending `# EOF`).
pub fn encode(registry: &Registry) -> String {
    encode_all(&[registry])
}

/// The metrics of several registries as one exposition.
fn encode_all(registries: &[&Registry]) -> String {
    let mut page = String::new();
    for registry in registries {
        // Writing into a String fails only if a metric's own encoding does: a bug.
        if let Err(e) = text::encode_registry(&mut page, registry) {
            log::error!("cannot encode the metrics: {e}");
        }
    }
    page.push_str("# EOF\n");
    page
}

/// Registers `zk_coffee_build_info{version="..."} 1`: which build runs, to join on in queries.
pub fn build_info(registry: &mut Registry) {
    let info: Family<Vec<(String, String)>, Gauge> = Family::default();
    info.get_or_create(&vec![("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned())]).set(1);
    registry.register("zk_coffee_build_info", "The version of zk-coffee running, as a label; always 1", info);
}

/// Serves `registry` on `address`: `/metrics` (the registry and the `process_*` metrics),
/// `/healthz` (`ok`), then whatever `extra` answers, else 404; every request but `/healthz`
/// first passes `guard` (else a 401, [`guard::unauthorized`]). Binds before returning, so an
/// address that cannot be used is an error here ([`HttpServer::start`]); logs (`info`) where
/// it serves.
pub fn serve_metrics(
    address: &str,
    registry: Arc<Registry>,
    guard: Guard,
    extra: impl Fn(&Request) -> Option<Response> + Send + Sync + 'static,
) -> Result<HttpServer> {
    let mut process = Registry::default();
    process.register_collector(Box::new(ProcessCollector));
    let guarded = guard.is_on();
    let server = HttpServer::start(address, move |request| {
        if !guard.admits(request) {
            return guard::unauthorized();
        }
        answer(request, &registry, &process, &extra)
    })?;
    let asking = if guarded { " (asking for credentials)" } else { "" };
    log::info!("serving metrics on http://{}/metrics{asking}", server.local_addr());
    Ok(server)
}

/// The answer of [`serve_metrics`] to `request` (once its guard let it in).
fn answer(request: &Request, registry: &Registry, process: &Registry, extra: &dyn Fn(&Request) -> Option<Response>) -> Response {
    match request.path() {
        "/metrics" | "/healthz" if !request.is_read() => Response::method_not_allowed(request),
        "/metrics" => Response::new(200, CONTENT_TYPE, encode_all(&[registry, process])),
        "/healthz" => Response::text("ok\n"),
        _ => extra(request).unwrap_or_else(|| Response::not_found(request)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn the_page_is_openmetrics_with_our_names() {
        let mut registry = Registry::default();
        let served = Counter::<u64>::default();
        registry.register("zk_coffee_test_served", "Orders served", served.clone());
        build_info(&mut registry);
        served.inc_by(3);
        let page = encode(&registry);
        assert!(page.contains("# TYPE zk_coffee_test_served counter\n"), "{page}");
        assert!(page.contains("\nzk_coffee_test_served_total 3\n"), "{page}");
        let version = env!("CARGO_PKG_VERSION");
        assert!(page.contains(&format!("\nzk_coffee_build_info{{version=\"{version}\"}} 1\n")), "{page}");
        assert!(page.ends_with("\n# EOF\n"), "{page}");
    }

    #[test]
    fn metrics_healthz_extra_and_404() {
        let registry = Registry::default();
        let mut process = Registry::default();
        process.register_collector(Box::new(ProcessCollector));
        let extra = |r: &Request| (r.path() == "/api").then(|| Response::text("api"));
        let get = |path: &str| answer(&Request::new("GET", path), &registry, &process, &extra);
        let metrics = get("/metrics");
        assert_eq!((metrics.status, metrics.content_type.as_str()), (200, CONTENT_TYPE));
        let page = String::from_utf8(metrics.body).unwrap();
        assert!(page.contains("\nprocess_resident_memory_bytes "), "{page}");
        assert!(page.contains("# UNIT process_cpu_seconds seconds\n"), "{page}");
        assert_eq!(get("/healthz"), Response::text("ok\n"));
        assert_eq!(get("/api"), Response::text("api"));
        assert_eq!(get("/nope").status, 404);
        assert_eq!(answer(&Request::new("POST", "/metrics"), &registry, &process, &extra).status, 405);
    }
}
