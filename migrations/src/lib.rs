//! Cairn's database schema, as sea-orm migrations. The server applies them on start.

pub use sea_orm_migration::prelude::*;

mod m20261203_000001_core;
mod m20261203_000002_cpd;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261203_000001_core::Migration),
            Box::new(m20261203_000002_cpd::Migration),
        ]
    }
}
