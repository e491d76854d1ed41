use sea_orm::entity::prelude::*;

pub const BEFORE: &str = "before";
pub const ON_DAY: &str = "on_day";

/// One reminder email to one local participant of an intention, for one target date.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reminders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub intention_post_id: i64,
    pub actor_id: i64,
    pub kind: String,
    pub target_date: Date,
    pub due_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub claimed_at: Option<DateTimeUtc>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
