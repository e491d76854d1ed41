use sea_orm::entity::prelude::*;

pub const ACTIVE: &str = "active";
pub const ACHIEVED: &str = "achieved";

/// What makes a post an "I intend": a target date and whether it was achieved.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "intentions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub post_id: i64,
    pub target_date: Date,
    pub status: String,
    /// The event or post the intention came from.
    pub source_ap_id: Option<String>,
    pub achieved_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
