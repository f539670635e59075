//! Integration tests of zk-coffee: the real binaries against real, private ZooKeeper servers.
//!
//! Every test starts its own server (see `zk_coffee_tests::ZkServer`) and runs the roles as
//! processes. Build the binaries first: `cargo build --workspace --bins` (or `scripts/test.sh`).

mod alerts;
mod args;
mod batching;
mod bench_smoke;
mod chroot;
mod customer;
mod docs;
mod election;
mod errors;
mod faults_crash;
mod faults_ensemble;
mod faults_server;
mod faults_stop;
mod fifo;
mod guard;
mod hostile;
mod load_script;
mod load_watches;
mod manager;
mod manager_alerts;
mod manager_metrics;
mod membership;
mod metrics;
mod multihost;
mod open_loop;
mod operator;
mod ops;
mod outage;
mod own_orders;
mod page;
mod properties;
mod protected_create;
mod restart;
mod scene;
mod security;
mod session;
mod shift;
mod status_all;
mod systemd;
mod tls;
mod upgrade;
mod wire_compat;
mod zookeeper_health;
