//! The persistent delivery queue's SQL: enqueue, claim due rows, record outcomes.
//! Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL so several processes can share one queue
//! and each delivery is sent once; on SQLite one process delivers.

use super::{delivery, outbox_activity};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, Set, Statement,
    TransactionTrait,
};

/// A claimed delivery, ready to sign and send.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub activity_id: i64,
    pub inbox: String,
    pub attempts: i32,
}

/// Queues `activity_id` for every inbox; the worker takes it from here.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    activity_id: i64,
    inboxes: impl IntoIterator<Item = String>,
) -> Result<usize, DbErr> {
    let now = Utc::now();
    let rows: Vec<delivery::ActiveModel> = inboxes
        .into_iter()
        .map(|inbox| delivery::ActiveModel {
            activity_id: Set(activity_id),
            inbox: Set(inbox),
            status: Set(delivery::PENDING.into()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            locked_until: Set(None),
            last_error: Set(None),
            updated_at: Set(now),
            ..Default::default()
        })
        .collect();
    let count = rows.len();
    // Chunks keep each statement under SQLite's bound-parameter limit.
    for chunk in rows.chunks(500) {
        delivery::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(count)
}

/// Claims up to `limit` due deliveries for `lease`.
pub async fn claim_due<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    limit: u64,
    lease: Duration,
) -> Result<Vec<Claimed>, DbErr> {
    let now = Utc::now();
    let until = now + lease;
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE deliveries SET locked_until = $1 WHERE id IN (\
               SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $2 \
               AND (locked_until IS NULL OR locked_until < $2) \
               ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, activity_id, inbox, attempts"
        }
        _ => {
            "UPDATE deliveries SET locked_until = $1 WHERE id IN (\
               SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $2 \
               AND (locked_until IS NULL OR locked_until < $2) \
               ORDER BY next_attempt_at, id LIMIT $3) \
             RETURNING id, activity_id, inbox, attempts"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [until.into(), now.into(), (limit as i64).into()],
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Claimed {
                id: row.try_get("", "id")?,
                activity_id: row.try_get("", "activity_id")?,
                inbox: row.try_get("", "inbox")?,
                attempts: row.try_get("", "attempts")?,
            })
        })
        .collect()
}

/// When the next pending delivery falls due, if any.
pub async fn next_due<C: ConnectionTrait>(db: &C) -> Result<Option<DateTime<Utc>>, DbErr> {
    use sea_orm::Condition;
    use sea_orm::{QueryOrder, QuerySelect};
    // Rows claimed by a worker are in flight; their outcome wakes the worker.
    let row = delivery::Entity::find()
        .filter(delivery::Column::Status.eq(delivery::PENDING))
        .filter(
            Condition::any()
                .add(delivery::Column::LockedUntil.is_null())
                .add(delivery::Column::LockedUntil.lt(Utc::now())),
        )
        .order_by_asc(delivery::Column::NextAttemptAt)
        .limit(1)
        .one(db)
        .await?;
    Ok(row.map(|d| d.next_attempt_at))
}

pub async fn mark_delivered<C: ConnectionTrait>(db: &C, ids: &[i64]) -> Result<(), DbErr> {
    for chunk in ids.chunks(500) {
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, Expr::value(delivery::DELIVERED))
            .col_expr(
                delivery::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(Utc::now()))
            .col_expr(
                delivery::Column::Attempts,
                Expr::col(delivery::Column::Attempts).add(1),
            )
            .filter(delivery::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Records a failed attempt: retried at `next`, or given up when `next` is `None`.
pub async fn record_failure<C: ConnectionTrait>(
    db: &C,
    id: i64,
    attempts: i32,
    next: Option<DateTime<Utc>>,
    error: &str,
) -> Result<(), DbErr> {
    let now = Utc::now();
    let (status, next_at) = match next {
        Some(at) => (delivery::PENDING, at),
        None => (delivery::FAILED, now),
    };
    let error: String = error.chars().take(1000).collect();
    delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(status))
        .col_expr(delivery::Column::Attempts, Expr::value(attempts))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(next_at))
        .col_expr(
            delivery::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(delivery::Column::LastError, Expr::value(error))
        .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
        .filter(delivery::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// A single SQLite process owns the whole queue, so claims left by a crash can be dropped at
/// start instead of waiting for their lease to pass.
pub async fn release_all_claims<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    delivery::Entity::update_many()
        .col_expr(
            delivery::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(delivery::Column::Status.eq(delivery::PENDING))
        .exec(db)
        .await?;
    Ok(())
}

/// Inboxes that were sent anything about `object_ap_id` (to reach them again with an
/// Update or Delete).
pub async fn inboxes_reached_for_object<C: ConnectionTrait>(
    db: &C,
    object_ap_id: &str,
) -> Result<Vec<String>, DbErr> {
    use sea_orm::QuerySelect;
    let activity_ids: Vec<i64> = outbox_activity::Entity::find()
        .select_only()
        .column(outbox_activity::Column::Id)
        .filter(outbox_activity::Column::ObjectApId.eq(object_ap_id))
        .into_tuple()
        .all(db)
        .await?;
    if activity_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut inboxes: Vec<String> = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::Inbox)
        .filter(delivery::Column::ActivityId.is_in(activity_ids))
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    inboxes.sort();
    inboxes.dedup();
    Ok(inboxes)
}
