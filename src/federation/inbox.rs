//! Receiving: every inbound activity is signature-checked by the federation crate (digest,
//! signature, the actor fetched from its origin), then handled once.

use super::{activities, actor::DbActor, json};
use crate::{
    error::Error,
    state::AppState,
    store::{actor, received_activity},
};
use activitypub_federation::{
    axum::inbox::{receive_activity, ActivityData},
    config::Data,
    fetch::object_id::ObjectId,
    traits::Activity,
};
use chrono::Utc;
use sea_orm::{EntityTrait, Set};
use serde::{de::Error as _, Deserialize, Deserializer};
use serde_json::Value;
use url::Url;

tokio::task_local! {
    /// The local actor whose inbox the current request was sent to.
    static INBOX_OWNER: Option<actor::Model>;
}

/// Any activity, kept whole; the handler for its type reads what it needs.
#[derive(Debug)]
pub struct InboundActivity {
    id: Url,
    actor: Url,
    raw: Value,
}

impl<'de> Deserialize<'de> for InboundActivity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        if !raw.is_object() {
            return Err(D::Error::custom("an activity must be a JSON object"));
        }
        let id = json::str_field(&raw, "id")
            .ok_or_else(|| D::Error::custom("the activity has no id"))?
            .parse()
            .map_err(|e| D::Error::custom(format!("the activity id is not a URL: {e}")))?;
        let actor = raw
            .get("actor")
            .and_then(json::id_of_ref)
            .ok_or_else(|| D::Error::custom("the activity has no actor"))?;
        if json::kind(&raw).is_none() {
            return Err(D::Error::custom("the activity has no type"));
        }
        Ok(InboundActivity { id, actor, raw })
    }
}

#[async_trait::async_trait]
impl Activity for InboundActivity {
    type DataType = AppState;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.id
    }

    fn actor(&self) -> &Url {
        &self.actor
    }

    async fn verify(&self, _data: &Data<AppState>) -> Result<(), Error> {
        if !super::same_origin(&self.id, &self.actor) {
            return Err(Error::BadRequest(format!(
                "activity {} and its actor {} are on different origins",
                self.id, self.actor
            )));
        }
        Ok(())
    }

    async fn receive(self, data: &Data<AppState>) -> Result<(), Error> {
        let state = data.app_data();
        if received_activity::Entity::find_by_id(self.id.to_string())
            .one(&state.db)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let signer = ObjectId::<DbActor>::from(self.actor.clone())
            .dereference(data)
            .await?;
        let inbox_owner = INBOX_OWNER.try_with(Clone::clone).ok().flatten();
        let id = self.id.clone();
        activities::dispatch(activities::Inbound {
            data,
            id: self.id,
            raw: self.raw,
            actor: signer,
            inbox_owner,
        })
        .await?;
        received_activity::Entity::insert(received_activity::ActiveModel {
            ap_id: Set(id.to_string()),
            received_at: Set(Utc::now()),
        })
        .on_conflict_do_nothing()
        .exec(&state.db)
        .await?;
        Ok(())
    }
}

/// Verifies and handles one inbox POST for `owner`'s inbox (or the shared inbox).
pub async fn receive(
    activity: ActivityData,
    owner: Option<actor::Model>,
    data: &Data<AppState>,
) -> Result<(), Error> {
    INBOX_OWNER
        .scope(
            owner,
            receive_activity::<InboundActivity, DbActor, AppState>(activity, data),
        )
        .await
}
