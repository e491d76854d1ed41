//! Storage: sea-orm entities and the queries that need hand-written SQL. SQLite by default,
//! PostgreSQL in production; the same code runs on both.

pub mod actor;
pub mod api_token;
pub mod community_moderator;
pub mod delivery;
pub mod delivery_queue;
pub mod event;
pub mod event_organiser;
pub mod event_task;
pub mod event_task_tick;
pub mod follow;
pub mod intention;
pub mod link;
pub mod media;
pub mod outbox_activity;
pub mod participation;
pub mod pin;
pub mod post;
pub mod post_community;
pub mod received_activity;
pub mod reminder;
pub mod thread_query;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use std::time::Duration;

/// Connects and applies every pending migration.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        // An in-memory database exists per connection, so it must be exactly one.
        // One connection also serialises writers, which SQLite allows only one of at a time;
        // it avoids SQLITE_BUSY from deferred transactions that upgrade to writes.
        let max = 1;
        options.max_connections(max).min_connections(1);
    } else {
        options.max_connections(16);
    }
    let db = Database::connect(options).await?;
    if db.get_database_backend() == DbBackend::Sqlite {
        // WAL lets readers (and `cairn admin`) work while the server writes.
        db.execute_unprepared(
            "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000;",
        )
        .await?;
    }
    Migrator::up(&db, None).await?;
    Ok(db)
}
