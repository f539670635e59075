//! Transactions (ZooKeeper `multi`): serving an order and counting its sale in one step
//! ([`Session::delete_and_set`]), and replacing a node by this session's ephemeral without a
//! moment in which it is absent ([`Session::replace_with_ephemeral`]).

use zookeeper_client as zkc;

use super::retry::{check_path, Failure};
use super::Session;
use crate::error::Result;

/// What [`Session::delete_and_set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transaction {
    /// Both happened; the set node is now at `version`.
    Done { version: i32 },
    /// Nothing happened: the node to delete at this index was gone.
    DeleteMissing { index: usize },
    /// Nothing happened: the node to delete at this index was no longer at the version given.
    DeleteMoved { index: usize },
    /// Nothing happened: the node to set was no longer at the expected version.
    VersionMoved,
}

impl Session {
    /// In one transaction: deletes every node in `deletes` (each only if still at its version,
    /// when one is given) and sets the data of `set`, if `set` is still at `version`. Either
    /// all of it happens or none.
    ///
    /// Retried on connection loss like any call; a transaction that committed before the
    /// connection dropped then reports [`Transaction::DeleteMissing`] or
    /// [`Transaction::VersionMoved`] on the retry, which the caller tells apart by reading
    /// `set` again.
    pub fn delete_and_set(&self, deletes: &[(String, Option<i32>)], set: &str, data: &[u8], version: i32) -> Result<Transaction> {
        check_path(set)?;
        deletes.iter().try_for_each(|(p, _)| check_path(p))?;
        let result = self.call(set, |c| async move {
            let mut multi = c.new_multi_writer();
            for (delete, at) in deletes {
                multi.add_delete(delete, *at)?;
            }
            multi.add_set_data(set, data, Some(version))?;
            match multi.commit().await {
                Ok(results) => Ok(Ok(results)),
                Err(zkc::MultiWriteError::RequestFailed { source }) => Err(source),
                Err(zkc::MultiWriteError::OperationFailed { index, source }) => Ok(Err((index, source))),
            }
        });
        let what = deletes.first().map_or(set, |(p, _)| p.as_str());
        match result {
            Ok(Ok(results)) => {
                let version = results
                    .iter()
                    .find_map(|r| match r {
                        zkc::MultiWriteResult::SetData { stat } => Some(stat.version),
                        _ => None,
                    })
                    .unwrap_or(version + 1);
                Ok(Transaction::Done { version })
            }
            Ok(Err((index, zkc::Error::NoNode))) if index < deletes.len() => Ok(Transaction::DeleteMissing { index }),
            Ok(Err((index, zkc::Error::BadVersion))) if index < deletes.len() => Ok(Transaction::DeleteMoved { index }),
            Ok(Err((index, zkc::Error::BadVersion | zkc::Error::NoNode))) if index == deletes.len() => {
                Ok(Transaction::VersionMoved)
            }
            Ok(Err((index, code))) => {
                let path = deletes.get(index).map_or(set, |(p, _)| p.as_str());
                Err(Failure::Zk(code).into_error("serve", path))
            }
            Err(f) => Err(f.into_error("serve", what)),
        }
    }

    /// In one transaction: deletes `path` if it is still at `version` and creates it again as
    /// an ephemeral node of this session holding `data`, so that nobody ever sees it absent.
    /// `false` if nothing happened because the node moved or went meanwhile.
    ///
    /// Retried on connection loss like any call; a transaction that committed before the
    /// connection dropped then reports `false` on the retry (the node is ours, at version 0):
    /// the caller reads the node again to tell.
    pub fn replace_with_ephemeral(&self, path: &str, version: i32, data: &[u8]) -> Result<bool> {
        let acl = self.acl_for(path);
        let options = zkc::CreateMode::Ephemeral.with_acls(zkc::Acls::new(&acl));
        let options = &options;
        let result = self.call(path, |c| async move {
            let mut multi = c.new_multi_writer();
            multi.add_delete(path, Some(version))?;
            multi.add_create(path, data, options)?;
            match multi.commit().await {
                Ok(_) => Ok(Ok(())),
                Err(zkc::MultiWriteError::RequestFailed { source }) => Err(source),
                Err(zkc::MultiWriteError::OperationFailed { index, source }) => Ok(Err((index, source))),
            }
        });
        match result {
            Ok(Ok(())) => Ok(true),
            // The delete found the node gone or changed (or a twin made it again in between).
            Ok(Err((_, zkc::Error::NoNode | zkc::Error::BadVersion | zkc::Error::NodeExists))) => Ok(false),
            Ok(Err((_, code))) => Err(Failure::Zk(code).into_error("replace", path)),
            Err(f) => Err(f.into_error("replace", path)),
        }
    }
}
