//! What the library logs inside the test process, for the tests that use it directly and
//! check what it said ("said once", "a failing hook is logged"). A process has one logger, so
//! there is one capture for all of them, installed on first use; each test picks out the lines
//! naming its own server, shop or event, as tests run side by side.

use std::sync::{Mutex, OnceLock};

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.target().starts_with("zk_coffee") && metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{} {}", record.level(), record.args()));
        }
    }

    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(capture).expect("the harness installs the test process's only logger");
        log::set_max_level(log::LevelFilter::Info);
        capture
    })
}

/// Starts capturing (if not yet): call before the library does what the test will look for.
pub fn capture_library_log() {
    let _ = capture();
}

/// Every line the library logged (`LEVEL message`, `info` and above) for which `pred` holds,
/// in order.
pub fn library_log(pred: impl Fn(&str) -> bool) -> Vec<String> {
    capture().0.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|l| pred(l)).cloned().collect()
}
