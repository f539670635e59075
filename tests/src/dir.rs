//! Temporary directories that clean up after themselves.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------------------------------------
// Temporary directories

/// The directory all the harness's temporary directories go in.
pub fn temp_root() -> PathBuf {
    std::env::temp_dir().join("zk-coffee-tests")
}

/// A name no other directory of this test run (or of another running test process) has:
/// `{name}-{pid}-{counter}`.
pub fn unique_name(name: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("{clean}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// A fresh, empty temporary directory, removed (with its contents) on drop unless
/// `ZK_COFFEE_TESTS_KEEP=1`.
#[derive(Debug)]
pub struct Dir {
    path: PathBuf,
}

impl Dir {
    /// Creates `{temp}/zk-coffee-tests/{name}-{pid}-{n}`.
    pub fn new(name: &str) -> Dir {
        let path = temp_root().join(unique_name(name));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Dir { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside it.
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if std::env::var_os("ZK_COFFEE_TESTS_KEEP").is_none_or(|v| v != "1") {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The current test's name (the last part of the thread name), for directory names.
pub(crate) fn test_name() -> String {
    std::thread::current().name().unwrap_or("test").rsplit("::").next().unwrap_or("test").to_owned()
}
