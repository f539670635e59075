//! Watches: one-shot watches on a node, its data or its children, and persistent watches
//! on a whole tree ([`Session::watch_tree`]), which are set again after a reconnect because
//! the client crate (0.11.2) leaves them out of the watches it restores.
//!
//! Watches are delivered by running a `notify` closure on the client's executor: it must only
//! record or send, never call the session.

use std::sync::{Arc, Weak};
use std::time::Duration;

use log::debug;
use zookeeper_client as zkc;

use super::nodes::NodeData;
use super::retry::optional;
use super::Session;
use crate::error::Result;

/// Runs `notify` once when `watcher` fires, on the client's executor.
fn deliver(watcher: zkc::OneshotWatcher, notify: impl Fn() + Send + Sync + 'static) {
    let _detached = asyncs::spawn(async move {
        let _event = watcher.changed().await;
        notify();
    });
}

/// What a [`Session::watch_tree`] watch saw, with the node's full path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEvent {
    Created(String),
    Deleted(String),
    Changed(String),
    /// The watch is set again after a reconnect; changes while the connection was down were
    /// not reported.
    Restored,
}

/// Keeps a [`Session::watch_tree`] watch; dropping it removes the watch (the removal is
/// queued in the client before the drop returns, so it goes out ahead of anything sent after).
pub struct TreeWatch {
    stop: Arc<asyncs::sync::Notify>,
    /// Hears when the removal is queued (or the watch had already ended with its session).
    removed: std::sync::mpsc::Receiver<()>,
}

/// How long dropping a [`TreeWatch`] waits for its task to queue the removal: a safety net
/// against a stalled executor, not a network wait.
const TREE_WATCH_REMOVAL_WAIT: Duration = Duration::from_secs(1);

impl Drop for TreeWatch {
    fn drop(&mut self) {
        self.stop.notify_one();
        // Disconnected: the task is gone, the watch ended with its session.
        let _ = self.removed.recv_timeout(TREE_WATCH_REMOVAL_WAIT);
    }
}

impl Session {
    /// Whether `path` exists; `notify` runs once when it is created, changed or deleted, or
    /// when the session ends.
    pub fn watch_exists(&self, path: &str, notify: impl Fn() + Send + Sync + 'static) -> Result<bool> {
        let (stat, watcher) =
            self.call(path, |c| async move { c.check_and_watch_stat(path).await }).map_err(|f| f.into_error("watch", path))?;
        deliver(watcher, notify);
        Ok(stat.is_some())
    }

    /// Like [`Session::children`], and `notify` runs once when the children change (or the
    /// node goes, or the session ends).
    pub fn watch_children(&self, path: &str, notify: impl Fn() + Send + Sync + 'static) -> Result<Option<Vec<String>>> {
        match optional(self.call(path, |c| async move { c.list_and_watch_children(path).await }), "watch", path)? {
            Some((children, watcher)) => {
                deliver(watcher, notify);
                Ok(Some(children))
            }
            None => Ok(None),
        }
    }

    /// Like [`Session::data`], and `notify` runs once when the data changes (or the node is
    /// created or deleted, or the session ends).
    pub fn watch_data(&self, path: &str, notify: impl Fn() + Send + Sync + 'static) -> Result<Option<Vec<u8>>> {
        // `exists` with a watch covers a node that is absent now and created later.
        let (stat, watcher) =
            self.call(path, |c| async move { c.check_and_watch_stat(path).await }).map_err(|f| f.into_error("watch", path))?;
        deliver(watcher, notify);
        match stat {
            None => Ok(None),
            Some(_) => self.data(path),
        }
    }

    /// Like [`Session::read`]; if the node exists, `notify` runs once when its data changes or
    /// it is deleted (or the session ends), told whether it was deleted: a caller waiting for
    /// the deletion need not read again. One round trip.
    pub fn watch_read(&self, path: &str, notify: impl Fn(bool) + Send + Sync + 'static) -> Result<Option<NodeData>> {
        let result = self.call(path, |c| async move { c.get_and_watch_data(path).await });
        match optional(result, "watch", path)? {
            Some((data, stat, watcher)) => {
                let _detached = asyncs::spawn(async move {
                    let event = watcher.changed().await;
                    notify(event.event_type == zkc::EventType::NodeDeleted);
                });
                Ok(Some(NodeData::new(data, &stat)))
            }
            None => Ok(None),
        }
    }

    /// Watches `path` and every node under it (a persistent recursive watch) until the
    /// returned [`TreeWatch`] is dropped or the session ends: `notify` runs for each node
    /// created, deleted or changed there, in the order it happened, with the node's path.
    /// `path` need not exist. One round trip.
    ///
    /// After a reconnect the watch is set again and `notify` hears [`TreeEvent::Restored`]:
    /// what happened while the connection was down was not reported (ZooKeeper does not replay
    /// it for persistent watches, ZOOKEEPER-4698), so the caller looks again. (The client
    /// crate is meant to restore persistent watches itself, but 0.11.2 leaves them out of the
    /// watches it sends again after a reconnect; setting the watch again is harmless if it
    /// ever does.)
    pub fn watch_tree(&self, path: &str, notify: impl Fn(TreeEvent) + Send + Sync + 'static) -> Result<TreeWatch> {
        let generation = self.generation();
        let mut watcher = self
            .call(path, |c| async move { c.watch(path, zkc::AddWatchMode::PersistentRecursive).await })
            .map_err(|f| f.into_error("watch", path))?;
        // Not the client itself: holding it would keep the session open after `close`.
        let session = Arc::downgrade(&self.inner);
        let stop = Arc::new(asyncs::sync::Notify::new());
        let (removed_tx, removed) = std::sync::mpsc::channel();
        let stopped = Arc::clone(&stop);
        let watched = path.to_owned();
        let _detached = asyncs::spawn(async move {
            let mut restore = false;
            loop {
                let next = futures_lite::future::or(async { Some(watcher.changed().await) }, async {
                    stopped.notified().await;
                    None
                });
                let Some(event) = next.await else {
                    // Removed on purpose. The owner goes on once the removal is queued in the
                    // client (its first poll sends it), so that a new watch it sets on the same
                    // path is queued after it: the removal cannot undo the new watch.
                    #[allow(deprecated)] // dropping removes too, but without telling us when
                    let mut removal = std::pin::pin!(watcher.remove());
                    let done = futures_lite::future::poll_once(&mut removal).await;
                    let _ = removed_tx.send(());
                    if done.is_none() {
                        let _ = removal.await;
                    }
                    return;
                };
                let path = event.path;
                match event.event_type {
                    zkc::EventType::NodeCreated => notify(TreeEvent::Created(path)),
                    zkc::EventType::NodeDeleted => notify(TreeEvent::Deleted(path)),
                    zkc::EventType::NodeDataChanged => notify(TreeEvent::Changed(path)),
                    // After a terminal session state the watcher must not be asked again.
                    zkc::EventType::Session if event.session_state.is_terminated() => return,
                    zkc::EventType::Session if event.session_state == zkc::SessionState::Disconnected => restore = true,
                    zkc::EventType::Session if restore && event.session_state == zkc::SessionState::SyncConnected => {
                        // Set it again before dropping the old watcher: the client then drops
                        // the old one locally without telling the server to remove the watch.
                        let Some(client) = Weak::upgrade(&session).and_then(|inner| Session { inner }.live_client(generation))
                        else {
                            return; // closed, or a new session: this watch is over
                        };
                        match client.watch(&watched, zkc::AddWatchMode::PersistentRecursive).await {
                            Ok(again) => {
                                watcher = again;
                                restore = false;
                                notify(TreeEvent::Restored);
                            }
                            // Lost again: the next reconnect tries again.
                            Err(e) => debug!("watching {watched} again: {e}"),
                        }
                    }
                    zkc::EventType::Session | zkc::EventType::NodeChildrenChanged => {}
                }
            }
        });
        Ok(TreeWatch { stop, removed })
    }
}
