use sea_orm::entity::prelude::*;

pub const IMAGE: &str = "image";
pub const DOCUMENT: &str = "document";
pub const AVATAR: &str = "avatar";

/// A file: uploaded here (in the media store under `storage_key`) or attached to a remote post
/// (`remote_url`, never fetched). Attached to a post once `post_id` is set.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "media")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub key: String,
    pub owner_id: i64,
    pub post_id: Option<i64>,
    pub position: i32,
    pub kind: String,
    pub media_type: String,
    pub byte_size: i64,
    pub storage_key: Option<String>,
    pub remote_url: Option<String>,
    pub alt_text: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub original_name: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
