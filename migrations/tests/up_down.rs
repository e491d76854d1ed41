//! The schema applies, rolls back and applies again, on SQLite and (when
//! `CAIRN_TEST_DATABASE_URL` names one) on PostgreSQL.

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

#[tokio::test]
async fn migrations_apply_roll_back_and_apply_again() {
    let url = std::env::var("CAIRN_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "sqlite::memory:".to_owned());
    let admin = Database::connect(&url).await.expect("connect");
    let db = if url.starts_with("postgres") {
        let name = format!("cairn_migration_{}", std::process::id());
        admin
            .execute_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("DROP DATABASE IF EXISTS {name}"),
            ))
            .await
            .expect("drop old");
        admin
            .execute_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("CREATE DATABASE {name}"),
            ))
            .await
            .expect("create");
        let (base, _) = url.rsplit_once('/').expect("database url has a path");
        Database::connect(format!("{base}/{name}"))
            .await
            .expect("connect to test database")
    } else {
        admin
    };
    Migrator::up(&db, None).await.expect("up");
    assert_eq!(
        Migrator::get_applied_migrations(&db)
            .await
            .expect("applied")
            .len(),
        Migrator::migrations().len()
    );
    Migrator::down(&db, None).await.expect("down");
    assert!(Migrator::get_applied_migrations(&db)
        .await
        .expect("applied")
        .is_empty());
    Migrator::up(&db, None).await.expect("up again");
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT ap_id, kind FROM actors".to_owned(),
    ))
    .await
    .expect("the actors table exists after re-applying");
}
