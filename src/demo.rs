//! `cairn demo`: the whole mission in a minute. Two local-authority instances and a national
//! one, each with its own SQLite file, linked so the national communities aggregate the local
//! ones.

use crate::{
    config::Config,
    error::Error,
    server,
    services::{communities, links, members},
};
use std::{net::SocketAddr, path::Path, time::Duration};

mod sample;

struct DemoInstance {
    key: &'static str,
    name: &'static str,
    port: u16,
    members: &'static [(&'static str, &'static str)],
}

const INSTANCES: &[DemoInstance] = &[
    DemoInstance {
        key: "national",
        name: "Cairn National",
        port: 8080,
        members: &[("nadia", "Nadia Rahman (national CPD lead)")],
    },
    DemoInstance {
        key: "stirling",
        name: "Stirling Council Schools",
        port: 8081,
        members: &[("alice", "Alice MacLeod"), ("callum", "Callum Reid")],
    },
    DemoInstance {
        key: "falkirk",
        name: "Falkirk Council Schools",
        port: 8082,
        members: &[("bob", "Bob Fraser")],
    },
];

const COMMUNITIES: &[(&str, &str)] = &[
    ("hwb", "Health and Wellbeing"),
    ("cpdlead", "CPD Leaders"),
    ("Fàilte", "Fàilte: Gaelic-medium education"),
];

pub async fn run(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    // Email and reminders follow the environment (CAIRN_SMTP_*, CAIRN_REMINDER_*), so the demo
    // can send its reminders to a real SMTP server; everything else is the demo's own.
    let mut from_env = Config::default();
    from_env.apply_env(|name| std::env::var(name).ok())?;
    let mut running = Vec::new();
    for inst in INSTANCES {
        let db_path = dir.join(format!("{}.db", inst.key));
        let config = Config {
            domain: format!("localhost:{}", inst.port),
            bind: SocketAddr::from(([127, 0, 0, 1], inst.port)),
            database_url: format!("sqlite://{}?mode=rwc", db_path.display()),
            name: Some(inst.name.into()),
            email: from_env.email.clone(),
            reminders: from_env.reminders.clone(),
            // Each instance keeps its uploads beside its database.
            media: crate::config::MediaConfig {
                dir: dir
                    .join(format!("{}-media", inst.key))
                    .display()
                    .to_string(),
                ..Default::default()
            },
            ..Config::default()
        };
        config.validate()?;
        let federation = server::build(config).await?;
        let ctx = federation.to_request_data();
        for (tag, title) in COMMUNITIES {
            if communities::find_local(ctx.app_data(), tag)
                .await?
                .is_none()
            {
                communities::create(ctx.app_data(), tag, Some(title), None).await?;
            }
        }
        let mut tokens = Vec::new();
        for (name, display) in inst.members {
            let token = match members::find_local(ctx.app_data(), name).await? {
                Some(m) => members::issue_token(ctx.app_data(), &m).await?,
                None => {
                    members::create(ctx.app_data(), name, Some(display))
                        .await?
                        .1
                }
            };
            tokens.push((*name, token));
        }
        // Each instance's first member facilitates its communities: pins and moderators.
        if let Some((first, _)) = inst.members.first() {
            if let Some(m) = members::find_local(ctx.app_data(), first).await? {
                for c in communities::list_local(ctx.app_data()).await? {
                    crate::services::moderators::appoint(&ctx.app_data().db, &c, &m).await?;
                }
            }
        }
        let handle = server::start(federation).await?;
        running.push((inst, handle, tokens));
    }
    // The national instance aggregates both local ones.
    let national = running[0].1.federation.to_request_data();
    for (inst, _, _) in running.iter().skip(1) {
        links::link(&national, &format!("http://localhost:{}", inst.port))
            .await
            .map_err(|e: Error| anyhow::anyhow!("linking {}: {e}", inst.key))?;
    }

    wait_for_links(&national).await;
    let sample = sample::ensure(
        dir,
        &national,
        &running[1].1.federation.to_request_data(),
        &running[2].1.federation.to_request_data(),
    )
    .await?;

    println!(
        "\nCairn demo is running (Ctrl-C to stop). Data: {}\n",
        dir.display()
    );
    for (inst, _, tokens) in &running {
        println!("  {:<28} http://localhost:{}/", inst.name, inst.port);
        for (name, token) in tokens {
            println!(
                "      member @{name}@localhost:{}  token {token}",
                inst.port
            );
        }
    }
    let alice = running[1]
        .2
        .first()
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    println!(
        "\nPost as Alice at Stirling, into #hwb and #cpdlead:\n\n  curl -s -X POST http://localhost:8081/api/v1/posts \\\n    -H 'Authorization: Bearer {alice}' -H 'Content-Type: application/json' \\\n    -d '{{\"content\": \"Our #HWB check-in routine, shared with #cpdlead colleagues\"}}'\n"
    );
    println!(
        "Then see it in both Stirling communities and, a moment later, in the national ones:\n"
    );
    println!("  http://localhost:8081/c/hwb     http://localhost:8081/c/cpdlead");
    println!("  http://localhost:8080/c/hwb     http://localhost:8080/c/cpdlead");
    println!("  curl -s http://localhost:8080/api/v1/communities/hwb/posts\n");
    println!("Fediverse users follow @hwb@localhost:8080 to receive it as a boost from the national group.");
    print_tries(&sample, &running[1].2, &running[2].2, &running[0].2);

    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// The sample is shared only once the national communities follow the local ones, so that it
/// reaches national too; on a first run the follows take a moment to be accepted.
async fn wait_for_links(national: &crate::state::Ctx) {
    for _ in 0..50 {
        match links::list(national.app_data()).await {
            Ok(views)
                if views
                    .iter()
                    .all(|l| l.follows_pending == 0 && l.follows_accepted > 0) =>
            {
                return
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    eprintln!("note: the national follows are still pending; the sample may reach national late");
}

fn token<'a>(tokens: &'a [(&str, String)], name: &str) -> &'a str {
    tokens
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.as_str())
        .unwrap_or_default()
}

/// One `curl` per part of a community, against what the sample made.
fn print_tries(
    sample: &sample::Sample,
    stirling: &[(&str, String)],
    falkirk: &[(&str, String)],
    national: &[(&str, String)],
) {
    let alice = token(stirling, "alice");
    let bob = token(falkirk, "bob");
    let nadia = token(national, "nadia");
    let event_enc =
        url::form_urlencoded::byte_serialize(sample.event_id.as_bytes()).collect::<String>();
    let intention_enc =
        url::form_urlencoded::byte_serialize(sample.intention_id.as_bytes()).collect::<String>();
    let s = "http://localhost:8081/api/v1";
    println!(
        r#"
Try each part (the README's "Try each part with the demo" says more):

  Who is here       curl -s -H 'Authorization: Bearer {alice}' {s}/communities/hwb/members
  Discussion        curl -s {s}/posts/{q}/thread
  Pinned questions  curl -s {s}/communities/hwb/pins
  Shared practice   curl -s '{s}/communities/hwb/posts?kind=link'
  Your feed         curl -s -H 'Authorization: Bearer {alice}' {s}/feed
  The event         curl -s {s}/events/{e}
  Its calendar      curl -s {s}/events/{e}.ics
  Nadia joins it    curl -s -X POST -H 'Authorization: Bearer {nadia}' http://localhost:8080/api/v1/events/{event_enc}/join
  Participants      curl -s {s}/events/{e}/participants
  Bob's intention   curl -s http://localhost:8082/api/v1/intentions/{i}
  Alice joins it    curl -s -X POST -H 'Authorization: Bearer {alice}' {s}/intentions/{intention_enc}/join
  Bob achieves it   curl -s -X POST -H 'Authorization: Bearer {bob}' http://localhost:8082/api/v1/intentions/{i}/achieved
"#,
        q = sample.question_key,
        e = sample.event_key,
        i = sample.intention_key,
    );
}
