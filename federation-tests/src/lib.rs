//! Harness for Cairn's multi-instance federation tests.
//!
//! The tests in `tests/` start several real `cairn serve` processes on 127.0.0.1 (see
//! [`instance`]), drive them over their JSON API (see [`api`]) and the `cairn admin` CLI, and
//! watch what reaches the wider fediverse through a fake remote server that runs inside the test
//! process (see [`peer`]). Nothing here links against Cairn itself: only HTTP and the CLI.
//!
//! Build the server first (`cargo build --bin cairn`), then run
//! `cargo test -p federation-tests -- --test-threads=2`. `CAIRN_BIN` points the harness at another
//! binary; `CAIRN_FT_KEEP=1` keeps each instance's temporary directory (database and log).

pub mod activity;
pub mod api;
pub mod instance;
pub mod peer;
pub mod smtp;

use std::{
    future::Future,
    time::{Duration, Instant},
};

/// How often [`poll`] and friends look again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Calls `check` until it returns `Some`, at most for `timeout`; panics naming `what` if it never
/// does. Returns the value and how long it took.
pub async fn poll<T, F, Fut>(timeout: Duration, what: &str, check: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match try_poll(timeout, check).await {
        Some(found) => found,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Like [`poll`] but returns `None` on timeout instead of panicking.
pub async fn try_poll<T, F, Fut>(timeout: Duration, mut check: F) -> Option<(T, Duration)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Some((value, start.elapsed()));
        }
        if start.elapsed() >= timeout {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Keeps calling `check` for the whole of `period` and panics (naming `what`) the first time it
/// returns `Some`: used to prove that something does *not* happen.
pub async fn never<T: std::fmt::Debug, F, Fut>(period: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(found) = check().await {
            panic!(
                "{what} happened after {:?} but must not: {found:#?}",
                start.elapsed()
            );
        }
        if start.elapsed() >= period {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
