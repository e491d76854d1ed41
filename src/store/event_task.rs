use sea_orm::entity::prelude::*;

/// One item of an event's pre-event checklist.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_tasks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub event_post_id: i64,
    pub position: i32,
    pub text: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
