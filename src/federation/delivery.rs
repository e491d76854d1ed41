//! The delivery worker: claims due rows from the persistent queue, signs and sends each one
//! through the federation crate, and records the outcome. Woken at once when deliveries are
//! queued; retries back off exponentially and are finally given up and recorded.

use super::signing::signed_headers;
use crate::{
    error::Error,
    state::AppState,
    store::{actor, delivery_queue, outbox_activity},
};
use activitypub_federation::config::{Data, FederationConfig};
use bytes::Bytes;
use chrono::{Duration as ChronoDuration, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio::sync::{mpsc, Semaphore};
use url::Url;

/// How long a claim holds a row before another worker may take it.
const LEASE_SECS: i64 = 120;
/// Rows written by another process (`cairn admin`, another server) are found by this check.
const IDLE_CHECK: Duration = Duration::from_secs(5);

enum Outcome {
    Delivered(i64),
    Failed {
        id: i64,
        attempts: i32,
        error: String,
        permanent: bool,
    },
}

/// The delay before retry number `attempt` (1-based): base, 2×base, 4×base…
pub fn retry_delay(base_secs: u64, attempt: i32) -> ChronoDuration {
    /// No single wait is longer than this, whatever the base and attempt.
    const LONGEST: u64 = 30 * 24 * 3600;
    let exponent = (attempt.max(1) - 1).min(20) as u32;
    let secs = base_secs.saturating_mul(1u64 << exponent).min(LONGEST);
    ChronoDuration::seconds(secs as i64)
}

/// Runs until the process ends.
pub async fn run_worker(federation: FederationConfig<AppState>) {
    let data = federation.to_request_data();
    let state = data.app_data().clone();
    let permits = Arc::new(Semaphore::new(state.config.delivery.concurrency));
    let (results, mut outcomes) = mpsc::unbounded_channel::<Outcome>();

    let recorder_state = state.clone();
    tokio::spawn(async move {
        let mut batch = Vec::new();
        while outcomes.recv_many(&mut batch, 1000).await > 0 {
            if let Err(e) = record(&recorder_state, &batch).await {
                tracing::error!("recording delivery outcomes failed: {e}");
            }
            batch.clear();
        }
    });

    loop {
        let free = permits.available_permits();
        let claimed = if free > 0 {
            match claim_batch(&data, free as u64).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("claiming deliveries failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        } else {
            Vec::new()
        };
        let got_some = !claimed.is_empty();
        for (claim, task) in claimed {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let data = data.clone();
            let results = results.clone();
            let wakeup = state.delivery_wakeup.clone();
            tokio::spawn(async move {
                let outcome = send_one(&data, claim, task).await;
                let _ = results.send(outcome);
                drop(permit);
                wakeup.notify_one();
            });
        }
        if got_some {
            continue;
        }
        let wait = match delivery_queue::next_due(&state.db).await {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(IDLE_CHECK),
            _ => IDLE_CHECK,
        };
        if wait.is_zero() && permits.available_permits() == 0 {
            // Everything due is in flight; a finishing send wakes us.
            state.delivery_wakeup.notified().await;
            continue;
        }
        tokio::select! {
            _ = state.delivery_wakeup.notified() => {}
            _ = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
        }
    }
}

/// Sends everything due now, in this process, and waits for the outcomes (used by `cairn admin`
/// so that its follows leave before it exits). Returns how many deliveries succeeded.
pub async fn flush(data: &Data<AppState>) -> Result<usize, Error> {
    let state = data.app_data();
    let mut delivered = 0;
    loop {
        let claimed = claim_batch(data, state.config.delivery.concurrency as u64).await?;
        if claimed.is_empty() {
            return Ok(delivered);
        }
        let outcomes = futures::future::join_all(
            claimed
                .into_iter()
                .map(|(claim, task)| send_one(data, claim, task)),
        )
        .await;
        delivered += outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Delivered(_)))
            .count();
        record(state, &outcomes).await?;
        if outcomes.iter().all(|o| !matches!(o, Outcome::Delivered(_))) {
            // Only failures: they are rescheduled for later, not retried in a loop here.
            return Ok(delivered);
        }
    }
}

/// A claimed delivery with everything needed to sign and send it, or why it cannot be sent.
type Prepared = Result<Ready, String>;

struct Ready {
    inbox: Url,
    body: Bytes,
    key: Arc<aws_lc_rs::rsa::KeyPair>,
    key_id: String,
}

async fn claim_batch(
    data: &Data<AppState>,
    limit: u64,
) -> Result<Vec<(delivery_queue::Claimed, Prepared)>, Error> {
    let state = data.app_data();
    let claims =
        delivery_queue::claim_due(&state.db, limit, ChronoDuration::seconds(LEASE_SECS)).await?;
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    let activity_ids: Vec<i64> = claims.iter().map(|c| c.activity_id).collect();
    let activities: HashMap<i64, outbox_activity::Model> = outbox_activity::Entity::find()
        .filter(outbox_activity::Column::Id.is_in(activity_ids))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let actor_ids: Vec<i64> = activities.values().map(|a| a.actor_id).collect();
    let actors: HashMap<i64, actor::Model> = actor::Entity::find()
        .filter(actor::Column::Id.is_in(actor_ids))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let mut bodies: HashMap<i64, Bytes> = HashMap::new();
    let dev_mode = state.config.dev_mode();
    let policy = state.config.policy();
    let out = claims
        .into_iter()
        .map(|claim| {
            let ready = (|| {
                let activity = activities
                    .get(&claim.activity_id)
                    .ok_or("the activity no longer exists")?;
                let actor = actors
                    .get(&activity.actor_id)
                    .ok_or("the sending actor no longer exists")?;
                let pem = actor
                    .private_key_pem
                    .as_deref()
                    .ok_or("the sending actor has no private key")?;
                let key = state.signing_keys.get_or_parse(actor.id, pem)?;
                let inbox = check_inbox(&claim.inbox, dev_mode)?;
                if !policy.allows(&inbox) {
                    return Err(crate::federation::policy::Policy::refusal(&inbox));
                }
                let body = bodies
                    .entry(activity.id)
                    .or_insert_with(|| Bytes::from(activity.body.clone()))
                    .clone();
                Ok(Ready {
                    inbox,
                    body,
                    key,
                    key_id: format!("{}#main-key", actor.ap_id),
                })
            })()
            .map_err(|e: String| e);
            (claim, ready)
        })
        .collect();
    Ok(out)
}

/// Deliveries go only to http(s) inboxes with a host name; plain http and IP addresses only in
/// development mode.
fn check_inbox(inbox: &str, dev_mode: bool) -> Result<Url, String> {
    let url = Url::parse(inbox).map_err(|e| format!("inbox {inbox} is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if dev_mode => {}
        other => return Err(format!("inbox {inbox}: scheme {other} is not allowed")),
    }
    match url.host() {
        Some(url::Host::Domain(_)) => Ok(url),
        Some(_) if dev_mode => Ok(url),
        _ => Err(format!("inbox {inbox} must name a host, not an address")),
    }
}

async fn send_one(
    data: &Data<AppState>,
    claim: delivery_queue::Claimed,
    task: Prepared,
) -> Outcome {
    let attempts = claim.attempts + 1;
    let failed = |error: String, permanent: bool| Outcome::Failed {
        id: claim.id,
        attempts,
        error,
        permanent,
    };
    let ready = match task {
        Ok(r) => r,
        Err(error) => return failed(error, true),
    };
    let headers = match signed_headers(&ready.key, &ready.key_id, &ready.inbox, &ready.body) {
        Ok(h) => h,
        Err(error) => return failed(error, true),
    };
    let state = data.app_data();
    let response = state
        .http
        .post(ready.inbox.clone())
        .headers(headers)
        .body(ready.body)
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => {
            tracing::debug!("delivered {} to {}", claim.id, claim.inbox);
            Outcome::Delivered(claim.id)
        }
        Ok(r) => {
            let status = r.status();
            let text: String = r
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            // A 4xx is the receiver's decision about this activity; sending it again would get
            // the same answer. Timeouts and rate limits are worth another try.
            let permanent = status.is_client_error()
                && status != reqwest::StatusCode::REQUEST_TIMEOUT
                && status != reqwest::StatusCode::TOO_MANY_REQUESTS;
            tracing::info!(
                "delivery {} to {} answered {status}: {text}",
                claim.id,
                claim.inbox
            );
            failed(format!("{status}: {text}"), permanent)
        }
        Err(e) => {
            tracing::info!(
                "delivery {} to {} failed (attempt {attempts}): {e}",
                claim.id,
                claim.inbox
            );
            failed(e.to_string(), false)
        }
    }
}

async fn record(state: &AppState, outcomes: &[Outcome]) -> Result<(), Error> {
    let delivered: Vec<i64> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Delivered(id) => Some(*id),
            _ => None,
        })
        .collect();
    delivery_queue::mark_delivered(&state.db, &delivered).await?;
    let config = &state.config.delivery;
    for outcome in outcomes {
        if let Outcome::Failed {
            id,
            attempts,
            error,
            permanent,
        } = outcome
        {
            let next = (!permanent && *attempts < config.max_attempts)
                .then(|| Utc::now() + retry_delay(config.retry_base_secs, *attempts));
            if next.is_none() {
                tracing::warn!("giving up delivery {id} after {attempts} attempts: {error}");
            }
            delivery_queue::record_failure(&state.db, *id, *attempts, next, error).await?;
        }
    }
    if outcomes.iter().any(|o| {
        matches!(
            o,
            Outcome::Failed {
                permanent: false,
                ..
            }
        )
    }) {
        // A retry may now be the earliest due row; let the worker recompute its wait.
        state.delivery_wakeup.notify_one();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inboxes_outside_development_mode_need_https_and_a_host_name() {
        assert!(check_inbox("https://m.example/inbox", false).is_ok());
        assert!(check_inbox("http://m.example/inbox", false).is_err());
        assert!(check_inbox("https://10.0.0.7/inbox", false).is_err());
        assert!(check_inbox("https://[::1]/inbox", false).is_err());
        assert!(check_inbox("file:///etc/passwd", false).is_err());
        assert!(check_inbox("http://localhost:8081/inbox", true).is_ok());
        assert!(check_inbox("not a url", true).is_err());
    }

    #[test]
    fn backoff_doubles_from_the_base() {
        assert_eq!(retry_delay(60, 1).num_seconds(), 60);
        assert_eq!(retry_delay(60, 2).num_seconds(), 120);
        assert_eq!(retry_delay(60, 12).num_seconds(), 60 * 2048);
        // Never overflows, however many attempts.
        assert!(retry_delay(u64::MAX, 500).num_seconds() > 0);
    }
}
