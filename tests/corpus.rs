//! Parsing tolerance, proved on the fediverse corpus beside the repository
//! (`fixtures/fediverse/`, described file by file in its `INDEX.md`): the three
//! spellings of the public collection, single values where arrays are usual and the reverse,
//! `contentMap` without `content`, Hashtags without `#` or `href`, embedded vs referenced
//! objects, unknown extension terms, and `@context` in every form the corpus holds.
//!
//! `corpus_table` walks every `*.json`, runs the parser Cairn uses for the document's shape and
//! states, per file, what Cairn made of it: `file | shape | outcome | details | gap`. The
//! expected table is `tests/corpus-expected.tsv`; any change in what Cairn makes of a file fails
//! with a per-row diff. After an intended change, regenerate it with
//! `CORPUS_BLESS=1 cargo test -p cairn --test corpus` and review the diff of the TSV.
//! `--nocapture` prints the table and the totals.
//!
//! Only parsers run here: no database, no network. Where Cairn's decision about an activity lives
//! in an async handler (`federation::activities::*`, `DbPost::verify`, `DbActor::verify`), the
//! pure checks that handler makes before it touches the database are mirrored below, each with
//! the place it comes from. WebFinger documents are read with the struct Cairn's resolver uses
//! (`activitypub_federation::fetch::webfinger::Webfinger`); Cairn reads no remote NodeInfo, so
//! NodeInfo documents are read with small local structs and the table says so.
//!
//! The other tests pin the quirks `INDEX.md` names, one by one.

use activitypub_federation::{fetch::webfinger::Webfinger, traits::Activity};
use cairn::{
    federation::{
        actor::ActorJson,
        inbox::InboundActivity,
        json,
        note::{NoteJson, POST_TYPES},
        same_origin,
        signature_check::read_public_key,
        PUBLIC,
    },
    hashtag,
};
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use serde_json::Value;
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};
use url::Url;

const AS_CONTEXT: &str = "https://www.w3.org/ns/activitystreams";
const EXPECTED_TSV: &str = "tests/corpus-expected.tsv";
const TSV_HEADER: &str = "file\tshape\toutcome\tdetails\tgap";

/// Actor types: read with `ActorJson`.
const ACTOR_TYPES: &[&str] = &["Person", "Group", "Service", "Application", "Organization"];

/// Activity types Cairn handles (mirrors the `match` in `federation::activities::dispatch`);
/// every other activity is answered 422 "Cairn does not handle X activities".
const HANDLED_ACTIVITIES: &[&str] = &[
    "Follow", "Accept", "Reject", "Undo", "Create", "Update", "Delete", "Announce", "Join",
    "Leave", "Add", "Remove",
];

/// Activity types of the Activity Vocabulary and the extensions the corpus uses; a document
/// with one of these types (or with both `actor` and `object`) is read as an activity.
const ACTIVITY_TYPES: &[&str] = &[
    "Accept",
    "Add",
    "Announce",
    "Block",
    "Create",
    "Delete",
    "Dislike",
    "EmojiReact",
    "Flag",
    "Follow",
    "Ignore",
    "Invite",
    "Join",
    "Leave",
    "Like",
    "Move",
    "Offer",
    "Read",
    "Reject",
    "Remove",
    "TentativeAccept",
    "TentativeReject",
    "Undo",
    "Update",
    "View",
];

/// Rows that are known gaps in Cairn: what Cairn makes of the file today is what the table
/// states, and this is what should happen instead. (Reported; `src/` is not changed here.)
const GAPS: &[(&str, &str)] = &[];

// ---------------------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------------------

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fediverse")
}

/// Every `*.json` of the corpus, by name.
fn corpus_files() -> Vec<String> {
    let dir = corpus_dir();
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the fediverse corpus should be at {} (beside the repository): {e}",
            dir.display()
        )
    });
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

fn load(name: &str) -> Value {
    let path = corpus_dir().join(name);
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

/// The `object` of an activity in the corpus.
fn object_of(name: &str) -> Value {
    load(name)
        .get("object")
        .cloned()
        .unwrap_or_else(|| panic!("{name} has no object"))
}

fn note(doc: &Value) -> NoteJson {
    serde_json::from_value(doc.clone()).expect("NoteJson reads the object")
}

fn actor(doc: &Value) -> ActorJson {
    serde_json::from_value(doc.clone()).expect("ActorJson reads the actor")
}

// ---------------------------------------------------------------------------------------------
// Readers: one per shape, each built on Cairn's own parser for that shape
// ---------------------------------------------------------------------------------------------

/// What Cairn made of one document.
struct Reading {
    shape: &'static str,
    /// `None` when understood, else why Cairn refuses it.
    refused: Option<String>,
    details: Vec<String>,
}

impl Reading {
    fn new(shape: &'static str) -> Self {
        Reading {
            shape,
            refused: None,
            details: Vec::new(),
        }
    }

    fn refuse(mut self, reason: impl Into<String>) -> Self {
        if self.refused.is_none() {
            self.refused = Some(reason.into());
        }
        self
    }

    fn note(&mut self, detail: impl Into<String>) {
        self.details.push(detail.into());
    }
}

fn read(doc: &Value) -> Reading {
    if !doc.is_object() {
        return Reading::new("other").refuse("not a JSON object");
    }
    let kind = json::kind(doc).unwrap_or_default();
    let mut reading = if doc.get("subject").is_some() && doc.get("links").is_some() {
        read_webfinger(doc)
    } else if doc.get("links").is_some() {
        read_nodeinfo_links(doc)
    } else if doc.get("software").is_some() {
        read_nodeinfo(doc)
    } else if ACTOR_TYPES.contains(&kind) {
        read_actor(doc, "actor")
    } else if ACTIVITY_TYPES.contains(&kind)
        || (doc.get("actor").is_some() && doc.get("object").is_some())
    {
        read_activity(doc)
    } else if kind.ends_with("Collection") || kind.ends_with("CollectionPage") {
        read_collection(doc)
    } else {
        read_object(doc)
    };
    if matches!(
        reading.shape,
        "actor" | "activity" | "object" | "collection"
    ) {
        reading.note(context_form(doc.get("@context")));
    }
    reading
}

/// The form of `@context`. Cairn does no JSON-LD processing, so this is only stated: every form
/// must read the same.
fn context_form(ctx: Option<&Value>) -> String {
    let item = |v: &Value| match v {
        Value::String(s) if s == AS_CONTEXT => "AS".to_owned(),
        Value::String(_) => "url".to_owned(),
        Value::Object(_) => "{}".to_owned(),
        other => format!("{other}"),
    };
    match ctx {
        None => "@context=none".into(),
        Some(Value::Array(items)) => {
            let forms: Vec<String> = items.iter().map(item).collect();
            let no_as = if forms.iter().any(|f| f == "AS") {
                ""
            } else {
                " (no AS)"
            };
            format!("@context=[{}]{no_as}", forms.join(","))
        }
        Some(v) => format!("@context={}", item(v)),
    }
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

// --- actors ----------------------------------------------------------------------------------

fn read_actor(doc: &Value, shape: &'static str) -> Reading {
    let mut r = Reading::new(shape);
    let actor: ActorJson = match serde_json::from_value(doc.clone()) {
        Ok(a) => a,
        Err(e) => return r.refuse(format!("ActorJson: {e}")),
    };
    r.note(format!("kind={}", json::kind(doc).unwrap_or("?")));
    r.note(format!(
        "user={}",
        actor.preferred_username.as_deref().unwrap_or("-")
    ));
    r.note(format!("inbox={}", actor.inbox));
    // As `DbActor::from_json`: endpoints.sharedInbox, kept only on the actor's origin.
    let shared = actor
        .endpoints
        .as_ref()
        .and_then(|e| json::str_field(e, "sharedInbox"))
        .and_then(|s| Url::parse(s).ok())
        .filter(|u| same_origin(u, &actor.id));
    r.note(format!(
        "shared={}",
        shared.map_or_else(|| "-".to_owned(), |u| u.to_string())
    ));
    let keys = json::items(Some(&actor.public_key)).len();
    match actor.public_key_pem() {
        None => {
            r.note("key=none");
            r = r.refuse("no publicKey.publicKeyPem");
        }
        Some(pem) => match read_public_key(&pem) {
            Ok(key) => r.note(format!(
                "key=RSA-{} {}",
                key.size() * 8,
                pem_form(&pem, keys)
            )),
            Err(e) => {
                r.note(format!("key=unreadable {}", pem_form(&pem, keys)));
                r = r.refuse(format!("publicKeyPem: {e}"));
            }
        },
    }
    // As `DbActor::verify`.
    if !same_origin(&actor.inbox, &actor.id) {
        r = r.refuse("the inbox is on another origin than the actor");
    }
    r
}

/// How the PEM is written: PKCS#1 or SPKI, and the whitespace quirks.
fn pem_form(pem: &str, keys: usize) -> String {
    let mut form = vec![if pem.contains("BEGIN RSA PUBLIC KEY") {
        "PKCS#1"
    } else {
        "SPKI"
    }];
    if !pem.trim().contains('\n') {
        form.push("spaces-for-newlines");
    }
    if pem.ends_with("\n\n") {
        form.push("trailing-blank-line");
    }
    let mut s = form.join("+");
    if keys > 1 {
        s.push_str(&format!(" (1 of {keys} keys)"));
    }
    s
}

// --- posts -----------------------------------------------------------------------------------

/// What `NoteJson` reads from a post.
fn post_details(note: &NoteJson) -> Vec<String> {
    let mut d = vec![
        format!("type={}", note.kind_str()),
        format!(
            "author={}",
            note.author()
                .map_or_else(|| "-".to_owned(), |u| u.to_string())
        ),
        format!("public={}", yes_no(note.is_public())),
        format!("addressees={}", note.addressees().len()),
        format!("hashtags={}", list(&note.hashtags())),
        format!("content={}", content_source(note)),
    ];
    if matches!(&note.name, Some(Value::String(s)) if !s.trim().is_empty()) {
        d.push("title=yes".into());
    }
    let attachments = json::items(Some(&note.attachment));
    if !attachments.is_empty() {
        let html = note.content_html();
        let links: Vec<&str> = attachments
            .iter()
            .filter(|a| json::kind(a) == Some("Link"))
            .filter_map(|a| json::str_field(a, "href"))
            .collect();
        let kept = links.iter().filter(|h| html.contains(**h)).count();
        d.push(format!(
            "attachments={} (links kept in the body: {kept}/{}; media not stored)",
            attachments.len(),
            links.len()
        ));
    }
    if let Some(Value::String(m)) = &note.media_type {
        if m != "text/html" {
            let paragraphs = note.content_html().matches("<p>").count();
            d.push(format!(
                "mediaType={m} (shown as text, {paragraphs} paragraphs)"
            ));
        }
    }
    if let Some(Value::Bool(sensitive)) = &note.sensitive {
        d.push(format!("sensitive={}", yes_no(*sensitive)));
    }
    d
}

/// Where the body comes from (as `NoteJson::content_html` reads it): `content`, else
/// `contentMap.en`, else the first `contentMap` value.
fn content_source(note: &NoteJson) -> String {
    if let Some(Value::String(s)) = &note.content {
        return if s.trim().is_empty() {
            "empty".into()
        } else {
            "content".into()
        };
    }
    if let Some(Value::Object(map)) = &note.content_map {
        if let Some((lang, v)) = map.get_key_value("en").or_else(|| map.iter().next()) {
            return match v {
                Value::String(s) if !s.trim().is_empty() => format!("contentMap.{lang}"),
                _ => format!("none (contentMap.{lang} is {v})"),
            };
        }
    }
    "none".into()
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The checks `DbPost::verify` makes of a post that claims to come from `expected`.
fn post_refusal(note: &NoteJson, expected: &Url) -> Option<String> {
    if !POST_TYPES.contains(&note.kind_str()) {
        return Some(format!(
            "object type {:?} is not something Cairn stores as a post",
            note.kind_str()
        ));
    }
    if !same_origin(&note.id, expected) {
        return Some(format!("object {} does not come from {expected}", note.id));
    }
    let Some(author) = note.author() else {
        return Some("the object has no attributedTo".into());
    };
    if !same_origin(&author, &note.id) {
        return Some(format!("attributed to {author}, on another origin"));
    }
    None
}

/// A post fetched by its id (how Cairn reads any object it is sent by reference).
fn read_object(doc: &Value) -> Reading {
    let mut r = Reading::new("object");
    let note: NoteJson = match serde_json::from_value(doc.clone()) {
        Ok(n) => n,
        Err(e) => return r.refuse(format!("NoteJson: {e}")),
    };
    r.details.extend(post_details(&note));
    // An embedded author (Kroeg) is an actor document in its own right.
    if let Some(embedded) = note
        .attributed_to
        .as_object()
        .filter(|o| o.contains_key("inbox"))
    {
        let author = read_actor(&Value::Object(embedded.clone()), "actor");
        r.note(format!(
            "embedded author: {}",
            author
                .refused
                .as_deref()
                .map_or_else(|| author.details.join(" "), |e| format!("refused: {e}"))
        ));
    }
    match post_refusal(&note, &note.id) {
        Some(reason) => r.refuse(reason),
        None => r,
    }
}

// --- activities ------------------------------------------------------------------------------

fn object_form(object: Option<&Value>) -> String {
    match object {
        None | Some(Value::Null) => "object=none".into(),
        Some(Value::String(s)) => format!("object=ref {s}"),
        Some(Value::Array(a)) => format!("object=array of {}", a.len()),
        Some(o) => format!("object=embedded {}", json::kind(o).unwrap_or("(untyped)")),
    }
}

fn read_activity(doc: &Value) -> Reading {
    let mut r = Reading::new("activity");
    // Cairn's envelope parser: every inbox POST is read as this first.
    let envelope: InboundActivity = match serde_json::from_value(doc.clone()) {
        Ok(a) => a,
        Err(e) => {
            r.note(format!("type={}", json::kind(doc).unwrap_or("-")));
            r.note(object_form(doc.get("object")));
            return r.refuse(format!("InboundActivity: {e}"));
        }
    };
    let kind = json::kind(doc).unwrap_or_default().to_owned();
    let sender = envelope.actor().clone();
    r.note(format!("type={kind}"));
    let actor_form = if doc.get("actor").is_some_and(Value::is_object) {
        "embedded "
    } else {
        ""
    };
    r.note(format!("actor={actor_form}{sender}"));
    let object = doc.get("object").filter(|o| !o.is_null());
    r.note(object_form(object));
    if !HANDLED_ACTIVITIES.contains(&kind.as_str()) {
        return r.refuse(format!("Cairn does not handle {kind} activities"));
    }
    let Some(object) = object else {
        return r.refuse("the activity has no object");
    };
    let object_kind = json::kind(object).map(str::to_owned);
    match kind.as_str() {
        // follow.rs: the object is the followed actor's id.
        "Follow" => {
            if json::id_of(object).is_none() {
                r = r.refuse("the object has no valid id");
            }
        }
        // accept.rs (and join.rs for the answer to one of our Joins)
        "Accept" => {
            if let Some(k) = object_kind.filter(|k| k != "Follow" && k != "Join") {
                r = r.refuse(format!("Cairn only handles Accept of a Follow, not of {k}"));
            }
        }
        // join.rs, leave.rs: the object is one of our events or intentions, by id.
        "Join" | "Leave" => match json::id_of(object) {
            Some(_) => r.note(format!("{kind} of a post, decided at its origin")),
            None => r = r.refuse("the object has no valid id"),
        },
        // add.rs, remove.rs: a Group's featured collection gains or loses a post.
        "Add" | "Remove" => {
            if json::id_of(object).is_none() {
                r = r.refuse("the object has no valid id");
            } else if doc.get("target").is_none() {
                r = r.refuse("the activity has no target");
            } else {
                r.note("changes a Group's featured collection");
            }
        }
        // reject.rs: the Follow is looked up by its id, or by the pair.
        "Reject" => {}
        // undo.rs
        "Undo" => {
            if let Some(inner) = object.get("actor").and_then(json::id_of_ref) {
                if inner != sender {
                    r = r.refuse(format!("{sender} may not undo an activity of {inner}"));
                }
            }
            match object_kind.as_deref() {
                Some("Follow") => r.note("ends a follow"),
                Some(k) => r.note(format!("undo of {k}: nothing stored, accepted")),
                None => r.note("undo of a referenced activity: looked up as a Follow"),
            }
        }
        // delete.rs
        "Delete" => match json::id_of(object) {
            None => r = r.refuse("the object has no valid id"),
            Some(id) if id == sender => r.note("deletes the account"),
            Some(id) if !same_origin(&id, &sender) => {
                r = r.refuse(format!("{sender} may not delete {id}, on another origin"));
            }
            Some(_) => r.note("deletes a post"),
        },
        // create_or_update.rs
        "Create" | "Update" => {
            let is_update = kind == "Update";
            if is_update
                && object_kind
                    .as_deref()
                    .is_some_and(|k| !POST_TYPES.contains(&k))
                && json::id_of(object).is_some_and(|id| id == sender)
            {
                let updated = read_actor(object, "actor");
                r.note(format!("updated actor: {}", updated.details.join(" ")));
                if let Some(reason) = updated.refused {
                    r = r.refuse(format!("the updated actor: {reason}"));
                }
            } else if object.is_string() {
                match json::id_of(object) {
                    Some(id) if same_origin(&id, &sender) => r.note("post fetched from its id"),
                    Some(id) => r = r.refuse(format!("{id} belongs to another origin")),
                    None => r = r.refuse("the object has no valid id"),
                }
            } else {
                r = embedded_post(r, object, &sender, true);
            }
        }
        // announce.rs
        "Announce" => match object_kind.as_deref() {
            Some("Create") | Some("Update") => match object.get("object") {
                Some(inner) => {
                    r.note(format!("inner {}", object_form(Some(inner))));
                    r = announced_post(r, inner, &sender);
                }
                None => r = r.refuse("the announced activity has no object"),
            },
            Some("Delete") => {
                if object.get("object").and_then(json::id_of_ref).is_none() {
                    r = r.refuse("the announced Delete has no object");
                }
            }
            Some(k) if !POST_TYPES.contains(&k) => {
                r = r.refuse(format!("Cairn does not handle announced {k} activities"));
            }
            _ => r = announced_post(r, object, &sender),
        },
        _ => unreachable!("HANDLED_ACTIVITIES and this match agree"),
    }
    r
}

/// `announce::resolve_post`: an embedded copy is read only from the announcer's own origin;
/// otherwise the post is fetched from its id.
fn announced_post(r: Reading, object: &Value, announcer: &Url) -> Reading {
    let mut r = r;
    let Some(id) = json::id_of(object) else {
        return r.refuse("the announced object has no id");
    };
    if object.is_object() && same_origin(&id, announcer) {
        return embedded_post(r, object, announcer, false);
    }
    if object.is_object() {
        // The copy is not trusted; still state what it says.
        if let Ok(note) = serde_json::from_value::<NoteJson>(object.clone()) {
            r.note(format!("post: {}", post_details(&note).join(" ")));
        }
        r.note("embedded copy from another origin: not trusted, post fetched from its id");
    } else {
        r.note("post fetched from its id");
    }
    r
}

/// An embedded post, checked as `create_or_update::receive` (author is the sender) or as
/// `announce::resolve_post` (same origin as the announcer).
fn embedded_post(r: Reading, object: &Value, sender: &Url, author_is_sender: bool) -> Reading {
    let mut r = r;
    let note: NoteJson = match serde_json::from_value(object.clone()) {
        Ok(n) => n,
        Err(e) => return r.refuse(format!("the object is not a valid post: {e}")),
    };
    r.note(format!("post: {}", post_details(&note).join(" ")));
    if let Some(reason) = post_refusal(&note, sender) {
        return r.refuse(reason);
    }
    if author_is_sender && note.author().as_ref() != Some(sender) {
        return r.refuse(format!(
            "{sender} may not create or update {}, attributed to someone else",
            note.id
        ));
    }
    r
}

// --- collections -----------------------------------------------------------------------------

fn read_collection(doc: &Value) -> Reading {
    let mut r = Reading::new("collection");
    let items = json::items(doc.get("orderedItems").or_else(|| doc.get("items")));
    r.note(format!(
        "type={} items={}",
        json::kind(doc).unwrap_or("-"),
        items.len()
    ));
    for (i, item) in items.iter().enumerate() {
        match serde_json::from_value::<NoteJson>((*item).clone()) {
            Ok(note) => r.note(format!("item[{i}]: {}", post_details(&note).join(" "))),
            Err(_) => r.note(format!("item[{i}]: {}", object_form(Some(item)))),
        }
    }
    r.refuse("Cairn reads no remote collections")
}

// --- WebFinger and NodeInfo ------------------------------------------------------------------

/// Read with `Webfinger`, the struct `webfinger_resolve_actor` (which Cairn uses to find remote
/// communities and actors) deserialises. The resolver dereferences, last first, every link
/// whose `type` starts with `application/`.
fn read_webfinger(doc: &Value) -> Reading {
    let mut r = Reading::new("webfinger");
    let wf: Webfinger = match serde_json::from_value(doc.clone()) {
        Ok(w) => w,
        Err(e) => return r.refuse(format!("Webfinger: {e}")),
    };
    r.note(format!("subject={}", wf.subject));
    r.note(format!("aliases={}", wf.aliases.len()));
    let is_ap = |t: &str| t == "application/activity+json" || t.starts_with("application/ld+json");
    let self_link = wf.links.iter().find(|l| {
        l.rel.as_deref() == Some("self") && l.kind.as_deref().is_some_and(is_ap) && l.href.is_some()
    });
    r.note(format!(
        "self={}",
        self_link
            .and_then(|l| l.href.as_ref())
            .map_or_else(|| "-".to_owned(), Url::to_string)
    ));
    let tried: Vec<String> = wf
        .links
        .iter()
        .rev()
        .filter(|l| l.href.is_some())
        .filter_map(|l| l.kind.clone())
        .filter(|t| t.starts_with("application/"))
        .collect();
    r.note(format!("resolver tries {}", list(&tried)));
    let templates = wf.links.iter().filter(|l| l.template.is_some()).count();
    if templates > 0 {
        r.note(format!("template links={templates}"));
    }
    if self_link.is_none() {
        r = r.refuse("no self link of type application/activity+json");
    }
    r
}

#[derive(Deserialize)]
struct NodeInfoLinks {
    links: Vec<NodeInfoLink>,
}

#[derive(Deserialize)]
struct NodeInfoLink {
    rel: String,
    href: Url,
}

const NODEINFO_SCHEMA: &str = "http://nodeinfo.diaspora.software/ns/schema/";

fn read_nodeinfo_links(doc: &Value) -> Reading {
    let mut r = Reading::new("nodeinfo-links");
    r.note("test-local reader: Cairn reads no remote NodeInfo");
    let links: NodeInfoLinks = match serde_json::from_value(doc.clone()) {
        Ok(l) => l,
        Err(e) => return r.refuse(format!("NodeInfo links: {e}")),
    };
    let mut versions: Vec<(&str, &Url)> = links
        .links
        .iter()
        .filter_map(|l| Some((l.rel.strip_prefix(NODEINFO_SCHEMA)?, &l.href)))
        .collect();
    versions.sort();
    r.note(format!(
        "schemas={}",
        list(
            &versions
                .iter()
                .map(|(v, _)| v.to_string())
                .collect::<Vec<_>>()
        )
    ));
    match versions.last() {
        Some((v, href)) => r.note(format!("newest {v} at {href}")),
        None => r = r.refuse("no NodeInfo schema link"),
    }
    r
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeInfo {
    version: String,
    software: NodeInfoSoftware,
    #[serde(default)]
    protocols: Value,
    #[serde(default)]
    open_registrations: Value,
    #[serde(default)]
    metadata: Value,
}

#[derive(Deserialize)]
struct NodeInfoSoftware {
    name: String,
    version: String,
}

fn read_nodeinfo(doc: &Value) -> Reading {
    let mut r = Reading::new("nodeinfo");
    r.note("test-local reader: Cairn reads no remote NodeInfo");
    let info: NodeInfo = match serde_json::from_value(doc.clone()) {
        Ok(n) => n,
        Err(e) => return r.refuse(format!("NodeInfo: {e}")),
    };
    r.note(format!("schema={}", info.version));
    r.note(format!(
        "software={} {}",
        info.software.name, info.software.version
    ));
    let protocols: Vec<String> = json::items(Some(&info.protocols))
        .into_iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    r.note(format!("protocols={}", list(&protocols)));
    r.note(format!(
        "openRegistrations={}",
        match &info.open_registrations {
            Value::Bool(b) => b.to_string(),
            Value::String(s) =>
                format!("{} (from the string {s:?})", s.eq_ignore_ascii_case("true")),
            other => format!("? ({other})"),
        }
    ));
    if !info.metadata.is_object() {
        r.note(format!(
            "metadata is {} (not an object)",
            match &info.metadata {
                Value::Array(_) => "an array",
                Value::Null => "absent",
                _ => "a scalar",
            }
        ));
    }
    if !protocols.iter().any(|p| p == "activitypub") {
        r = r.refuse("activitypub is not among the protocols");
    }
    r
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    file: String,
    shape: String,
    outcome: String,
    details: String,
    gap: String,
}

impl Row {
    fn tsv(&self) -> String {
        [
            &self.file,
            &self.shape,
            &self.outcome,
            &self.details,
            &self.gap,
        ]
        .map(|c| c.replace(['\t', '\n', '\r'], " "))
        .join("\t")
    }

    fn from_tsv(line: &str) -> Option<Row> {
        let mut cells = line.split('\t').map(str::to_owned);
        Some(Row {
            file: cells.next()?,
            shape: cells.next()?,
            outcome: cells.next()?,
            details: cells.next()?,
            gap: cells.next().unwrap_or_default(),
        })
    }
}

fn row(file: &str) -> Row {
    let reading = read(&load(file));
    Row {
        file: file.to_owned(),
        shape: reading.shape.to_owned(),
        outcome: match reading.refused {
            None => "understood".to_owned(),
            Some(reason) => format!("refused: {reason}"),
        },
        details: reading.details.join("; "),
        gap: GAPS
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, g)| (*g).to_owned())
            .unwrap_or_default(),
    }
}

#[test]
fn corpus_table() {
    let files = corpus_files();
    assert!(!files.is_empty(), "the corpus has no *.json");
    let rows: Vec<Row> = files.iter().map(|f| row(f)).collect();

    println!("file | shape | outcome | details | gap");
    for r in &rows {
        let gap = if r.gap.is_empty() {
            String::new()
        } else {
            format!(" | GAP: {}", r.gap)
        };
        println!(
            "{} | {} | {} | {}{gap}",
            r.file, r.shape, r.outcome, r.details
        );
    }
    let understood = rows.iter().filter(|r| r.outcome == "understood").count();
    let gaps = rows.iter().filter(|r| !r.gap.is_empty()).count();
    let mut by_shape: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in &rows {
        let e = by_shape.entry(&r.shape).or_default();
        if r.outcome == "understood" {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    println!(
        "\n{} files: {understood} understood, {} refused; {gaps} known gap(s)",
        rows.len(),
        rows.len() - understood
    );
    for (shape, (u, f)) in &by_shape {
        println!("  {shape}: {u} understood, {f} refused");
    }

    for (file, _) in GAPS {
        assert!(
            files.iter().any(|f| f == file),
            "GAPS names {file}, not in the corpus"
        );
    }

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXPECTED_TSV);
    let actual_tsv: String = std::iter::once(TSV_HEADER.to_owned())
        .chain(rows.iter().map(Row::tsv))
        .map(|l| l + "\n")
        .collect();
    if std::env::var_os("CORPUS_BLESS").is_some() {
        fs::write(&path, &actual_tsv).expect("write the expected table");
        println!("wrote {}", path.display());
        return;
    }
    let expected_tsv = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with CORPUS_BLESS=1 cargo test -p cairn --test corpus",
            path.display()
        )
    });
    let expected: BTreeMap<String, Row> = expected_tsv
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .filter_map(Row::from_tsv)
        .map(|r| (r.file.clone(), r))
        .collect();
    let actual: BTreeMap<String, Row> = rows
        .iter()
        .map(|r| Row::from_tsv(&r.tsv()).expect("a row reads back"))
        .map(|r| (r.file.clone(), r))
        .collect();

    let mut diff = Vec::new();
    for (file, want) in &expected {
        match actual.get(file) {
            None => diff.push(format!("- {file}: in {EXPECTED_TSV} but not in the corpus")),
            Some(got) if got != want => {
                let mut entry = format!("~ {file}");
                for (col, w, g) in [
                    ("shape", &want.shape, &got.shape),
                    ("outcome", &want.outcome, &got.outcome),
                    ("details", &want.details, &got.details),
                    ("gap", &want.gap, &got.gap),
                ] {
                    if w != g {
                        entry.push_str(&format!("\n    {col}:\n      - {w}\n      + {g}"));
                    }
                }
                diff.push(entry);
            }
            Some(_) => {}
        }
    }
    for file in actual.keys().filter(|f| !expected.contains_key(*f)) {
        diff.push(format!("+ {file}: in the corpus but not in {EXPECTED_TSV}"));
    }
    assert!(
        diff.is_empty(),
        "what Cairn makes of the corpus changed ({} file(s)); if intended, rerun with \
         CORPUS_BLESS=1 and review the TSV diff:\n{}",
        diff.len(),
        diff.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The quirks INDEX.md names
// ---------------------------------------------------------------------------------------------

#[test]
fn the_public_collection_in_every_spelling() {
    // The full IRI, in `to` (an array) and in `cc` only (unlisted).
    assert!(note(&load("mastodon-note-image-attachment-to-lemmy-group.json")).is_public());
    assert!(note(&object_of("mastodon-create-note-reply-mention.json")).is_public());
    // The full IRI as a plain string (GoToSocial).
    assert!(note(&load("gotosocial-note-hashtag-emoji-to-as-string.json")).is_public());
    // `"as:Public"` as a string (compacted JSON-LD from Fedify).
    assert!(note(&load("fedify-compacted-mastodon-note-as-public.json")).is_public());
    // `["as:Public"]` in an array (Bonfire's Place, which Cairn does not store, but reads).
    assert!(note(&load("bonfire-place-as-public-type-array.json")).is_public());
    // A bare `"Public"` occurs in no real document of the corpus (INDEX.md, "gaps"); the same
    // compacted note with `to` respelled must read the same.
    let mut bare = load("fedify-compacted-mastodon-note-as-public.json");
    bare["to"] = Value::String("Public".into());
    assert!(note(&bare).is_public());
    // And what is not public stays so.
    assert!(!note(&load("mastodon-direct-message-note.json")).is_public());
    assert!(!note(&load("pixelfed-story.json")).is_public());
    let boost = load("gotosocial-announce-self-boost-followers-only.json");
    assert!(!json::is_public(boost.get("to")) && !json::is_public(boost.get("cc")));
    let expanded: Vec<Url> = json::ids(Some(&Value::String("as:Public".into())));
    assert_eq!(
        expanded.iter().map(Url::as_str).collect::<Vec<_>>(),
        [PUBLIC]
    );
}

#[test]
fn single_values_where_arrays_are_usual() {
    // `to` and `cc` as strings (GoToSocial): one addressee each.
    let gts = note(&load("gotosocial-note-hashtag-emoji-to-as-string.json"));
    assert_eq!(gts.addressees().len(), 2);
    // `tag` as a single object, not an array (Kroeg).
    let kroeg = note(&object_of("kroeg-create-note-array-less-hashtag.json"));
    assert_eq!(kroeg.hashtags(), ["test"]);
    // `to` a string on a Flag, a Move and a Block.
    for f in [
        "mastodon-flag.json",
        "mastodon-move.json",
        "mastodon-block-to-as-string.json",
        "gotosocial-move-to-as-string.json",
    ] {
        assert_eq!(json::ids(load(f).get("to")).len(), 1, "{f}");
    }
    // Lemmy's Flag names a single object; Mastodon's, GoToSocial's and Mbin's an array.
    assert_eq!(
        json::ids(load("lemmy-flag-report.json").get("object")).len(),
        1
    );
    for f in [
        "mastodon-flag.json",
        "gotosocial-flag.json",
        "mbin-flag.json",
    ] {
        assert!(json::ids(load(f).get("object")).len() > 1, "{f}");
    }
}

#[test]
fn arrays_where_single_values_are_usual() {
    // PeerTube: `attributedTo` is [Person, Group]; the author is the Person.
    let video = note(&load("peertube-video.json"));
    assert_eq!(
        video.author().map(String::from).as_deref(),
        Some("https://tilvids.com/accounts/member47")
    );
    // Bonfire: `type` is ["Place", "geojson:Feature"]; the first is the type.
    let place = load("bonfire-place-as-public-type-array.json");
    assert_eq!(json::kind(&place), Some("Place"));
    assert_eq!(note(&place).kind_str(), "Place");
    // Fedify: `publicKey` is an array (see `publickey_array_finds_the_actors_key`).
    assert!(load("fedify-person-publickey-array.json")["publicKey"].is_array());
}

#[test]
fn content_map_without_content() {
    for f in [
        "mastodon-create-note-contentmap-only.json",
        "mastodon-create-note-contentmap-multilang.json",
    ] {
        let n = note(&object_of(f));
        assert!(n.content.is_none(), "{f} has no content");
        assert_eq!(content_source(&n), "contentMap.en", "{f}");
    }
    // Where both are there, `content` is read (the Lemmy-edited copies differ; INDEX.md).
    let n = note(&object_of("mastodon-create-note-reply-mention.json"));
    assert_eq!(content_source(&n), "content");
    // Mbin's `contentMap: {"en": null}` gives no body (and Mbin's ids are placeholders anyway).
    let mut mbin = object_of("mbin-create-page-image-link.json");
    mbin["id"] = Value::String("https://kbin.test/m/test/t/1".into());
    assert_eq!(content_source(&note(&mbin)), "none (contentMap.en is null)");
}

#[test]
fn hashtags_with_and_without_hash_or_href() {
    let cases: &[(&str, Value, &[&str])] = &[
        // PeerTube: no '#', no href, mixed case and non-ASCII.
        (
            "peertube-video-hashtags-without-hash.json",
            object_of("peertube-video-hashtags-without-hash.json"),
            &["déframasoftisons", "epn23", "framaconf", "framasoft", "pyg"],
        ),
        // A PeerTube video with `tag: []`: nothing, and the markdown is not searched.
        ("peertube-video.json", load("peertube-video.json"), &[]),
        (
            "mastodon-create-note-hashtag-cw.json",
            object_of("mastodon-create-note-hashtag-cw.json"),
            &["moo"],
        ),
        // Mobilizon: `#Dance` with a lower-case href.
        (
            "mobilizon-event.json",
            load("mobilizon-event.json"),
            &["dance", "caledonian", "lesson"],
        ),
        // Friendica: href is `/search?tag=…`, not the tag's page.
        (
            "friendica-note-hashtags-quote-share.json",
            load("friendica-note-hashtags-quote-share.json"),
            &["friendica", "lemmy"],
        ),
        // GoToSocial: an Emoji beside the Hashtag.
        (
            "gotosocial-note-hashtag-emoji-to-as-string.json",
            load("gotosocial-note-hashtag-emoji-to-as-string.json"),
            &["welcome"],
        ),
        // Compacted JSON-LD has no `tag`: the tags are read from the HTML.
        (
            "fedify-compacted-mastodon-note-as-public.json",
            load("fedify-compacted-mastodon-note-as-public.json"),
            &["fedify", "fedidev", "activitypub"],
        ),
        // Inside a featured collection.
        (
            "mastodon-featured-collection-hashtags.json",
            load("mastodon-featured-collection-hashtags.json")["orderedItems"][0].clone(),
            &["reddit", "fediverse", "activitypub"],
        ),
    ];
    for (file, doc, want) in cases {
        assert_eq!(note(doc).hashtags(), *want, "{file}");
        for t in note(doc).hashtags() {
            assert_eq!(
                hashtag::normalize(&t).as_deref(),
                Ok(t.as_str()),
                "{file}: normalised"
            );
        }
    }
}

#[test]
fn public_keys_in_every_form_servers_publish() {
    let bits = |f: &str| {
        let a = actor(&load(f));
        let pem = a.public_key_pem().unwrap_or_else(|| panic!("{f}: no PEM"));
        read_public_key(&pem)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .size()
            * 8
    };
    // Spaces instead of newlines (a Mastodon fork).
    let spaced = actor(&load("mastodon-person-pem-with-spaces.json"));
    assert!(!spaced.public_key_pem().expect("pem").trim().contains('\n'));
    assert_eq!(bits("mastodon-person-pem-with-spaces.json"), 2048);
    // PKCS#1 with a trailing blank line (Mobilizon), SPKI with one (Pleroma).
    assert_eq!(bits("mobilizon-group.json"), 2048);
    assert_eq!(bits("pleroma-person-emoji-tags.json"), 2048);
    // RSA-4096 (Misskey, Friendica); a `/main-key` path id (GoToSocial).
    assert_eq!(bits("misskey-person.json"), 4096);
    assert_eq!(bits("friendica-person.json"), 4096);
    assert_eq!(bits("gotosocial-person.json"), 2048);
    // Mitra: `assertionMethod` Multikeys beside the `publicKey` object.
    assert_eq!(bits("mitra-person-assertionmethod-multikey.json"), 2048);
    // Kroeg: the author embedded in the note, with `publicKey.type: []`.
    let kroeg = object_of("kroeg-create-note-array-less-hashtag.json");
    let author = actor(&kroeg["attributedTo"]);
    let pem = author.public_key_pem().expect("kroeg pem");
    assert!(read_public_key(&pem).is_ok());
}

#[test]
fn publickey_array_finds_the_actors_key() {
    let doc = load("fedify-person-publickey-array.json");
    // The synthetic fixture has no `inbox`, which `ActorJson` requires (the table row says
    // so); supply one to read its two-key `publicKey` array.
    assert!(serde_json::from_value::<ActorJson>(doc.clone()).is_err());
    let mut with_inbox = doc.clone();
    with_inbox["inbox"] = Value::String("https://example.com/person2/inbox".into());
    let a = actor(&with_inbox);
    let pem = a.public_key_pem().expect("a key is found in the array");
    assert_eq!(
        Some(pem.as_str()),
        doc["publicKey"][0]["publicKeyPem"].as_str(),
        "the RSA key owned by the actor (#key3), not the Ed25519 one"
    );
    assert_eq!(read_public_key(&pem).expect("RSA").size() * 8, 4096);
}

#[test]
fn embedded_and_referenced_objects() {
    let r = read(&load("mastodon-announce-object-uri.json"));
    assert!(r.refused.is_none());
    assert!(r.details.iter().any(|d| d == "post fetched from its id"));
    // An embedded Note from another host is never taken on trust.
    let r = read(&load("mastodon-announce-embedded-note-spoofable.json"));
    assert!(r.refused.is_none());
    assert!(r.details.iter().any(|d| d.contains("not trusted")));
    // Announce(Create(Page)) from the Group's own origin is read from the embedded copy.
    let r = read(&load("lemmy-announce-create-page.json"));
    assert!(r.refused.is_none(), "{:?}", r.refused);
    assert!(r.details.iter().any(|d| d.starts_with("post: type=Page")));
    // Announce(Update(Article)) with a double-fragment id (WordPress).
    let r = read(&load("wordpress-announce-update-article.json"));
    assert!(r.refused.is_none(), "{:?}", r.refused);
    // Undo whose object is a bare URI.
    assert!(read(&load("mastodon-undo-like-object-as-uri.json"))
        .refused
        .is_none());
    // Kroeg: `attributedTo` is a whole actor; its id is the author.
    let kroeg = note(&object_of("kroeg-create-note-array-less-hashtag.json"));
    assert_eq!(
        kroeg.author().map(String::from).as_deref(),
        Some("https://member16.com/")
    );
}

#[test]
fn unknown_extension_terms_are_ignored() {
    // Prefixed and vendor keys do not stop the readers.
    for (f, key) in [
        ("misskey-note-with-quote.json", "_misskey_quote"),
        ("fedibird-note-with-quote.json", "quoteUri"),
        ("mobilizon-event.json", "ical:status"),
        (
            "fedify-compacted-mastodon-note-as-public.json",
            "as:sensitive",
        ),
        ("bonfire-place-as-public-type-array.json", "dcterms:license"),
        (
            "gotosocial-note-hashtag-emoji-to-as-string.json",
            "interactionPolicy",
        ),
    ] {
        let doc = load(f);
        assert!(doc.get(key).is_some(), "{f} has {key}");
        note(&doc);
    }
    for (f, key) in [
        ("misskey-person.json", "isCat"),
        ("friendica-person.json", "vcard:hasAddress"),
        ("lemmy-person.json", "matrixUserId"),
        ("gotosocial-person.json", "hidesToPublicFromUnauthedWeb"),
    ] {
        let doc = load(f);
        assert!(doc.get(key).is_some(), "{f} has {key}");
        actor(&doc);
    }
}

#[test]
fn every_context_form_reads_the_same() {
    // Each form of @context in the corpus, with a document of that form Cairn understands.
    // Cairn does no JSON-LD processing: the form must make no difference.
    for (f, form) in [
        // Lemmy's own fixtures: none at all.
        ("lemmy-person.json", "@context=none"),
        // A plain string.
        ("mastodon-follow.json", "@context=AS"),
        // A one-element array.
        ("wordpress-announce-update-article.json", "@context=[AS]"),
        // URLs only, no map.
        (
            "kroeg-create-note-array-less-hashtag.json",
            "@context=[AS,url]",
        ),
        // The usual Mastodon form.
        ("mastodon-person-actor.json", "@context=[AS,url,{}]"),
        // The AS URL not first (GoToSocial).
        ("gotosocial-person.json", "@context=[url,url,AS,{}]"),
        // Two maps (PeerTube).
        ("peertube-video.json", "@context=[AS,url,{},{}]"),
        // Many URLs (Mitra: DID and data-integrity contexts).
        (
            "mitra-person-assertionmethod-multikey.json",
            "@context=[AS,url,url,url,url,{}]",
        ),
        // Only an extension map, no AS URL at all.
        (
            "mastodon-delete-actor-context-without-as.json",
            "@context=[{}] (no AS)",
        ),
    ] {
        let doc = load(f);
        assert_eq!(context_form(doc.get("@context")), form, "{f}");
        let r = read(&doc);
        assert!(r.refused.is_none(), "{f}: {:?}", r.refused);
    }
    // Pterotype nests an @context inside the object as well.
    let inner = object_of("wordpress-pterotype-create-article.json");
    assert!(inner.get("@context").is_some());
    assert!(read(&load("wordpress-pterotype-create-article.json"))
        .refused
        .is_none());
}

#[test]
fn scrubbed_placeholders_are_not_iris() {
    for f in [
        "mbin-create-page-image-link.json",
        "mbin-announce-update-magazine-group.json",
    ] {
        let r = read(&load(f));
        let reason = r.refused.unwrap_or_default();
        assert!(reason.contains("activity id is not a URL"), "{f}: {reason}");
    }
}

#[test]
fn webfinger_finds_the_actor_link() {
    let wf: Webfinger = serde_json::from_value(load("mastodon-webfinger.json")).expect("jrd");
    let self_link = wf
        .links
        .iter()
        .find(|l| l.rel.as_deref() == Some("self"))
        .and_then(|l| l.href.as_ref())
        .map(Url::as_str);
    assert_eq!(self_link, Some("https://mastodon.social/users/member18"));
    // The ostatus link has a template and no href.
    assert!(wf
        .links
        .iter()
        .any(|l| l.template.is_some() && l.href.is_none()));
    // GNU social (2016): `\/` escapes read fine, but there is no ActivityPub link.
    let r = read(&load("gnusocial-webfinger-escaped-slashes.json"));
    assert!(r
        .details
        .iter()
        .any(|d| d == "subject=acct:member30@quitter.no"));
    assert!(r.refused.is_some());
}

#[test]
fn nodeinfo_quirks() {
    let r = read(&load("nodeinfo-2.0-akkoma-openregistrations-string.json"));
    assert!(r.refused.is_none());
    assert!(r
        .details
        .iter()
        .any(|d| d == "openRegistrations=false (from the string \"FALSE\")"));
    let r = read(&load("nodeinfo-2.0-mastodon-metadata-empty-array.json"));
    assert!(r.refused.is_none());
    assert!(r
        .details
        .iter()
        .any(|d| d.starts_with("metadata is an array")));
    let r = read(&load("nodeinfo-wellknown-links.json"));
    assert!(r
        .details
        .iter()
        .any(|d| d == "newest 2.1 at https://banana.dog/nodeinfo/2.1"));
}
