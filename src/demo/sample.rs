//! What the demo communities hold on their first run, so every part can be tried at once:
//! profiles, introductions, a pinned reflective question with replies, a shared link, an event
//! with a checklist, and an intention a colleague on another instance has joined.

use crate::{
    services::{
        directory, events, intentions, members, pins, posts,
        posts::NewPost,
        profiles::{self, ProfileEdit},
    },
    state::Ctx,
};
use anyhow::Context as _;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The keys of what was made, kept beside the databases so later runs print the same tries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub question_key: String,
    pub event_key: String,
    pub event_id: String,
    pub intention_key: String,
    pub intention_id: String,
}

struct Profile {
    name: &'static str,
    school: &'static str,
    role: &'static str,
    summary: &'static str,
    email: &'static str,
    joins: &'static [&'static str],
}

const PROFILES: &[Profile] = &[
    Profile {
        name: "nadia",
        school: "Education Scotland",
        role: "National CPD lead",
        summary: "I bring the local communities' work together nationally.",
        email: "nadia@national.example",
        joins: &["hwb", "cpdlead"],
    },
    Profile {
        name: "alice",
        school: "Riverside Primary, Stirling",
        role: "Health and wellbeing lead",
        summary: "P5 teacher; I run our outdoor learning and check-in routines.",
        email: "alice@riverside.example",
        joins: &["hwb", "cpdlead"],
    },
    Profile {
        name: "callum",
        school: "Wallace High School, Stirling",
        role: "Guidance teacher",
        summary: "Secondary guidance; interested in transitions from P7 to S1.",
        email: "callum@wallace.example",
        joins: &["hwb"],
    },
    Profile {
        name: "bob",
        school: "Carronshore Primary, Falkirk",
        role: "P6 class teacher",
        summary: "Newly qualified, keen on health and wellbeing across learning.",
        email: "bob@carronshore.example",
        joins: &["hwb"],
    },
];

const SAMPLE_FILE: &str = "sample.json";

/// The sample, made now if this data folder has none yet.
pub async fn ensure(
    dir: &Path,
    national: &Ctx,
    stirling: &Ctx,
    falkirk: &Ctx,
) -> anyhow::Result<Sample> {
    let path = dir.join(SAMPLE_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(sample) = serde_json::from_str::<Sample>(&text) {
            return Ok(sample);
        }
    }
    let sample = make(national, stirling, falkirk).await?;
    std::fs::write(&path, serde_json::to_string_pretty(&sample)?)?;
    Ok(sample)
}

async fn make(national: &Ctx, stirling: &Ctx, falkirk: &Ctx) -> anyhow::Result<Sample> {
    for ctx in [national, stirling, falkirk] {
        for p in PROFILES {
            let Some(m) = members::find_local(ctx.app_data(), p.name).await? else {
                continue;
            };
            let m = profiles::update(
                ctx.app_data(),
                &m,
                ProfileEdit {
                    summary: Some(p.summary.into()),
                    school: Some(p.school.into()),
                    role: Some(p.role.into()),
                    email: Some(p.email.into()),
                    show_email: Some(p.name == "alice"),
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("profile of {}", p.name))?;
            let joins: Vec<String> = p.joins.iter().map(|t| t.to_string()).collect();
            directory::join_all(ctx, &m, &joins)
                .await
                .with_context(|| format!("{} joining communities", p.name))?;
        }
    }
    let alice = member(stirling, "alice").await?;
    let callum = member(stirling, "callum").await?;
    let bob = member(falkirk, "bob").await?;

    let post = |content: &str| NewPost {
        content: content.into(),
        ..Default::default()
    };
    posts::create(
        stirling.app_data(),
        &alice,
        NewPost {
            is_introduction: true,
            ..post("Hello #hwb! I'm Alice, health and wellbeing lead at Riverside Primary. Looking forward to sharing our check-in routines.")
        },
    )
    .await
    .context("Alice's introduction")?;
    let question = posts::create(
        stirling.app_data(),
        &alice,
        NewPost {
            title: Some("Reflective question".into()),
            ..post("Before our outdoor learning session: what one change to your morning check-in made the biggest difference to your class? #hwb")
        },
    )
    .await
    .context("the reflective question")?;
    let hwb = crate::services::communities::get_local(stirling.app_data(), "hwb").await?;
    pins::pin_in_community(stirling.app_data(), &alice, &hwb, &question.key)
        .await
        .context("pinning the reflective question")?;
    posts::create(
        stirling.app_data(),
        &callum,
        NewPost {
            in_reply_to: Some(question.id.clone()),
            ..post("Giving S1 pupils a choice of three feelings words, not a blank box. Far more honest answers.")
        },
    )
    .await
    .context("Callum's reply")?;
    posts::create(
        stirling.app_data(),
        &alice,
        NewPost {
            links: vec![crate::services::media::LinkInput {
                url: "https://education.gov.scot/resources/".into(),
                name: Some("National improvement hub".into()),
            }],
            ..post("Flipped CPD: the reading for next month's session, please look before we meet. #hwb #cpdlead")
        },
    )
    .await
    .context("the shared link")?;

    let start = (Utc::now() + Duration::days(14)).date_naive();
    let event = events::create(
        stirling.app_data(),
        &alice,
        events::NewEvent {
            title: "Outdoor learning for wellbeing".into(),
            description: "A twilight session in the school grounds, with an online room for those who cannot travel. #hwb".into(),
            starts_at: format!("{start}T16:00"),
            ends_at: format!("{start}T17:30"),
            timezone: "Europe/London".into(),
            location_name: Some("Riverside Primary, Stirling".into()),
            location_address: Some("Forth Street, Stirling FK8 1UE".into()),
            online_url: Some("https://meet.example/outdoor-wellbeing".into()),
            capacity: Some(30),
            communities: vec!["hwb".into()],
            tasks: vec![
                "Read the national improvement hub page".into(),
                "Bring one photo of an outdoor space you use".into(),
            ],
            ..Default::default()
        },
    )
    .await
    .context("the sample event")?;

    let intention = intentions::create(
        falkirk.app_data(),
        &bob,
        intentions::NewIntention {
            text: "start each day with a two-minute feelings check-in with my P6 class #hwb".into(),
            target_date: (Utc::now() + Duration::days(21)).date_naive().to_string(),
            source: None,
            visibility: None,
            communities: vec!["hwb".into()],
            title: None,
        },
    )
    .await
    .context("the sample intention")?;

    Ok(Sample {
        question_key: question.key,
        event_key: event.key,
        event_id: event.id,
        intention_key: intention.key,
        intention_id: intention.id,
    })
}

async fn member(ctx: &Ctx, name: &str) -> anyhow::Result<crate::store::actor::Model> {
    members::find_local(ctx.app_data(), name)
        .await?
        .with_context(|| format!("demo member {name} is missing"))
}
