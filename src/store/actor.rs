use sea_orm::entity::prelude::*;

/// Any ActivityPub actor Cairn knows: local members, communities and the instance actor (with
/// private keys), and remote actors cached from their origin.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "actors")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub ap_id: String,
    /// `Person`, `Group`, `Application`, or whatever a remote server says (`Service`…).
    pub kind: String,
    /// `preferredUsername`, as given (display casing kept).
    pub name: String,
    /// Normalised name, for local actors only: members and communities share this namespace.
    pub local_name: Option<String>,
    pub display_name: Option<String>,
    pub summary: Option<String>,
    pub inbox: String,
    pub shared_inbox: Option<String>,
    pub outbox: Option<String>,
    pub followers_url: Option<String>,
    pub public_key_pem: String,
    pub private_key_pem: Option<String>,
    pub local: bool,
    /// `scheme://host[:port]` of `ap_id`: who may speak for this actor.
    pub origin: String,
    /// Profile photo: for a local member, the 400 px avatar in the media store.
    pub icon_url: Option<String>,
    pub school: Option<String>,
    pub role: Option<String>,
    /// A local member's email (reminders go there); shown to others only when `show_email`.
    /// For a remote actor, the contact email its profile publishes, if any.
    pub email: Option<String>,
    pub show_email: bool,
    pub last_refreshed_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
