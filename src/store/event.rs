use sea_orm::entity::prelude::*;

pub const SCHEDULED: &str = "scheduled";
pub const CANCELLED: &str = "cancelled";

/// What makes a post (`post_id`, kind `Event`) a CPD event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub post_id: i64,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    /// IANA time zone name the organiser gave.
    pub timezone: String,
    pub location_name: Option<String>,
    pub location_address: Option<String>,
    pub online_url: Option<String>,
    pub capacity: Option<i32>,
    /// The companion `Question` post that Mastodon users vote in to RSVP.
    pub poll_post_id: Option<i64>,
    pub status: String,
    /// When a remote event's participant list was last read from its origin.
    pub participants_refreshed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
