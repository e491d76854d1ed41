use sea_orm::entity::prelude::*;

pub const DISCUSSION: &str = "discussion";
pub const RESOURCE: &str = "resource";
pub const LINK: &str = "link";
pub const EVENT: &str = "event";
pub const INTENTION: &str = "intention";
pub const CATEGORIES: &[&str] = &[DISCUSSION, RESOURCE, LINK, EVENT, INTENTION];

/// A post, stored once whatever number of communities it is in (see `post_community`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "posts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Local handle for API paths, for local and remote posts alike.
    #[sea_orm(unique)]
    pub key: String,
    #[sea_orm(unique)]
    pub ap_id: String,
    pub author_id: i64,
    /// `Note` or `Article`.
    pub kind: String,
    pub title: Option<String>,
    /// Sanitised HTML.
    pub content: String,
    /// What a local author typed.
    pub source: Option<String>,
    /// Content warning.
    pub summary: Option<String>,
    pub sensitive: bool,
    pub visibility: String,
    pub in_reply_to: Option<String>,
    pub url: Option<String>,
    /// JSON array of normalised hashtags.
    pub hashtags: String,
    pub local: bool,
    /// What the theme filters select on; see `CATEGORIES`.
    pub category: String,
    /// The author's introduction of themselves to the post's communities.
    pub is_introduction: bool,
    pub published: DateTimeUtc,
    pub updated: Option<DateTimeUtc>,
    pub deleted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
