//! Cairn: federated ActivityPub communities for teachers' professional learning.
//! See ARCHITECTURE.md for the map of this crate.

pub mod cli;
pub mod config;
pub mod demo;
pub mod email;
pub mod error;
pub mod federation;
pub mod hashtag;
pub mod http;
pub mod media_store;
pub mod server;
pub mod services;
pub mod state;
pub mod store;
