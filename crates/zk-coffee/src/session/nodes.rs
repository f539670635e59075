//! Reading and writing single nodes: the plain calls most of the shop makes, each one
//! [`Session::call`](super::Session) retried through connection loss, with ZooKeeper's
//! answers turned into `Option`s and `bool`s where the shop expects them.

use zookeeper_client as zkc;

use super::retry::{check_path, optional, Failure};
use super::Session;
use crate::error::{Error, Result};

/// A node's data with the bits of its stat the shop uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeData {
    pub data: Vec<u8>,
    pub version: i32,
    /// Last modified, in milliseconds since the Unix epoch (server clock).
    pub mtime_ms: i64,
    /// The session owning an ephemeral node (0 for a persistent one).
    pub ephemeral_owner: i64,
}

impl NodeData {
    pub(super) fn new(data: Vec<u8>, stat: &zkc::Stat) -> NodeData {
        NodeData { data, version: stat.version, mtime_ms: stat.mtime, ephemeral_owner: stat.ephemeral_owner }
    }
}

/// What [`Session::delete_if_empty`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    Absent,
    NotEmpty,
}

impl Session {
    /// Whether `path` exists.
    pub fn exists(&self, path: &str) -> Result<bool> {
        self.call(path, |c| async move { c.check_stat(path).await }).map(|s| s.is_some()).map_err(|f| f.into_error("check", path))
    }

    /// How many children each of `paths` has (`None`: it does not exist), from a cheap read
    /// of each stat; the reads are sent together (one round trip), the answers come in the
    /// same order.
    pub fn child_counts(&self, paths: &[String]) -> Result<Vec<Option<u32>>> {
        let first = paths.first().map_or("/", String::as_str);
        paths.iter().try_for_each(|p| check_path(p))?;
        self.call(first, |c| async move {
            let pending: Vec<_> = paths.iter().map(|p| c.check_stat(p)).collect();
            let mut counts = Vec::with_capacity(pending.len());
            for stat in pending {
                counts.push(stat.await?.map(|s| s.num_children.max(0) as u32));
            }
            Ok(counts)
        })
        .map_err(|f| f.into_error("check", first))
    }

    /// The names of `path`'s children (unsorted), or `None` if `path` does not exist.
    pub fn children(&self, path: &str) -> Result<Option<Vec<String>>> {
        optional(self.call(path, |c| async move { c.list_children(path).await }), "list", path)
    }

    /// The data of `path`, or `None` if it does not exist.
    pub fn data(&self, path: &str) -> Result<Option<Vec<u8>>> {
        optional(self.call(path, |c| async move { c.get_data(path).await.map(|(d, _)| d) }), "read", path)
    }

    /// When `path` was created, in milliseconds since the Unix epoch, or `None` if it does
    /// not exist.
    pub fn created_ms(&self, path: &str) -> Result<Option<i64>> {
        self.call(path, |c| async move { c.check_stat(path).await })
            .map(|stat| stat.map(|s| s.ctime))
            .map_err(|f| f.into_error("check", path))
    }

    /// The data of `path` with its version and modification time, or `None` if it does not
    /// exist.
    pub fn read(&self, path: &str) -> Result<Option<NodeData>> {
        optional(
            self.call(path, |c| async move { c.get_data(path).await.map(|(data, stat)| NodeData::new(data, &stat)) }),
            "read",
            path,
        )
    }

    /// Like [`Session::read`] for several nodes at once, in one request (a ZooKeeper multi
    /// read); the answers come in the same order. A node we may not read is an
    /// [`Error::NotAuthorized`] in its place.
    pub fn read_many(&self, paths: &[String]) -> Result<Vec<Result<Option<NodeData>>>> {
        let first = paths.first().map_or("/", String::as_str);
        paths.iter().try_for_each(|p| check_path(p))?;
        let answers = self
            .call(first, |c| async move {
                let mut reader = c.new_multi_reader();
                for path in paths {
                    reader.add_get_data(path)?;
                }
                reader.commit().await
            })
            .map_err(|f| f.into_error("read", first))?;
        Ok(answers
            .into_iter()
            .zip(paths)
            .map(|(answer, path)| {
                let answer = match answer {
                    zkc::MultiReadResult::Data { data, stat } => Ok(NodeData::new(data, &stat)),
                    zkc::MultiReadResult::Error { err } => Err(Failure::Zk(err)),
                    other => Err(Failure::Fatal(Error::internal(format!("reading {path} gave {other:?}")))),
                };
                optional(answer, "read", path)
            })
            .collect())
    }

    /// Sets the data of a persistent node, creating it if needed; `true` if it was created.
    pub fn put(&self, path: &str, data: &[u8]) -> Result<bool> {
        if self.ensure_persistent(path, data)? {
            return Ok(true);
        }
        match self.call(path, |c| async move { c.set_data(path, data, None).await }) {
            Ok(_) => Ok(false),
            Err(f) => Err(f.into_error("write", path)),
        }
    }

    /// Sets the data of `path`, whatever its version; `false` if it is gone.
    pub fn set_if_exists(&self, path: &str, data: &[u8]) -> Result<bool> {
        match self.call(path, |c| async move { c.set_data(path, data, None).await }) {
            Ok(_) => Ok(true),
            Err(Failure::Zk(zkc::Error::NoNode)) => Ok(false),
            Err(f) => Err(f.into_error("write", path)),
        }
    }

    /// Sets the data of `path` if it is still at `version`; `false` if it moved or is gone.
    pub fn set_if_version(&self, path: &str, data: &[u8], version: i32) -> Result<bool> {
        match self.call(path, |c| async move { c.set_data(path, data, Some(version)).await }) {
            Ok(_) => Ok(true),
            Err(Failure::Zk(zkc::Error::BadVersion | zkc::Error::NoNode)) => Ok(false),
            Err(f) => Err(f.into_error("write", path)),
        }
    }

    /// Creates a persistent node unless it exists; `true` if this call created it. Looks
    /// first: in a secured shop a role may lack the right to create where the node already is,
    /// and ZooKeeper checks that right before it checks for the node.
    pub fn ensure_persistent(&self, path: &str, data: &[u8]) -> Result<bool> {
        if self.exists(path)? {
            return Ok(false);
        }
        self.create(path, data, zkc::CreateMode::Persistent)
    }

    /// Creates an ephemeral node owned by the current session; `false` if a node is already
    /// there (perhaps our own, if a retry after connection loss created it: the caller checks).
    pub fn create_ephemeral(&self, path: &str, data: &[u8]) -> Result<bool> {
        self.create(path, data, zkc::CreateMode::Ephemeral)
    }

    fn create(&self, path: &str, data: &[u8], mode: zkc::CreateMode) -> Result<bool> {
        let acl = self.acl_for(path);
        let options = mode.with_acls(zkc::Acls::new(&acl));
        let options = &options;
        match self.call(path, |c| async move { c.create(path, data, options).await }) {
            Ok(_) => Ok(true),
            Err(Failure::Zk(zkc::Error::NodeExists)) => Ok(false),
            Err(f) => Err(f.into_error("create", path)),
        }
    }

    /// Deletes `path` (at `version`, if given); `false` if it was already gone.
    pub fn delete(&self, path: &str, version: Option<i32>) -> Result<bool> {
        match self.call(path, |c| async move { c.delete(path, version).await }) {
            Ok(()) => Ok(true),
            Err(Failure::Zk(zkc::Error::NoNode)) => Ok(false),
            Err(f) => Err(f.into_error("delete", path)),
        }
    }

    /// Deletes `path` only if it has no children; says which of the three outcomes happened.
    pub fn delete_if_empty(&self, path: &str) -> Result<Removal> {
        match self.call(path, |c| async move { c.delete(path, None).await }) {
            Ok(()) => Ok(Removal::Deleted),
            Err(Failure::Zk(zkc::Error::NoNode)) => Ok(Removal::Absent),
            Err(Failure::Zk(zkc::Error::NotEmpty)) => Ok(Removal::NotEmpty),
            Err(f) => Err(f.into_error("delete", path)),
        }
    }
}
