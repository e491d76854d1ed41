//! Who an activity goes to: the remote followers of an actor, one delivery per shared inbox.

use crate::{
    error::Error,
    store::{actor, follow},
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use url::Url;

/// A remote follower's delivery address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerInbox {
    pub inbox: String,
    /// The follower's actor type: Groups (aggregating communities, Lemmy) are sent the whole
    /// activity; people are sent what Mastodon can show.
    pub kind: String,
    pub origin: String,
}

impl FollowerInbox {
    pub fn is_group_like(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "Group" | "Application" | "Service" | "Organization"
        )
    }
}

pub async fn remote_follower_inboxes<C: ConnectionTrait>(
    conn: &C,
    target_id: i64,
) -> Result<Vec<FollowerInbox>, Error> {
    let follower_ids: Vec<i64> = follow::Entity::find()
        .filter(follow::Column::TargetId.eq(target_id))
        .filter(follow::Column::State.eq(follow::ACCEPTED))
        .all(conn)
        .await?
        .into_iter()
        .map(|f| f.follower_id)
        .collect();
    if follower_ids.is_empty() {
        return Ok(Vec::new());
    }
    let followers = actor::Entity::find()
        .filter(actor::Column::Id.is_in(follower_ids))
        .filter(actor::Column::Local.eq(false))
        .all(conn)
        .await?;
    Ok(dedupe(
        followers
            .into_iter()
            .map(|f| FollowerInbox {
                inbox: f.shared_inbox.unwrap_or(f.inbox),
                kind: f.kind,
                origin: f.origin,
            })
            .collect(),
    ))
}

/// One entry per inbox; a Group-like follower behind a shared inbox decides its form.
pub fn dedupe(mut inboxes: Vec<FollowerInbox>) -> Vec<FollowerInbox> {
    inboxes.sort_by(|a, b| {
        a.inbox
            .cmp(&b.inbox)
            .then(b.is_group_like().cmp(&a.is_group_like()))
    });
    inboxes.dedup_by(|a, b| a.inbox == b.inbox);
    inboxes
}

/// Drops inboxes on the object's origin: a group never announces back to where a post began.
pub fn excluding_origin(inboxes: Vec<FollowerInbox>, object: &Url) -> Vec<FollowerInbox> {
    let origin = super::origin_of(object);
    inboxes.into_iter().filter(|i| i.origin != origin).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbox(inbox: &str, kind: &str, origin: &str) -> FollowerInbox {
        FollowerInbox {
            inbox: inbox.into(),
            kind: kind.into(),
            origin: origin.into(),
        }
    }

    #[test]
    fn shared_inboxes_get_one_delivery() {
        let list = dedupe(vec![
            inbox("https://m.example/inbox", "Person", "https://m.example"),
            inbox("https://m.example/inbox", "Person", "https://m.example"),
            inbox("https://m.example/inbox", "Group", "https://m.example"),
            inbox("https://n.example/inbox", "Person", "https://n.example"),
        ]);
        assert_eq!(list.len(), 2);
        assert!(
            list[0].is_group_like(),
            "a group behind the inbox decides the form"
        );
    }

    #[test]
    fn never_back_to_the_origin() {
        let object: Url = "https://s.example/p/1".parse().expect("url");
        let list = excluding_origin(
            vec![
                inbox("https://s.example/inbox", "Group", "https://s.example"),
                inbox("https://m.example/inbox", "Person", "https://m.example"),
            ],
            &object,
        );
        assert_eq!(
            list,
            vec![inbox(
                "https://m.example/inbox",
                "Person",
                "https://m.example"
            )]
        );
    }
}
