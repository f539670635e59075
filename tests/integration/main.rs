//! Integration tests of zk-coffee: the real binaries against real, private ZooKeeper servers.
//!
//! Every test starts its own server (see `zk_coffee_tests::ZkServer`) and runs the roles as
//! processes. Build the binaries first: `cargo build --workspace --bins` (or `scripts/test.sh`).

mod args;
mod batching;
mod bench_smoke;
mod chroot;
mod customer;
mod docs;
mod errors;
mod faults_crash;
mod faults_ensemble;
mod faults_server;
mod faults_stop;
mod fifo;
mod hostile;
mod metrics;
mod multihost;
mod ops;
mod outage;
mod properties;
mod protected_create;
mod restart;
mod scene;
mod security;
mod session;
mod shift;
mod systemd;
mod wire_compat;
