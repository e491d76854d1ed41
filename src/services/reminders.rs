//! Reminder emails for intentions, scheduled in the database.
//!
//! Every local participant (owner included) of an active intention, local or remote, who has an
//! email gets two rows in `reminders`: `before`, due at 00:00 UTC `reminders.days_before` days
//! before the target date, and `on_day`, due at 00:00 UTC on the target date (start of day, so
//! that the reminder is in the inbox when the day begins anywhere in the UK). Rows are unique by
//! (intention, actor, kind, target date): scheduling again changes nothing. Moving the date
//! marks the old date's rows inert (moving back revives them); a participant who left has their
//! rows marked inert when due (joining again revives them); an achieved intention's rows wait
//! outside the worker's batches until it is active again.
//!
//! The worker claims a due row by an `UPDATE … WHERE sent_at IS NULL AND (claimed_at IS NULL OR
//! stale)`: the update is the claim, so two processes sharing a database never both send it. It
//! sets `sent_at` after the SMTP server accepted the message, so a restart neither loses a
//! reminder (unsent rows stay due) nor repeats one (sent rows are never claimed again). A crash
//! between the server's acceptance and `sent_at` would send it again once the claim is stale:
//! at-least-once is the best SMTP allows.

use crate::{
    config::Config,
    email::{self, Email, Mailer},
    error::Result,
    federation::sanitize,
    services::intentions::{format_date, today},
    state::AppState,
    store::{actor, intention, participation, post, reminder},
};
use activitypub_federation::config::FederationConfig;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{
    sea_query::{Expr, Query},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use std::time::Duration as StdDuration;

/// Attempts before a reminder is given up (its `last_error` says why).
pub const MAX_ATTEMPTS: i32 = 5;
/// A claim older than this is taken to belong to a process that died while sending.
const STALE_CLAIM_SECS: i64 = 600;
/// The first retry waits this long; each further one twice as long.
const RETRY_BASE_SECS: i64 = 60;
/// How `last_error` begins on a row left behind by a moved target date.
const MOVED: &str = "the target date moved to";
/// How `last_error` begins on a row of a participant who left.
const LEFT: &str = "no longer takes part";
/// Rows claimed per round.
const BATCH: u64 = 50;

fn start_of(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// The reminders `(kind, due)` for a target date. A `before` reminder whose day is not before
/// the target date (an intention made for tomorrow with `days_before = 3` still gets it today;
/// one made for today does not) is left out rather than sent alongside the on-day one.
pub fn planned(
    config: &Config,
    target: NaiveDate,
    today: NaiveDate,
) -> Vec<(&'static str, DateTime<Utc>)> {
    let mut out = Vec::new();
    let days_before = i64::from(config.reminders.days_before);
    if days_before > 0 && today < target {
        out.push((
            reminder::BEFORE,
            start_of(target - Duration::days(days_before)),
        ));
    }
    out.push((reminder::ON_DAY, start_of(target)));
    out
}

/// Local participants (owner included) with an email.
async fn recipients<C: ConnectionTrait>(conn: &C, p: &post::Model) -> Result<Vec<actor::Model>> {
    let mut ids: Vec<i64> = participation::Entity::find()
        .filter(participation::Column::PostId.eq(p.id))
        .filter(participation::Column::State.eq(participation::ACCEPTED))
        .all(conn)
        .await?
        .into_iter()
        .map(|x| x.actor_id)
        .collect();
    ids.push(p.author_id);
    ids.sort_unstable();
    ids.dedup();
    Ok(actor::Entity::find()
        .filter(actor::Column::Id.is_in(ids))
        .filter(actor::Column::Local.eq(true))
        .filter(actor::Column::Email.is_not_null())
        .all(conn)
        .await?)
}

/// Creates the missing reminder rows of one intention for every local participant.
pub async fn schedule_intention<C: ConnectionTrait>(
    conn: &C,
    config: &Config,
    post_id: i64,
) -> Result<()> {
    let Some(i) = intention::Entity::find_by_id(post_id).one(conn).await? else {
        return Ok(());
    };
    if i.status != intention::ACTIVE {
        return Ok(());
    }
    let Some(p) = post::Entity::find_by_id(post_id).one(conn).await? else {
        return Ok(());
    };
    if p.deleted_at.is_some() {
        return Ok(());
    }
    // Rows for an earlier date will never be sent: saying so at once keeps the table honest
    // (the worker would also find out when they fall due).
    reminder::Entity::update_many()
        .col_expr(reminder::Column::Attempts, Expr::value(MAX_ATTEMPTS))
        .col_expr(
            reminder::Column::LastError,
            Expr::value(format!("{MOVED} {}", i.target_date)),
        )
        .filter(reminder::Column::IntentionPostId.eq(post_id))
        .filter(reminder::Column::TargetDate.ne(i.target_date))
        .filter(reminder::Column::SentAt.is_null())
        .filter(reminder::Column::Attempts.lt(MAX_ATTEMPTS))
        .exec(conn)
        .await?;
    let members = recipients(conn, &p).await?;
    // Moved back to a date it had before, or joined again after leaving: those rows come back
    // to life (they are unique by participant, kind and date, so they cannot be made anew).
    reminder::Entity::update_many()
        .col_expr(reminder::Column::Attempts, Expr::value(0))
        .col_expr(
            reminder::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            reminder::Column::ClaimedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(reminder::Column::IntentionPostId.eq(post_id))
        .filter(reminder::Column::TargetDate.eq(i.target_date))
        .filter(reminder::Column::SentAt.is_null())
        .filter(reminder::Column::ActorId.is_in(members.iter().map(|m| m.id)))
        .filter(
            Condition::any()
                .add(reminder::Column::LastError.starts_with(MOVED))
                .add(reminder::Column::LastError.starts_with(LEFT)),
        )
        .exec(conn)
        .await?;
    let existing: Vec<(i64, String)> = reminder::Entity::find()
        .filter(reminder::Column::IntentionPostId.eq(post_id))
        .filter(reminder::Column::TargetDate.eq(i.target_date))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| (r.actor_id, r.kind))
        .collect();
    let now = Utc::now();
    let plan = planned(config, i.target_date, now.date_naive());
    for member in members {
        for (kind, due) in &plan {
            if existing
                .iter()
                .any(|(actor_id, k)| *actor_id == member.id && k == kind)
            {
                continue;
            }
            reminder::Entity::insert(reminder::ActiveModel {
                intention_post_id: Set(post_id),
                actor_id: Set(member.id),
                kind: Set((*kind).into()),
                target_date: Set(i.target_date),
                due_at: Set(*due),
                sent_at: Set(None),
                claimed_at: Set(None),
                attempts: Set(0),
                last_error: Set(None),
                created_at: Set(now),
                ..Default::default()
            })
            // On the unique row, not the primary key: a reminder is never scheduled twice.
            .on_conflict_do_nothing_on([
                reminder::Column::IntentionPostId,
                reminder::Column::ActorId,
                reminder::Column::Kind,
                reminder::Column::TargetDate,
            ])
            .exec_without_returning(conn)
            .await?;
        }
    }
    Ok(())
}

/// Schedules every active intention that is not past: catches participants whose `Accept`
/// arrived later, and anything a crash interrupted.
pub async fn sweep(state: &AppState) -> Result<()> {
    let upcoming = intention::Entity::find()
        .filter(intention::Column::Status.eq(intention::ACTIVE))
        .filter(intention::Column::TargetDate.gte(today()))
        .all(&state.db)
        .await?;
    for i in upcoming {
        schedule_intention(&state.db, &state.config, i.post_id).await?;
    }
    Ok(())
}

/// Why a due row is not sent now.
enum Hold {
    /// Never to be sent (the reason is recorded).
    Inert(String),
    /// Not now, maybe later (an achieved intention may become active again).
    Wait,
}

async fn hold<C: ConnectionTrait>(conn: &C, r: &reminder::Model) -> Result<Option<Hold>> {
    let Some(i) = intention::Entity::find_by_id(r.intention_post_id)
        .one(conn)
        .await?
    else {
        return Ok(Some(Hold::Inert("the intention is gone".into())));
    };
    if i.target_date != r.target_date {
        return Ok(Some(Hold::Inert(format!("{MOVED} {}", i.target_date))));
    }
    if r.kind == reminder::BEFORE && today() >= r.target_date {
        return Ok(Some(Hold::Inert(
            "skipped: the advance reminder was only due on or after the target date".into(),
        )));
    }
    if i.status != intention::ACTIVE {
        if today() > r.target_date {
            return Ok(Some(Hold::Inert(
                "the intention was achieved before its target date".into(),
            )));
        }
        return Ok(Some(Hold::Wait));
    }
    let Some(p) = post::Entity::find_by_id(r.intention_post_id)
        .one(conn)
        .await?
    else {
        return Ok(Some(Hold::Inert("the intention is gone".into())));
    };
    if p.deleted_at.is_some() {
        return Ok(Some(Hold::Inert("the intention was deleted".into())));
    }
    if p.author_id != r.actor_id {
        let taking_part = participation::Entity::find()
            .filter(participation::Column::PostId.eq(p.id))
            .filter(participation::Column::ActorId.eq(r.actor_id))
            .filter(participation::Column::State.eq(participation::ACCEPTED))
            .one(conn)
            .await?
            .is_some();
        if !taking_part {
            return Ok(Some(Hold::Inert(LEFT.into())));
        }
    }
    Ok(None)
}

fn claimable() -> Condition {
    let stale = Utc::now() - Duration::seconds(STALE_CLAIM_SECS);
    Condition::all()
        .add(reminder::Column::SentAt.is_null())
        .add(reminder::Column::Attempts.lt(MAX_ATTEMPTS))
        .add(
            Condition::any()
                .add(reminder::Column::ClaimedAt.is_null())
                .add(reminder::Column::ClaimedAt.lt(stale)),
        )
}

/// Claims one row; `false` if another process (or an earlier round) has it.
async fn claim<C: ConnectionTrait>(conn: &C, id: i64) -> Result<bool> {
    let claimed = reminder::Entity::update_many()
        .col_expr(reminder::Column::ClaimedAt, Expr::value(Utc::now()))
        .filter(reminder::Column::Id.eq(id))
        .filter(claimable())
        .exec(conn)
        .await?;
    Ok(claimed.rows_affected == 1)
}

async fn mark_inert<C: ConnectionTrait>(conn: &C, id: i64, why: &str) -> Result<()> {
    reminder::Entity::update_many()
        .col_expr(reminder::Column::Attempts, Expr::value(MAX_ATTEMPTS))
        .col_expr(reminder::Column::LastError, Expr::value(why.to_owned()))
        .filter(reminder::Column::Id.eq(id))
        .filter(reminder::Column::SentAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// One round: claims the due rows and sends them. Returns how many were sent.
pub async fn send_due(state: &AppState, mailer: &Mailer) -> Result<usize> {
    // Rows of achieved intentions wait outside the batch, so they never crowd out due ones.
    let active = Query::select()
        .column(intention::Column::PostId)
        .from(intention::Entity)
        .and_where(intention::Column::Status.eq(intention::ACTIVE))
        .to_owned();
    let due = reminder::Entity::find()
        .filter(reminder::Column::DueAt.lte(Utc::now()))
        .filter(reminder::Column::IntentionPostId.in_subquery(active))
        .filter(claimable())
        .order_by_asc(reminder::Column::DueAt)
        .limit(BATCH)
        .all(&state.db)
        .await?;
    let mut sent = 0;
    for r in due {
        match hold(&state.db, &r).await? {
            Some(Hold::Inert(why)) => {
                mark_inert(&state.db, r.id, &why).await?;
                continue;
            }
            Some(Hold::Wait) => continue,
            None => {}
        }
        if !claim(&state.db, r.id).await? {
            continue;
        }
        let outcome = match build(state, &r).await? {
            Some(message) => mailer.send(&message).await.map_err(|e| e.to_string()),
            None => Err("the member has no email address".to_owned()),
        };
        match outcome {
            Ok(()) => {
                reminder::Entity::update_many()
                    .col_expr(reminder::Column::SentAt, Expr::value(Utc::now()))
                    .col_expr(reminder::Column::Attempts, Expr::value(r.attempts + 1))
                    .col_expr(
                        reminder::Column::LastError,
                        Expr::value(Option::<String>::None),
                    )
                    .filter(reminder::Column::Id.eq(r.id))
                    .exec(&state.db)
                    .await?;
                sent += 1;
            }
            Err(error) => {
                let attempts = r.attempts + 1;
                tracing::warn!(reminder = r.id, attempts, %error, "reminder email not sent");
                let wait = RETRY_BASE_SECS * (1_i64 << (attempts - 1).clamp(0, 10));
                reminder::Entity::update_many()
                    .col_expr(reminder::Column::Attempts, Expr::value(attempts))
                    .col_expr(reminder::Column::LastError, Expr::value(error))
                    .col_expr(
                        reminder::Column::ClaimedAt,
                        Expr::value(Option::<DateTime<Utc>>::None),
                    )
                    .col_expr(
                        reminder::Column::DueAt,
                        Expr::value(Utc::now() + Duration::seconds(wait)),
                    )
                    .filter(reminder::Column::Id.eq(r.id))
                    .exec(&state.db)
                    .await?;
            }
        }
    }
    Ok(sent)
}

/// The email for one reminder row; `None` if the member has no address.
async fn build(state: &AppState, r: &reminder::Model) -> Result<Option<Email>> {
    let Some(member) = actor::Entity::find_by_id(r.actor_id).one(&state.db).await? else {
        return Ok(None);
    };
    let Some(to) = member.email.clone() else {
        return Ok(None);
    };
    let Some(p) = post::Entity::find_by_id(r.intention_post_id)
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    let owner = actor::Entity::find_by_id(p.author_id)
        .one(&state.db)
        .await?;
    let link = if p.local {
        state.url(&format!("/p/{}", p.key))
    } else {
        p.url.clone().unwrap_or_else(|| p.ap_id.clone())
    };
    let name = member
        .display_name
        .clone()
        .or(member.local_name.clone())
        .unwrap_or_else(|| member.name.clone());
    let whose = match &owner {
        Some(o) if o.id == member.id => "your intention".to_owned(),
        Some(o) => format!(
            "the intention you share with {}",
            o.display_name.clone().unwrap_or_else(|| o.name.clone())
        ),
        None => "an intention you share".to_owned(),
    };
    let date = format_date(r.target_date);
    let days = (r.target_date - today()).num_days();
    let (subject, when) = if days < 0 {
        // Sent late (the server was down on the day): say so rather than "today".
        (
            format!("The target date of {whose} was {date}"),
            format!("The target date of {whose} was {date}."),
        )
    } else if r.kind == reminder::ON_DAY || days == 0 {
        (
            format!("Today is the target date of {whose}"),
            format!("Today, {date}, is the target date of {whose}."),
        )
    } else {
        let in_days = if days == 1 {
            "tomorrow".to_owned()
        } else {
            format!("in {days} days")
        };
        (
            format!("Reminder: {whose} is due {in_days}"),
            format!("The target date of {whose} is {in_days}, on {date}."),
        )
    };
    let intention_text = sanitize::plain(&p.content.replace("</p>", "\n\n").replace("<br>", "\n"));
    let intention_text = intention_text.trim();
    let text = format!(
        "Hello {name},\n\n{when}\n\n{intention_text}\n\nPost your progress, mark it achieved or \
         move the date: {link}\n\n-- \nCairn, {origin}\n",
        origin = state.origin()
    );
    let quoted: String = intention_text
        .split("\n\n")
        .map(|para| format!("<p>{}</p>", email::escape(para).replace('\n', "<br>")))
        .collect();
    let html = format!(
        "<p>Hello {name},</p>\n<p>{when}</p>\n<blockquote>{quoted}</blockquote>\n\
         <p><a href=\"{href}\">Post your progress, mark it achieved or move the date</a></p>\n\
         <p>Cairn, {origin}</p>\n",
        name = email::escape(&name),
        when = email::escape(&when),
        href = email::escape(&link),
        origin = email::escape(&state.origin()),
    );
    Ok(Some(Email {
        to,
        to_name: Some(name),
        subject,
        text,
        html,
    }))
}

/// Sends due reminder emails until the process ends.
pub async fn run_worker(federation: FederationConfig<AppState>) {
    let state = federation.to_request_data().app_data().clone();
    let every = StdDuration::from_secs(state.config.reminders.check_every_secs.max(1));
    let mailer = match Mailer::from_config(&state.config.email) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "email is misconfigured: reminders wait in the database");
            None
        }
    };
    if mailer.is_none() {
        tracing::info!("email is off (no email.smtp_host): reminders wait in the database");
    }
    loop {
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %e, "reminder sweep failed");
        }
        if let Some(mailer) = &mailer {
            match send_due(&state, mailer).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sent = n, "reminder emails sent"),
                Err(e) => tracing::warn!(error = %e, "reminder round failed"),
            }
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(days_before: u32) -> Config {
        let mut c = Config::default();
        c.reminders.days_before = days_before;
        c
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn before_and_on_day_at_the_start_of_the_day() {
        let plan = planned(&config(3), d("2027-03-14"), d("2027-03-01"));
        assert_eq!(
            plan,
            vec![
                (reminder::BEFORE, start_of(d("2027-03-11"))),
                (reminder::ON_DAY, start_of(d("2027-03-14"))),
            ]
        );
    }

    #[test]
    fn no_advance_reminder_on_the_day_or_when_off() {
        assert_eq!(
            planned(&config(3), d("2027-03-14"), d("2027-03-14")),
            vec![(reminder::ON_DAY, start_of(d("2027-03-14")))]
        );
        assert_eq!(
            planned(&config(0), d("2027-03-14"), d("2027-03-01")).len(),
            1
        );
        // Made the day before: the advance one is due at once, still before the day.
        assert_eq!(
            planned(&config(3), d("2027-03-14"), d("2027-03-13")).len(),
            2
        );
    }
}
