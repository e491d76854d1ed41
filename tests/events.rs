//! Events through the API: creating (with its checks), editing by organisers only, joining up
//! to capacity, participants (paged, searchable), pre-event tasks, a community's upcoming
//! events, the `Event` wire form, remote `Join`s answered by `Accept`/`Reject`, and RSVP by a
//! Mastodon poll vote in exactly the shape Mastodon sends. Run on SQLite and PostgreSQL.

mod support;

use axum::{
    extract::State,
    http::{header, StatusCode as AxumStatus},
    response::IntoResponse,
    routing::get,
    Router,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use support::{items, poll, Instance, AP_JSON, DELIVERY_TIMEOUT};

fn event_body(title: &str) -> Value {
    json!({
        "title": title,
        "description": "Bring a lesson plan. #hwb",
        "starts_at": "2030-03-05T16:00",
        "ends_at": "2030-03-05T17:30",
        "timezone": "Europe/London",
        "location_name": "Room 4, Stirling High",
        "location_address": "Torbrex Lane, Stirling FK8 2PA",
        "communities": ["hwb"],
        "tasks": ["Read the paper", "Bring a plan"],
    })
}

async fn create_event(i: &Instance, token: &str, body: Value) -> Value {
    let reply = i.post("/api/v1/events", Some(token), &body).await;
    reply.expect(StatusCode::CREATED, &format!("create event {body}"));
    reply.json
}

fn key(v: &Value) -> String {
    v["key"].as_str().expect("a key").to_owned()
}

async fn participant_names(i: &Instance, key: &str, query: &str) -> Vec<String> {
    let path = format!("/api/v1/events/{key}/participants{query}");
    let reply = i.get(&path, None).await;
    reply.expect(StatusCode::OK, &path);
    support::items(&reply.json)
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn an_event_is_checked_before_it_is_stored() {
    let i = Instance::start("ev-checks").await;
    i.community("hwb", None).await;
    let ana = i.member("ana", "Ana").await;
    let cases = [
        (
            "timezone",
            json!("Europe/Atlantis"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "IANA",
        ),
        (
            "ends_at",
            json!("2030-03-05T15:00"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "ends",
        ),
        (
            "starts_at",
            json!("next week"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a time",
        ),
        (
            "capacity",
            json!(-3),
            StatusCode::UNPROCESSABLE_ENTITY,
            "negative",
        ),
        (
            "online_url",
            json!("javascript:alert(1)"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "http",
        ),
        (
            "organisers",
            json!(["nobody"]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "nobody",
        ),
        // Clocks go forward in London at 01:00 on 31 March 2030: 01:30 never happens.
        (
            "starts_at",
            json!("2030-03-31T01:30"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "does not exist",
        ),
    ];
    for (field, value, status, says) in cases {
        let mut body = event_body("Checked");
        body[field] = value.clone();
        let reply = i.post("/api/v1/events", Some(&ana), &body).await;
        let message = reply.client_error(status, &format!("{field} = {value}"));
        assert!(message.contains(says), "{field}: {message}");
    }
    let mut nowhere = event_body("Nowhere");
    nowhere
        .as_object_mut()
        .expect("object")
        .remove("location_name");
    nowhere
        .as_object_mut()
        .expect("object")
        .remove("location_address");
    let reply = i.post("/api/v1/events", Some(&ana), &nowhere).await;
    reply.client_error(StatusCode::UNPROCESSABLE_ENTITY, "no place");
    let reply = i
        .post("/api/v1/events", Some(&ana), &json!({"title": "x"}))
        .await;
    reply.client_error(StatusCode::BAD_REQUEST, "missing fields");
    let reply = i.post("/api/v1/events", None, &event_body("Anon")).await;
    reply.client_error(StatusCode::UNAUTHORIZED, "not signed in");

    // Nothing was stored by any of those.
    let reply = i.get("/api/v1/communities/hwb/events", None).await;
    reply.expect(StatusCode::OK, "community events");
    assert_eq!(support::items(&reply.json).len(), 0, "{}", reply.text);
}

#[tokio::test]
async fn organisers_edit_others_are_refused_and_the_event_reads_back() {
    let i = Instance::start("ev-edit").await;
    i.community("hwb", None).await;
    let ana = i.member("ana", "Ana").await;
    let ben = i.member("ben", "Ben").await;
    let cat = i.member("cat", "Cat").await;
    let mut body = event_body("Outdoor maths");
    body["organisers"] = json!(["ben"]);
    body["capacity"] = json!(20);
    body["online_url"] = json!("https://meet.example/outdoor");
    let created = create_event(&i, &ana, body).await;
    let k = key(&created);
    let ev = &created["event"];
    assert_eq!(created["category"], "event");
    assert_eq!(ev["starts_at"], "2030-03-05T16:00:00Z", "{created}");
    assert_eq!(ev["timezone"], "Europe/London");
    assert_eq!(ev["capacity"], 20);
    assert_eq!(ev["remaining_places"], 20);
    assert_eq!(ev["online_url"], "https://meet.example/outdoor");
    assert_eq!(ev["tasks"].as_array().map(Vec::len), Some(2));
    let organisers: Vec<&str> = ev["organisers"]
        .as_array()
        .expect("organisers")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(organisers, ["ana", "ben"]);
    assert!(
        ev["rsvp_poll"].is_string(),
        "a public event has its poll: {ev}"
    );

    let reply = i
        .patch(
            &format!("/api/v1/events/{k}"),
            Some(&cat),
            &json!({"capacity": 2}),
        )
        .await;
    let message = reply.client_error(StatusCode::FORBIDDEN, "non-organiser edit");
    assert!(message.contains("organisers"), "{message}");
    let reply = i
        .patch(
            &format!("/api/v1/events/{k}"),
            Some(&ben),
            &json!({"title": "Outdoor maths (moved)", "ends_at": "2030-03-05T18:00", "location_name": ""}),
        )
        .await;
    reply.expect(StatusCode::OK, "organiser edit");
    assert_eq!(reply.json["title"], "Outdoor maths (moved)");
    assert_eq!(reply.json["event"]["ends_at"], "2030-03-05T18:00:00Z");
    assert_eq!(
        reply.json["event"]["location"]["name"],
        Value::Null,
        "{}",
        reply.text
    );
    let reply = i
        .patch(
            &format!("/api/v1/events/{k}"),
            Some(&ben),
            &json!({"ends_at": "2030-03-05T15:00"}),
        )
        .await;
    reply.client_error(StatusCode::UNPROCESSABLE_ENTITY, "edit: end before start");
    let reply = i
        .patch(
            &format!("/api/v1/events/{k}"),
            Some(&ben),
            &json!({"timezone": "Nowhere/Here"}),
        )
        .await;
    reply.client_error(StatusCode::UNPROCESSABLE_ENTITY, "edit: bad zone");

    // The wire form: a Mobilizon-compatible Event.
    let doc = i.get_as(&format!("/p/{k}"), AP_JSON).await;
    doc.expect(StatusCode::OK, "Event document");
    let e = &doc.json;
    assert_eq!(e["type"], "Event", "{e}");
    assert_eq!(e["name"], "Outdoor maths (moved)");
    assert_eq!(e["startTime"], "2030-03-05T16:00:00+00:00");
    assert_eq!(e["endTime"], "2030-03-05T18:00:00+00:00");
    assert_eq!(e["timezone"], "Europe/London");
    assert_eq!(e["location"]["address"]["type"], "PostalAddress");
    assert_eq!(e["maximumAttendeeCapacity"], 20);
    assert_eq!(e["participantCount"], 0);
    assert_eq!(e["joinMode"], "free");
    assert_eq!(e["commentsEnabled"], true);
    assert_eq!(e["isOnline"], true);
    let participants = e["participants"].as_str().expect("participants url");
    assert!(participants.ends_with("/participants"));
    assert!(e["attachment"].as_array().is_some_and(|a| a
        .iter()
        .any(|l| l["href"] == "https://meet.example/outdoor")));

    // Only organisers delete.
    let reply = i.delete(&format!("/api/v1/events/{k}"), Some(&cat)).await;
    reply.client_error(StatusCode::FORBIDDEN, "non-organiser delete");
    let reply = i.delete(&format!("/api/v1/events/{k}"), Some(&ben)).await;
    reply.expect(StatusCode::NO_CONTENT, "organiser delete");
    let reply = i.get(&format!("/api/v1/events/{k}"), None).await;
    reply.client_error(StatusCode::GONE, "deleted event");
}

#[tokio::test]
async fn a_full_event_refuses_more_and_a_place_frees_when_someone_leaves() {
    let i = Instance::start("ev-capacity").await;
    i.community("hwb", None).await;
    let ana = i.member("ana", "Ana").await;
    let ben = i.member("ben", "Ben").await;
    let cat = i.member("cat", "Cat").await;
    let mut body = event_body("Small group");
    body["capacity"] = json!(1);
    let k = key(&create_event(&i, &ana, body).await);
    let join = format!("/api/v1/events/{k}/join");

    let reply = i.post(&join, Some(&ben), &json!({})).await;
    reply.expect(StatusCode::OK, "ben joins");
    assert_eq!(reply.json["state"], "accepted");
    // Joining twice changes nothing.
    i.post(&join, Some(&ben), &json!({}))
        .await
        .expect(StatusCode::OK, "ben joins again");
    let reply = i.post(&join, Some(&cat), &json!({})).await;
    let message = reply.client_error(StatusCode::CONFLICT, "cat: full");
    assert!(message.contains("full"), "{message}");
    assert_eq!(participant_names(&i, &k, "").await, ["ben"]);
    let ev = i.get(&format!("/api/v1/events/{k}"), Some(&cat)).await;
    assert_eq!(ev.json["event"]["participant_count"], 1);
    assert_eq!(ev.json["event"]["remaining_places"], 0);
    assert_eq!(ev.json["participation"]["state"], "rejected");

    i.delete(&join, Some(&ben))
        .await
        .expect(StatusCode::NO_CONTENT, "ben leaves");
    i.post(&join, Some(&cat), &json!({}))
        .await
        .expect(StatusCode::OK, "cat joins the freed place");
    assert_eq!(participant_names(&i, &k, "").await, ["cat"]);
    let reply = i
        .post("/api/v1/events/no-such-key/join", Some(&cat), &json!({}))
        .await;
    reply.client_error(StatusCode::NOT_FOUND, "unknown event");
}

#[tokio::test]
async fn participants_are_paged_and_searchable_and_tasks_are_ticked() {
    let i = Instance::start("ev-participants").await;
    i.community("hwb", None).await;
    let ana = i.member("ana", "Ana").await;
    let k = key(&create_event(&i, &ana, event_body("Big group")).await);
    let mut tokens = Vec::new();
    for (name, display) in [
        ("dora", "Dora Reid"),
        ("eli", "Eli Reid"),
        ("fay", "Fay Ross"),
    ] {
        let t = i.member(name, display).await;
        i.post(&format!("/api/v1/events/{k}/join"), Some(&t), &json!({}))
            .await
            .expect(StatusCode::OK, name);
        tokens.push(t);
    }
    assert_eq!(participant_names(&i, &k, "").await, ["dora", "eli", "fay"]);
    assert_eq!(
        participant_names(&i, &k, "?search=reid").await,
        ["dora", "eli"]
    );
    assert_eq!(
        participant_names(&i, &k, "?limit=2&offset=1").await,
        ["eli", "fay"]
    );
    let reply = i
        .get(&format!("/api/v1/events/{k}/participants"), None)
        .await;
    assert_eq!(reply.json["total"], 3);
    let reply = i
        .get(
            &format!("/api/v1/events/{k}/participants?search=reid&limit=1"),
            None,
        )
        .await;
    assert_eq!(reply.json["total"], 2, "{}", reply.text);
    assert_eq!(items(&reply.json).len(), 1, "{}", reply.text);
    let reply = i
        .get(&format!("/api/v1/events/{k}/participants?limit=lots"), None)
        .await;
    reply.client_error(StatusCode::BAD_REQUEST, "bad limit");

    // Tasks: each participant ticks their own; organisers see counts.
    let tasks = i
        .get(&format!("/api/v1/events/{k}/tasks"), Some(&tokens[0]))
        .await;
    tasks.expect(StatusCode::OK, "tasks");
    let first = tasks.json["items"][0]["id"].as_i64().expect("task id");
    assert!(tasks.json["items"][0].get("done_count").is_none());
    let done = format!("/api/v1/events/{k}/tasks/{first}/done");
    i.send(reqwest::Method::PUT, &done, Some(&tokens[0]), &[], None)
        .await
        .expect(StatusCode::OK, "dora ticks");
    i.send(reqwest::Method::PUT, &done, Some(&tokens[0]), &[], None)
        .await
        .expect(StatusCode::OK, "ticking twice changes nothing");
    i.send(reqwest::Method::PUT, &done, Some(&tokens[1]), &[], None)
        .await
        .expect(StatusCode::OK, "eli ticks");
    i.delete(&done, Some(&tokens[1]))
        .await
        .expect(StatusCode::OK, "eli unticks");
    let mine = i
        .get(&format!("/api/v1/events/{k}/tasks"), Some(&tokens[0]))
        .await;
    assert_eq!(mine.json["items"][0]["done"], true);
    assert_eq!(mine.json["items"][1]["done"], false);
    let counts = i
        .get(&format!("/api/v1/events/{k}/tasks"), Some(&ana))
        .await;
    assert_eq!(counts.json["items"][0]["done_count"], 1, "{}", counts.text);
    assert_eq!(counts.json["participants"], 3);
    let outsider = i.member("gus", "Gus").await;
    let reply = i
        .send(reqwest::Method::PUT, &done, Some(&outsider), &[], None)
        .await;
    reply.client_error(StatusCode::FORBIDDEN, "a non-participant ticks");
    let reply = i
        .post(
            &format!("/api/v1/events/{k}/tasks"),
            Some(&tokens[0]),
            &json!({"text": "x"}),
        )
        .await;
    reply.client_error(StatusCode::FORBIDDEN, "a participant adds a task");
    let reply = i
        .post(
            &format!("/api/v1/events/{k}/tasks"),
            Some(&ana),
            &json!({"text": "Watch the video"}),
        )
        .await;
    reply.expect(StatusCode::CREATED, "organiser adds a task");
    let reply = i
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/events/{k}/tasks/999999/done"),
            Some(&tokens[0]),
            &[],
            None,
        )
        .await;
    reply.client_error(StatusCode::NOT_FOUND, "unknown task");
}

/// Moves event `ev` to 10 January 2020 in the database, as if it had happened.
async fn backdate(i: &Instance, ev: &Value) {
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
    let p = cairn::store::post::Entity::find()
        .filter(cairn::store::post::Column::Key.eq(key(ev)))
        .one(&i.state.db)
        .await
        .expect("read the post")
        .expect("the post");
    let row = cairn::store::event::Entity::find_by_id(p.id)
        .one(&i.state.db)
        .await
        .expect("read the event")
        .expect("the event");
    let mut row: cairn::store::event::ActiveModel = row.into();
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&chrono::Utc)
    };
    row.starts_at = Set(at("2020-01-10T10:00:00Z"));
    row.ends_at = Set(at("2020-01-10T11:00:00Z"));
    row.update(&i.state.db).await.expect("backdate");
}

/// An event that would already be over is refused; one that has happened can still be edited
/// while its times stay.
#[tokio::test]
async fn an_event_in_the_past_is_refused_but_a_past_event_stays_editable() {
    let i = Instance::start("ev-past").await;
    i.community("hwb", None).await;
    let ana = i.member("ana", "Ana").await;
    let mut body = event_body("Last term");
    body["starts_at"] = json!("2020-01-10T10:00");
    body["ends_at"] = json!("2020-01-10T11:00");
    let reply = i.post("/api/v1/events", Some(&ana), &body).await;
    let message = reply.client_error(StatusCode::UNPROCESSABLE_ENTITY, "an event in 2020");
    assert!(message.contains("already be over"), "{message}");
    let listed = i
        .get("/api/v1/communities/hwb/events?past=true", None)
        .await;
    assert!(support::items(&listed.json).is_empty(), "{}", listed.text);

    let ev = create_event(&i, &ana, event_body("Happened")).await;
    let k = key(&ev);
    let reply = i
        .patch(
            &format!("/api/v1/events/{k}"),
            Some(&ana),
            &json!({"starts_at": "2020-01-10T10:00", "ends_at": "2020-01-10T11:00"}),
        )
        .await;
    reply.client_error(StatusCode::UNPROCESSABLE_ENTITY, "moved into the past");
    backdate(&i, &ev).await;
    let reply = i
        .patch(
            &format!("/api/v1/events/{k}"),
            Some(&ana),
            &json!({"description": "Notes from the day. #hwb"}),
        )
        .await;
    reply.expect(StatusCode::OK, "edit a past event, times kept");
    assert_eq!(reply.json["event"]["ends_at"], "2020-01-10T11:00:00Z");
}

#[tokio::test]
async fn a_community_lists_its_upcoming_events_as_each_reader_may_see_them() {
    let i = Instance::start("ev-upcoming").await;
    i.community("hwb", None).await;
    let ana = i.member("ana", "Ana").await;
    let mut later = event_body("Later");
    later["starts_at"] = json!("2031-01-10T10:00");
    later["ends_at"] = json!("2031-01-10T11:00");
    create_event(&i, &ana, later).await;
    create_event(&i, &ana, event_body("Sooner")).await;
    // An event is created for dates to come; one that has happened is made by moving its row.
    let past = create_event(&i, &ana, event_body("Past")).await;
    backdate(&i, &past).await;
    let mut staff = event_body("Staff only");
    staff["visibility"] = json!("authority");
    create_event(&i, &ana, staff).await;

    let titles = |v: &Value| -> Vec<String> {
        support::items(v)
            .iter()
            .map(|p| p["title"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let anon = i.get("/api/v1/communities/hwb/events", None).await;
    anon.expect(StatusCode::OK, "anonymous");
    assert_eq!(titles(&anon.json), ["Sooner", "Later"]);
    let member = i.get("/api/v1/communities/hwb/events", Some(&ana)).await;
    assert_eq!(titles(&member.json), ["Sooner", "Staff only", "Later"]);
    let all = i
        .get("/api/v1/communities/hwb/events?past=true", None)
        .await;
    assert_eq!(titles(&all.json), ["Past", "Sooner", "Later"]);
    let reply = i.get("/api/v1/communities/nope/events", None).await;
    reply.client_error(StatusCode::NOT_FOUND, "unknown community");
}

// ---------------------------------------------------------------------------------------------
// A remote actor (a stand-in for a Mastodon account): serves its actor document, records what
// its inbox receives, and signs what it sends.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct RemoteState {
    received: Arc<Mutex<Vec<Value>>>,
    /// Documents served at `/events/{id}`.
    events: Arc<Mutex<std::collections::HashMap<String, Value>>>,
}

struct Remote {
    origin: String,
    actor_id: String,
    key_pem: String,
    received: Arc<Mutex<Vec<Value>>>,
    events: Arc<Mutex<std::collections::HashMap<String, Value>>>,
    http: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

impl Remote {
    async fn start(name: &str) -> Remote {
        let keys =
            activitypub_federation::http_signatures::generate_actor_keypair().expect("a key pair");
        let port = support::free_port();
        let origin = format!("http://localhost:{port}");
        let actor_id = format!("{origin}/users/{name}");
        let doc = json!({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": actor_id,
            "type": "Person",
            "preferredUsername": name,
            "name": format!("{name} on Mastodon"),
            "inbox": format!("{actor_id}/inbox"),
            "outbox": format!("{actor_id}/outbox"),
            "followers": format!("{actor_id}/followers"),
            "publicKey": {"id": format!("{actor_id}#main-key"), "owner": actor_id, "publicKeyPem": keys.public_key},
        });
        let shared = RemoteState::default();
        let app = Router::new()
            .route(
                &format!("/users/{name}"),
                get(move || {
                    let doc = doc.clone();
                    async move { ([(header::CONTENT_TYPE, AP_JSON)], doc.to_string()) }
                }),
            )
            .route(
                &format!("/users/{name}/inbox"),
                axum::routing::post(|State(r): State<RemoteState>, body: String| async move {
                    if let Ok(v) = serde_json::from_str(&body) {
                        r.received.lock().expect("inbox log").push(v);
                    }
                    AxumStatus::ACCEPTED.into_response()
                }),
            )
            .route(
                "/events/{id}",
                get(
                    |State(r): State<RemoteState>,
                     axum::extract::Path(id): axum::extract::Path<String>| async move {
                        match r.events.lock().expect("events").get(&id) {
                            Some(doc) => {
                                ([(header::CONTENT_TYPE, AP_JSON)], doc.to_string()).into_response()
                            }
                            None => AxumStatus::NOT_FOUND.into_response(),
                        }
                    },
                ),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the remote");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Remote {
            origin,
            actor_id,
            key_pem: keys.private_key,
            received: shared.received,
            events: shared.events,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            _server: server,
        }
    }

    /// POSTs `activity`, signed, to the instance's shared inbox; returns the status.
    async fn send(&self, i: &Instance, activity: &Value) -> (StatusCode, String) {
        let body = serde_json::to_vec(activity).expect("json");
        let inbox: url::Url = format!("{}/inbox", i.origin).parse().expect("url");
        let key = cairn::federation::signing::parse_pkcs8_pem(&self.key_pem).expect("key");
        let headers = cairn::federation::signing::signed_headers(
            &key,
            &format!("{}#main-key", self.actor_id),
            &inbox,
            &body,
        )
        .expect("signed");
        let mut request = self.http.post(format!("{}/inbox", i.base)).body(body);
        for (name, value) in headers.iter() {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("the inbox answers");
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }

    fn received_of(&self, kind: &str) -> Vec<Value> {
        self.received
            .lock()
            .expect("inbox log")
            .iter()
            .filter(|a| a["type"] == kind)
            .cloned()
            .collect()
    }

    /// A poll vote exactly as Mastodon (app/serializers/activitypub/vote_serializer.rb) sends it.
    fn vote(&self, n: u32, option: &str, poll_id: &str, poll_author: &str) -> Value {
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{}#votes/{n}/activity", self.actor_id),
            "type": "Create",
            "actor": self.actor_id,
            "to": poll_author,
            "object": {
                "id": format!("{}#votes/{n}", self.actor_id),
                "type": "Note",
                "name": option,
                "attributedTo": self.actor_id,
                "to": poll_author,
                "inReplyTo": poll_id,
            }
        })
    }
}

async fn poll_counts(i: &Instance, poll_id: &str) -> (u64, u64) {
    let path = poll_id.strip_prefix(&i.origin).expect("a local poll");
    let doc = i.get_as(path, AP_JSON).await;
    doc.expect(StatusCode::OK, "Question document");
    assert_eq!(doc.json["type"], "Question", "{}", doc.text);
    let count = |name: &str| {
        doc.json["oneOf"]
            .as_array()
            .and_then(|o| o.iter().find(|x| x["name"] == name))
            .and_then(|x| x["replies"]["totalItems"].as_u64())
            .unwrap_or_else(|| panic!("no option {name} in {}", doc.text))
    };
    (count("Going"), count("Not going"))
}

#[tokio::test]
async fn a_mastodon_vote_in_the_companion_poll_is_an_rsvp() {
    let i = Instance::start("ev-vote").await;
    i.community("hwb", None).await;
    let ana = i.member("ana", "Ana").await;
    let ben = i.member("ben", "Ben").await;
    let mut body = event_body("Poll RSVP");
    body["capacity"] = json!(2);
    let created = create_event(&i, &ana, body).await;
    let k = key(&created);
    let poll_id = created["event"]["rsvp_poll"]
        .as_str()
        .expect("a poll")
        .to_owned();
    let author = i.id("/u/ana");
    let event_doc = i.get_as(&format!("/p/{k}"), AP_JSON).await;
    assert_eq!(event_doc.json["cairn:rsvpPoll"], poll_id.as_str());
    let (going, not_going) = poll_counts(&i, &poll_id).await;
    assert_eq!((going, not_going), (0, 0));

    let alice = Remote::start("alice").await;
    let (status, text) = alice
        .send(&i, &alice.vote(1, "Going", &poll_id, &author))
        .await;
    assert!(status.is_success(), "vote: {status} {text}");
    assert_eq!(participant_names(&i, &k, "").await, ["alice"]);
    let listed = i
        .get(&format!("/api/v1/events/{k}/participants"), None)
        .await;
    assert_eq!(listed.json["items"][0]["via"], "poll");
    assert_eq!(listed.json["items"][0]["local"], false);
    assert_eq!(poll_counts(&i, &poll_id).await, (1, 0));
    // The same vote delivered twice counts once.
    alice
        .send(&i, &alice.vote(1, "Going", &poll_id, &author))
        .await;
    assert_eq!(poll_counts(&i, &poll_id).await, (1, 0));

    // An option the poll does not have is refused and changes nothing.
    let bob = Remote::start("bob").await;
    let (status, text) = bob.send(&i, &bob.vote(1, "Maybe", &poll_id, &author)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert_eq!(participant_names(&i, &k, "").await, ["alice"]);

    // Ben fills the last place; a further "Going" is not a place.
    i.post(&format!("/api/v1/events/{k}/join"), Some(&ben), &json!({}))
        .await
        .expect(StatusCode::OK, "ben joins");
    let (status, _) = bob.send(&i, &bob.vote(2, "Going", &poll_id, &author)).await;
    assert!(status.is_success());
    assert_eq!(participant_names(&i, &k, "").await, ["alice", "ben"]);
    assert_eq!(poll_counts(&i, &poll_id).await, (2, 0));

    // "Not going" gives the place up.
    alice
        .send(&i, &alice.vote(2, "Not going", &poll_id, &author))
        .await;
    assert_eq!(participant_names(&i, &k, "").await, ["ben"]);
    assert_eq!(poll_counts(&i, &poll_id).await, (1, 1));
    let e = i.get_as(&format!("/p/{k}"), AP_JSON).await;
    assert_eq!(e.json["participantCount"], 1);
    assert_eq!(e.json["remainingAttendeeCapacity"], 1);
}

#[tokio::test]
async fn a_remote_join_is_accepted_until_the_event_is_full_then_rejected() {
    let i = Instance::start("ev-join").await;
    i.community("hwb", None).await;
    let ana = i.member("ana", "Ana").await;
    let mut body = event_body("Remote joins");
    body["capacity"] = json!(1);
    let created = create_event(&i, &ana, body).await;
    let k = key(&created);
    let event_id = created["id"].as_str().expect("id").to_owned();
    let carol = Remote::start("carol").await;
    let dave = Remote::start("dave").await;
    let join = |r: &Remote, n: u32| {
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{}/join/{n}", r.actor_id),
            "type": "Join",
            "actor": r.actor_id,
            "object": event_id,
        })
    };
    let (status, text) = carol.send(&i, &join(&carol, 1)).await;
    assert!(status.is_success(), "{status} {text}");
    let accept = poll("an Accept reaches carol", DELIVERY_TIMEOUT, || async {
        carol.received_of("Accept").into_iter().next()
    })
    .await;
    assert_eq!(accept["object"]["id"], format!("{}/join/1", carol.actor_id));
    assert_eq!(accept["actor"], i.id("/u/ana"));
    // The participant is told of the new count too.
    let update = poll("an Update reaches carol", DELIVERY_TIMEOUT, || async {
        carol.received_of("Update").into_iter().last()
    })
    .await;
    assert_eq!(update["object"]["participantCount"], 1, "{update}");

    let (status, _) = dave.send(&i, &join(&dave, 1)).await;
    assert!(status.is_success());
    let reject = poll("a Reject reaches dave", DELIVERY_TIMEOUT, || async {
        dave.received_of("Reject").into_iter().next()
    })
    .await;
    assert_eq!(reject["object"]["type"], "Join");
    assert_eq!(participant_names(&i, &k, "").await, ["carol"]);

    // The participants collection is what other instances mirror.
    let c = i.get_as(&format!("/p/{k}/participants"), AP_JSON).await;
    c.expect(StatusCode::OK, "participants collection");
    assert_eq!(c.json["totalItems"], 1);
    assert_eq!(c.json["orderedItems"][0], carol.actor_id.as_str());

    // Undo of the Join (as Mastodon-style servers leave) frees the place; Leave works too.
    let undo = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/undo/1", carol.actor_id),
        "type": "Undo",
        "actor": carol.actor_id,
        "object": join(&carol, 1),
    });
    let (status, text) = carol.send(&i, &undo).await;
    assert!(status.is_success(), "{status} {text}");
    assert!(participant_names(&i, &k, "").await.is_empty());
    let (status, _) = dave.send(&i, &join(&dave, 2)).await;
    assert!(status.is_success());
    assert_eq!(participant_names(&i, &k, "").await, ["dave"]);
    let leave = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/leave/1", dave.actor_id),
        "type": "Leave",
        "actor": dave.actor_id,
        "object": event_id,
    });
    let (status, _) = dave.send(&i, &leave).await;
    assert!(status.is_success());
    assert!(participant_names(&i, &k, "").await.is_empty());

    // A Join of something that is not an event is refused.
    let note = i
        .create_post(&ana, json!({"content": "just a note #hwb"}))
        .await;
    let wrong = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/join/9", dave.actor_id),
        "type": "Join",
        "actor": dave.actor_id,
        "object": note["id"],
    });
    let (status, _) = dave.send(&i, &wrong).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // An authority event does not exist outside the instance; a members one lists no one there.
    for (visibility, n) in [("authority", 10), ("members", 11)] {
        let mut body = event_body(visibility);
        body["visibility"] = json!(visibility);
        let hidden = create_event(&i, &ana, body).await;
        let (status, text) = dave
            .send(
                &i,
                &json!({
                    "@context": "https://www.w3.org/ns/activitystreams",
                    "id": format!("{}/join/{n}", dave.actor_id),
                    "type": "Join",
                    "actor": dave.actor_id,
                    "object": hidden["id"],
                }),
            )
            .await;
        if visibility == "authority" {
            assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
        }
        assert!(
            hidden["event"]["rsvp_poll"].is_null(),
            "no public poll for {visibility}"
        );
        let c = i
            .get_as(&format!("/p/{}/participants", key(&hidden)), AP_JSON)
            .await;
        c.client_error(
            StatusCode::NOT_FOUND,
            "a non-public participants collection",
        );
    }
}

/// A Mobilizon event (the real document in fixtures/, moved to the stand-in's origin) is read
/// with its times, place and zone; a member joining it is pending until the origin's Accept.
#[tokio::test]
async fn a_mobilizon_event_is_stored_as_an_event_and_joined_by_join() {
    let i = Instance::start("ev-mobilizon").await;
    let ana = i.member("ana", "Ana").await;
    let mobilizon = Remote::start("organiser").await;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/fediverse/mobilizon-event.json"
    ))
    .expect("the Mobilizon fixture");
    let mut doc: Value = serde_json::from_str(&text).expect("json");
    let event_id = format!("{}/events/b81c0531", mobilizon.origin);
    doc["id"] = json!(event_id);
    doc["url"] = json!(event_id);
    doc["attributedTo"] = json!(mobilizon.actor_id);
    doc["actor"] = json!(mobilizon.actor_id);
    doc["startTime"] = json!("2030-12-11T19:00:00+00:00");
    doc["endTime"] = json!("2030-12-11T21:00:00+00:00");
    doc["maximumAttendeeCapacity"] = json!(40);
    mobilizon
        .events
        .lock()
        .expect("events")
        .insert("b81c0531".into(), doc);

    let spec: String = event_id
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let reply = i.get(&format!("/api/v1/events/{spec}"), Some(&ana)).await;
    reply.expect(StatusCode::OK, "the Mobilizon event read by id");
    let ev = &reply.json["event"];
    assert_eq!(reply.json["category"], "event", "{}", reply.text);
    assert_eq!(reply.json["title"], "Note plan garden learning");
    assert_eq!(ev["starts_at"], "2030-12-11T19:00:00Z");
    assert_eq!(ev["timezone"], "Europe/London");
    assert_eq!(ev["capacity"], 40);
    assert_eq!(ev["location"]["name"], "The Kenn Centre");

    let joined = i
        .post(
            &format!("/api/v1/events/{spec}/join"),
            Some(&ana),
            &json!({}),
        )
        .await;
    joined.expect(StatusCode::OK, "join a remote event");
    assert_eq!(joined.json["state"], "pending");
    let join = poll("the Join reaches Mobilizon", DELIVERY_TIMEOUT, || async {
        mobilizon.received_of("Join").into_iter().next()
    })
    .await;
    assert_eq!(join["object"], event_id.as_str());
    assert_eq!(join["actor"], i.id("/u/ana"));
    let accept = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/accept/1", mobilizon.origin),
        "type": "Accept",
        "actor": mobilizon.actor_id,
        "object": join["id"],
    });
    let (status, text) = mobilizon.send(&i, &accept).await;
    assert!(status.is_success(), "{status} {text}");
    let reply = i.get(&format!("/api/v1/events/{spec}"), Some(&ana)).await;
    assert_eq!(
        reply.json["participation"]["state"], "accepted",
        "{}",
        reply.text
    );

    // Leaving sends a Leave to the origin.
    i.delete(&format!("/api/v1/events/{spec}/join"), Some(&ana))
        .await
        .expect(StatusCode::NO_CONTENT, "leave");
    poll("the Leave reaches Mobilizon", DELIVERY_TIMEOUT, || async {
        mobilizon.received_of("Leave").into_iter().next()
    })
    .await;
}

/// A cancelled event takes no one: a local join is 409, a remote Join is answered by a Reject.
#[tokio::test]
async fn a_cancelled_event_takes_no_participants() {
    let i = Instance::start("ev-cancelled").await;
    i.community("hwb", None).await;
    let ana = i.member("ana", "Ana").await;
    let ben = i.member("ben", "Ben").await;
    let created = create_event(&i, &ana, event_body("Called off")).await;
    let k = key(&created);
    i.patch(
        &format!("/api/v1/events/{k}"),
        Some(&ana),
        &json!({"status": "cancelled"}),
    )
    .await
    .expect(StatusCode::OK, "cancel");
    let reply = i
        .post(&format!("/api/v1/events/{k}/join"), Some(&ben), &json!({}))
        .await;
    let message = reply.client_error(StatusCode::CONFLICT, "join a cancelled event");
    assert!(message.contains("cancelled"), "{message}");
    let reply = i
        .patch(
            &format!("/api/v1/events/{k}"),
            Some(&ana),
            &json!({"status": "postponed"}),
        )
        .await;
    reply.client_error(StatusCode::UNPROCESSABLE_ENTITY, "unknown status");

    let erin = Remote::start("erin").await;
    let (status, text) = erin
        .send(
            &i,
            &json!({
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": format!("{}/join/1", erin.actor_id),
                "type": "Join",
                "actor": erin.actor_id,
                "object": created["id"],
            }),
        )
        .await;
    assert!(status.is_success(), "{status} {text}");
    poll("a Reject reaches erin", DELIVERY_TIMEOUT, || async {
        erin.received_of("Reject").into_iter().next()
    })
    .await;
    assert!(participant_names(&i, &k, "").await.is_empty());
    let doc = i.get_as(&format!("/p/{k}"), AP_JSON).await;
    assert_eq!(doc.json["ical:status"], "CANCELLED");
}

/// The companion poll follows its event: moving the event rewrites the poll's text and its
/// `endTime`; cancelling it closes the poll and says so.
#[tokio::test]
async fn the_companion_poll_follows_a_moved_or_cancelled_event() {
    let i = Instance::start("ev-poll-follows").await;
    i.community("hwb", None).await;
    let ana = i.member("ana", "Ana").await;
    let created = create_event(&i, &ana, event_body("Outdoor maths")).await;
    let k = key(&created);
    let poll_id = created["event"]["rsvp_poll"]
        .as_str()
        .expect("a poll")
        .to_owned();
    let path = poll_id.strip_prefix(&i.origin).expect("a local poll");
    let doc = i.get_as(path, AP_JSON).await;
    let text = doc.json["content"].as_str().unwrap_or_default().to_owned();
    assert!(text.contains("Tuesday 5 March 2030, 16:00"), "{}", doc.text);

    i.patch(
        &format!("/api/v1/events/{k}"),
        Some(&ana),
        &json!({"starts_at": "2030-03-08T10:00", "ends_at": "2030-03-08T12:00"}),
    )
    .await
    .expect(StatusCode::OK, "move the event");
    let doc = i.get_as(path, AP_JSON).await;
    let text = doc.json["content"].as_str().unwrap_or_default();
    assert!(text.contains("Friday 8 March 2030, 10:00"), "{}", doc.text);
    assert!(!text.contains("5 March"), "{}", doc.text);
    assert_eq!(doc.json["endTime"], "2030-03-08T10:00:00+00:00");
    assert!(doc.json.get("closed").is_none(), "{}", doc.text);

    i.patch(
        &format!("/api/v1/events/{k}"),
        Some(&ana),
        &json!({"status": "cancelled"}),
    )
    .await
    .expect(StatusCode::OK, "cancel the event");
    let doc = i.get_as(path, AP_JSON).await;
    let text = doc.json["content"].as_str().unwrap_or_default();
    assert!(text.contains("cancelled"), "{}", doc.text);
    assert!(doc.json["closed"].is_string(), "{}", doc.text);
}
