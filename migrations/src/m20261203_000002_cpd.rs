//! The CPD layer: member profiles, media (uploaded files and remote attachments), moderators
//! and pins, events with organisers, tasks and participants, intentions and their reminders.
//! Events and intentions are posts (they federate and are filed like any post); these tables
//! hold what is particular to them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Actors {
    Table,
    Id,
    IconUrl,
    School,
    Role,
    Email,
    ShowEmail,
}

#[derive(DeriveIden)]
enum Posts {
    Table,
    Id,
    Category,
    IsIntroduction,
}

// The table is `media` and one column `media_type`: the names are the schema's.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Media {
    Table,
    Id,
    Key,
    OwnerId,
    PostId,
    Position,
    Kind,
    MediaType,
    ByteSize,
    StorageKey,
    RemoteUrl,
    AltText,
    Width,
    Height,
    OriginalName,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CommunityModerators {
    Table,
    Id,
    CommunityId,
    ActorId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Pins {
    Table,
    Id,
    ScopeKind,
    ScopeId,
    PostId,
    PinnedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    PostId,
    StartsAt,
    EndsAt,
    Timezone,
    LocationName,
    LocationAddress,
    OnlineUrl,
    Capacity,
    PollPostId,
    Status,
    ParticipantsRefreshedAt,
}

#[derive(DeriveIden)]
enum EventOrganisers {
    Table,
    Id,
    EventPostId,
    ActorId,
}

#[derive(DeriveIden)]
enum EventTasks {
    Table,
    Id,
    EventPostId,
    Position,
    Text,
}

#[derive(DeriveIden)]
enum EventTaskTicks {
    Table,
    Id,
    TaskId,
    ActorId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Participations {
    Table,
    Id,
    PostId,
    ActorId,
    State,
    Via,
    ActivityId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Intentions {
    Table,
    PostId,
    TargetDate,
    Status,
    SourceApId,
    AchievedAt,
}

#[derive(DeriveIden)]
enum Reminders {
    Table,
    Id,
    IntentionPostId,
    ActorId,
    Kind,
    TargetDate,
    DueAt,
    SentAt,
    ClaimedAt,
    Attempts,
    LastError,
    CreatedAt,
}

fn cascade(
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        for column in [
            text_null(Actors::IconUrl),
            text_null(Actors::School),
            text_null(Actors::Role),
            text_null(Actors::Email),
            boolean(Actors::ShowEmail).default(false).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Actors::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            // discussion | resource | link | event | intention: what the filters select on.
            string(Posts::Category).default("discussion").to_owned(),
            boolean(Posts::IsIntroduction).default(false).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Posts::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_posts_category")
                    .table(Posts::Table)
                    .col(Posts::Category)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Media::Table)
                    .col(big_pk_auto(Media::Id))
                    .col(text_uniq(Media::Key))
                    .col(big_integer(Media::OwnerId))
                    .col(big_integer_null(Media::PostId))
                    .col(integer(Media::Position).default(0))
                    // image | document | avatar
                    .col(string(Media::Kind))
                    .col(text(Media::MediaType))
                    .col(big_integer(Media::ByteSize).default(0))
                    // Where a local file lives in the media store; remote media have a URL.
                    .col(text_null(Media::StorageKey))
                    .col(text_null(Media::RemoteUrl))
                    .col(text_null(Media::AltText))
                    .col(integer_null(Media::Width))
                    .col(integer_null(Media::Height))
                    .col(text_null(Media::OriginalName))
                    .col(timestamp_with_time_zone(Media::CreatedAt))
                    .foreign_key(&mut cascade(
                        (Media::Table, Media::OwnerId),
                        (Actors::Table, Actors::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (Media::Table, Media::PostId),
                        (Posts::Table, Posts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_media_post")
                    .table(Media::Table)
                    .col(Media::PostId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CommunityModerators::Table)
                    .col(big_pk_auto(CommunityModerators::Id))
                    .col(big_integer(CommunityModerators::CommunityId))
                    .col(big_integer(CommunityModerators::ActorId))
                    .col(timestamp_with_time_zone(CommunityModerators::CreatedAt))
                    .index(
                        Index::create()
                            .name("uniq_community_moderator")
                            .unique()
                            .col(CommunityModerators::CommunityId)
                            .col(CommunityModerators::ActorId),
                    )
                    .foreign_key(&mut cascade(
                        (CommunityModerators::Table, CommunityModerators::CommunityId),
                        (Actors::Table, Actors::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (CommunityModerators::Table, CommunityModerators::ActorId),
                        (Actors::Table, Actors::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Pins::Table)
                    .col(big_pk_auto(Pins::Id))
                    // community (scope_id is the Group's actor id) | event (the event's post id)
                    .col(string(Pins::ScopeKind))
                    .col(big_integer(Pins::ScopeId))
                    .col(big_integer(Pins::PostId))
                    .col(big_integer_null(Pins::PinnedBy))
                    .col(timestamp_with_time_zone(Pins::CreatedAt))
                    .index(
                        Index::create()
                            .name("uniq_pin")
                            .unique()
                            .col(Pins::ScopeKind)
                            .col(Pins::ScopeId)
                            .col(Pins::PostId),
                    )
                    .foreign_key(&mut cascade(
                        (Pins::Table, Pins::PostId),
                        (Posts::Table, Posts::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(big_integer(Events::PostId).primary_key())
                    .col(timestamp_with_time_zone(Events::StartsAt))
                    .col(timestamp_with_time_zone(Events::EndsAt))
                    // IANA name, e.g. Europe/London: what the organiser meant by the times.
                    .col(text(Events::Timezone))
                    .col(text_null(Events::LocationName))
                    .col(text_null(Events::LocationAddress))
                    .col(text_null(Events::OnlineUrl))
                    .col(integer_null(Events::Capacity))
                    // The companion poll (a Question post) Mastodon users answer to RSVP.
                    .col(big_integer_null(Events::PollPostId))
                    .col(string(Events::Status).default("scheduled"))
                    .col(timestamp_with_time_zone_null(
                        Events::ParticipantsRefreshedAt,
                    ))
                    .foreign_key(&mut cascade(
                        (Events::Table, Events::PostId),
                        (Posts::Table, Posts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_starts_at")
                    .table(Events::Table)
                    .col(Events::StartsAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EventOrganisers::Table)
                    .col(big_pk_auto(EventOrganisers::Id))
                    .col(big_integer(EventOrganisers::EventPostId))
                    .col(big_integer(EventOrganisers::ActorId))
                    .index(
                        Index::create()
                            .name("uniq_event_organiser")
                            .unique()
                            .col(EventOrganisers::EventPostId)
                            .col(EventOrganisers::ActorId),
                    )
                    .foreign_key(&mut cascade(
                        (EventOrganisers::Table, EventOrganisers::EventPostId),
                        (Posts::Table, Posts::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (EventOrganisers::Table, EventOrganisers::ActorId),
                        (Actors::Table, Actors::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EventTasks::Table)
                    .col(big_pk_auto(EventTasks::Id))
                    .col(big_integer(EventTasks::EventPostId))
                    .col(integer(EventTasks::Position))
                    .col(text(EventTasks::Text))
                    .foreign_key(&mut cascade(
                        (EventTasks::Table, EventTasks::EventPostId),
                        (Posts::Table, Posts::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EventTaskTicks::Table)
                    .col(big_pk_auto(EventTaskTicks::Id))
                    .col(big_integer(EventTaskTicks::TaskId))
                    .col(big_integer(EventTaskTicks::ActorId))
                    .col(timestamp_with_time_zone(EventTaskTicks::CreatedAt))
                    .index(
                        Index::create()
                            .name("uniq_event_task_tick")
                            .unique()
                            .col(EventTaskTicks::TaskId)
                            .col(EventTaskTicks::ActorId),
                    )
                    .foreign_key(&mut cascade(
                        (EventTaskTicks::Table, EventTaskTicks::TaskId),
                        (EventTasks::Table, EventTasks::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (EventTaskTicks::Table, EventTaskTicks::ActorId),
                        (Actors::Table, Actors::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Participations::Table)
                    .col(big_pk_auto(Participations::Id))
                    // An event's or an intention's post.
                    .col(big_integer(Participations::PostId))
                    .col(big_integer(Participations::ActorId))
                    // pending | accepted | rejected
                    .col(string(Participations::State))
                    // join (an ActivityPub Join) | poll (a Mastodon vote) | local (the API)
                    .col(string(Participations::Via))
                    .col(text_null(Participations::ActivityId))
                    .col(timestamp_with_time_zone(Participations::CreatedAt))
                    .index(
                        Index::create()
                            .name("uniq_participation")
                            .unique()
                            .col(Participations::PostId)
                            .col(Participations::ActorId),
                    )
                    .foreign_key(&mut cascade(
                        (Participations::Table, Participations::PostId),
                        (Posts::Table, Posts::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (Participations::Table, Participations::ActorId),
                        (Actors::Table, Actors::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Intentions::Table)
                    .col(big_integer(Intentions::PostId).primary_key())
                    .col(date(Intentions::TargetDate))
                    // active | achieved
                    .col(string(Intentions::Status).default("active"))
                    // The event or post the intention came from.
                    .col(text_null(Intentions::SourceApId))
                    .col(timestamp_with_time_zone_null(Intentions::AchievedAt))
                    .foreign_key(&mut cascade(
                        (Intentions::Table, Intentions::PostId),
                        (Posts::Table, Posts::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Reminders::Table)
                    .col(big_pk_auto(Reminders::Id))
                    .col(big_integer(Reminders::IntentionPostId))
                    .col(big_integer(Reminders::ActorId))
                    // before | on_day
                    .col(string(Reminders::Kind))
                    // The target date this reminder was for: moving the date schedules anew.
                    .col(date(Reminders::TargetDate))
                    .col(timestamp_with_time_zone(Reminders::DueAt))
                    .col(timestamp_with_time_zone_null(Reminders::SentAt))
                    .col(timestamp_with_time_zone_null(Reminders::ClaimedAt))
                    .col(integer(Reminders::Attempts).default(0))
                    .col(text_null(Reminders::LastError))
                    .col(timestamp_with_time_zone(Reminders::CreatedAt))
                    .index(
                        Index::create()
                            .name("uniq_reminder")
                            .unique()
                            .col(Reminders::IntentionPostId)
                            .col(Reminders::ActorId)
                            .col(Reminders::Kind)
                            .col(Reminders::TargetDate),
                    )
                    .foreign_key(&mut cascade(
                        (Reminders::Table, Reminders::IntentionPostId),
                        (Posts::Table, Posts::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (Reminders::Table, Reminders::ActorId),
                        (Actors::Table, Actors::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reminders_due")
                    .table(Reminders::Table)
                    .col(Reminders::SentAt)
                    .col(Reminders::DueAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Reminders::Table.into_iden(),
            Intentions::Table.into_iden(),
            Participations::Table.into_iden(),
            EventTaskTicks::Table.into_iden(),
            EventTasks::Table.into_iden(),
            EventOrganisers::Table.into_iden(),
            Events::Table.into_iden(),
            Pins::Table.into_iden(),
            CommunityModerators::Table.into_iden(),
            Media::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_posts_category")
                    .table(Posts::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Posts::Category.into_iden(),
            Posts::IsIntroduction.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Posts::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Actors::IconUrl.into_iden(),
            Actors::School.into_iden(),
            Actors::Role.into_iden(),
            Actors::Email.into_iden(),
            Actors::ShowEmail.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Actors::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        let _ = Posts::Id;
        let _ = Actors::Id;
        Ok(())
    }
}
