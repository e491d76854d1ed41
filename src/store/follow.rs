use sea_orm::entity::prelude::*;

pub const PENDING: &str = "pending";
pub const ACCEPTED: &str = "accepted";

/// `follower` follows `target`; either may be local or remote.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "follows")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub follower_id: i64,
    pub target_id: i64,
    pub state: String,
    /// Id of the Follow activity, for Accept/Undo matching.
    pub activity_id: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
