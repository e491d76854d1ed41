//! The federation core: actors, posts and their communities, follows, links between instances,
//! the persistent outbox with its delivery queue, and the record of activities already received.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Actors {
    Table,
    Id,
    ApId,
    Kind,
    Name,
    LocalName,
    DisplayName,
    Summary,
    Inbox,
    SharedInbox,
    Outbox,
    FollowersUrl,
    PublicKeyPem,
    PrivateKeyPem,
    Local,
    Origin,
    LastRefreshedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    ActorId,
    TokenHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Posts {
    Table,
    Id,
    Key,
    ApId,
    AuthorId,
    Kind,
    Title,
    Content,
    Source,
    Summary,
    Sensitive,
    Visibility,
    InReplyTo,
    Url,
    Hashtags,
    Local,
    Published,
    Updated,
    DeletedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PostCommunities {
    Table,
    PostId,
    CommunityId,
    Announced,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Follows {
    Table,
    Id,
    FollowerId,
    TargetId,
    State,
    ActivityId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Links {
    Table,
    Id,
    BaseUrl,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OutboxActivities {
    Table,
    Id,
    ApId,
    ActorId,
    Kind,
    ObjectApId,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    ActivityId,
    Inbox,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LastError,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ReceivedActivities {
    Table,
    ApId,
    ReceivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Actors::Table)
                    .col(big_pk_auto(Actors::Id))
                    .col(text_uniq(Actors::ApId))
                    .col(string(Actors::Kind))
                    .col(text(Actors::Name))
                    // Only local actors have one; names of members and communities share it.
                    .col(text_null(Actors::LocalName).unique_key())
                    .col(text_null(Actors::DisplayName))
                    .col(text_null(Actors::Summary))
                    .col(text(Actors::Inbox))
                    .col(text_null(Actors::SharedInbox))
                    .col(text_null(Actors::Outbox))
                    .col(text_null(Actors::FollowersUrl))
                    .col(text(Actors::PublicKeyPem))
                    .col(text_null(Actors::PrivateKeyPem))
                    .col(boolean(Actors::Local))
                    .col(text(Actors::Origin))
                    .col(timestamp_with_time_zone(Actors::LastRefreshedAt))
                    .col(timestamp_with_time_zone(Actors::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(big_pk_auto(ApiTokens::Id))
                    .col(big_integer(ApiTokens::ActorId))
                    .col(text_uniq(ApiTokens::TokenHash))
                    .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiTokens::Table, ApiTokens::ActorId)
                            .to(Actors::Table, Actors::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Posts::Table)
                    .col(big_pk_auto(Posts::Id))
                    .col(text_uniq(Posts::Key))
                    .col(text_uniq(Posts::ApId))
                    .col(big_integer(Posts::AuthorId))
                    .col(string(Posts::Kind))
                    .col(text_null(Posts::Title))
                    .col(text(Posts::Content))
                    .col(text_null(Posts::Source))
                    .col(text_null(Posts::Summary))
                    .col(boolean(Posts::Sensitive))
                    .col(string(Posts::Visibility))
                    .col(text_null(Posts::InReplyTo))
                    .col(text_null(Posts::Url))
                    .col(text(Posts::Hashtags))
                    .col(boolean(Posts::Local))
                    .col(timestamp_with_time_zone(Posts::Published))
                    .col(timestamp_with_time_zone_null(Posts::Updated))
                    .col(timestamp_with_time_zone_null(Posts::DeletedAt))
                    .col(timestamp_with_time_zone(Posts::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Posts::Table, Posts::AuthorId)
                            .to(Actors::Table, Actors::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_posts_in_reply_to")
                    .table(Posts::Table)
                    .col(Posts::InReplyTo)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PostCommunities::Table)
                    .col(big_integer(PostCommunities::PostId))
                    .col(big_integer(PostCommunities::CommunityId))
                    .col(boolean(PostCommunities::Announced))
                    .col(timestamp_with_time_zone(PostCommunities::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(PostCommunities::PostId)
                            .col(PostCommunities::CommunityId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PostCommunities::Table, PostCommunities::PostId)
                            .to(Posts::Table, Posts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PostCommunities::Table, PostCommunities::CommunityId)
                            .to(Actors::Table, Actors::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_post_communities_community")
                    .table(PostCommunities::Table)
                    .col(PostCommunities::CommunityId)
                    .col(PostCommunities::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Follows::Table)
                    .col(big_pk_auto(Follows::Id))
                    .col(big_integer(Follows::FollowerId))
                    .col(big_integer(Follows::TargetId))
                    .col(string(Follows::State))
                    .col(text_null(Follows::ActivityId))
                    .col(timestamp_with_time_zone(Follows::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Follows::Table, Follows::FollowerId)
                            .to(Actors::Table, Actors::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Follows::Table, Follows::TargetId)
                            .to(Actors::Table, Actors::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_follows_pair")
                    .table(Follows::Table)
                    .col(Follows::FollowerId)
                    .col(Follows::TargetId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_follows_target")
                    .table(Follows::Table)
                    .col(Follows::TargetId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Links::Table)
                    .col(big_pk_auto(Links::Id))
                    .col(text_uniq(Links::BaseUrl))
                    .col(timestamp_with_time_zone(Links::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OutboxActivities::Table)
                    .col(big_pk_auto(OutboxActivities::Id))
                    .col(text_uniq(OutboxActivities::ApId))
                    .col(big_integer(OutboxActivities::ActorId))
                    .col(string(OutboxActivities::Kind))
                    .col(text_null(OutboxActivities::ObjectApId))
                    .col(text(OutboxActivities::Body))
                    .col(timestamp_with_time_zone(OutboxActivities::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(OutboxActivities::Table, OutboxActivities::ActorId)
                            .to(Actors::Table, Actors::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_actor")
                    .table(OutboxActivities::Table)
                    .col(OutboxActivities::ActorId)
                    .col(OutboxActivities::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_object")
                    .table(OutboxActivities::Table)
                    .col(OutboxActivities::ObjectApId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .col(big_pk_auto(Deliveries::Id))
                    .col(big_integer(Deliveries::ActivityId))
                    .col(text(Deliveries::Inbox))
                    .col(string(Deliveries::Status))
                    .col(integer(Deliveries::Attempts))
                    .col(timestamp_with_time_zone(Deliveries::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Deliveries::LockedUntil))
                    .col(text_null(Deliveries::LastError))
                    .col(timestamp_with_time_zone(Deliveries::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Deliveries::Table, Deliveries::ActivityId)
                            .to(OutboxActivities::Table, OutboxActivities::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_due")
                    .table(Deliveries::Table)
                    .col(Deliveries::Status)
                    .col(Deliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_activity")
                    .table(Deliveries::Table)
                    .col(Deliveries::ActivityId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReceivedActivities::Table)
                    .col(text(ReceivedActivities::ApId).primary_key())
                    .col(timestamp_with_time_zone(ReceivedActivities::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ReceivedActivities::Table.into_iden(),
            Deliveries::Table.into_iden(),
            OutboxActivities::Table.into_iden(),
            Links::Table.into_iden(),
            Follows::Table.into_iden(),
            PostCommunities::Table.into_iden(),
            Posts::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            Actors::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
