//! Sending: an activity becomes an outbox row and one delivery row per inbox, in the caller's
//! transaction; the worker (`delivery`) does the rest once it is woken.

use crate::{
    error::Error,
    store::{delivery_queue, outbox_activity},
};
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use serde_json::Value;

pub fn new_activity_id(origin: &str) -> String {
    format!("{origin}/activities/{}", uuid::Uuid::new_v4())
}

/// Stores `activity` (sent by local actor `actor_id`) and queues it for `inboxes`.
/// Returns how many deliveries were queued.
pub async fn queue<C: ConnectionTrait>(
    conn: &C,
    actor_id: i64,
    activity: &Value,
    object_ap_id: Option<&str>,
    inboxes: Vec<String>,
) -> Result<usize, Error> {
    let ap_id = super::json::str_field(activity, "id")
        .ok_or_else(|| Error::Internal("outgoing activity without id".into()))?
        .to_owned();
    let kind = super::json::kind(activity).unwrap_or("Activity").to_owned();
    let body =
        serde_json::to_string(activity).map_err(|e| Error::Internal(format!("serialise: {e}")))?;
    let row = outbox_activity::ActiveModel {
        ap_id: Set(ap_id),
        actor_id: Set(actor_id),
        kind: Set(kind),
        object_ap_id: Set(object_ap_id.map(str::to_owned)),
        body: Set(body),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    let mut inboxes = inboxes;
    inboxes.sort();
    inboxes.dedup();
    Ok(delivery_queue::enqueue(conn, row.id, inboxes).await?)
}
