use sea_orm::entity::prelude::*;

pub const COMMUNITY: &str = "community";
pub const EVENT: &str = "event";

/// A post pinned at the top of a community (`scope_id` = the Group's actor id) or an event
/// (`scope_id` = the event's post id): a reflective question.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pins")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub scope_kind: String,
    pub scope_id: i64,
    pub post_id: i64,
    pub pinned_by: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
