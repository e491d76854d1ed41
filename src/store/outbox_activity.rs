use sea_orm::entity::prelude::*;

/// An activity a local actor sent, kept as the exact JSON that is delivered.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_activities")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub ap_id: String,
    pub actor_id: i64,
    pub kind: String,
    /// The post (or other object) the activity is about, to find where it travelled.
    pub object_ap_id: Option<String>,
    pub body: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
