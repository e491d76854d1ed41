use sea_orm::entity::prelude::*;

pub const PENDING: &str = "pending";
pub const ACCEPTED: &str = "accepted";
pub const REJECTED: &str = "rejected";

pub const VIA_JOIN: &str = "join";
pub const VIA_POLL: &str = "poll";
pub const VIA_LOCAL: &str = "local";

/// An actor taking part in an event or sharing an intention (`post_id` is either).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "participations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub post_id: i64,
    pub actor_id: i64,
    pub state: String,
    pub via: String,
    /// The Join (or vote) that asked, for matching Accept, Reject and Undo.
    pub activity_id: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
