//! The `cairn` command line.

use crate::{
    config::Config,
    server,
    services::{communities, links, members},
};
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cairn",
    version,
    about = "Federated communities for teachers' professional learning"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the instance (the default): config from cairn.toml and CAIRN_* variables.
    Serve,
    /// Administer this instance (works while it runs).
    Admin {
        #[command(subcommand)]
        action: Admin,
    },
    /// Start two local-authority instances and a national one on loopback, linked, with demo data.
    Demo {
        /// Folder for the three SQLite files.
        #[arg(long, default_value = "demo-data")]
        dir: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum Admin {
    /// Create a member; prints the member's API token on standard output.
    CreateMember {
        name: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Where reminder emails go (shown to others only if the member opts in).
        #[arg(long)]
        email: Option<String>,
        /// Communities to join at sign-up, comma-separated hashtags (`hwb,cpdlead`, or
        /// `hwb@national.example` for one elsewhere).
        #[arg(long, value_delimiter = ',')]
        join: Vec<String>,
    },
    /// Issue another API token for an existing member; prints it.
    IssueToken { name: String },
    /// Create a community for a hashtag.
    CreateCommunity {
        tag: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        summary: Option<String>,
    },
    /// Make a member a moderator (facilitator) of a community: they may pin posts and appoint
    /// other moderators.
    AddModerator { tag: String, member: String },
    /// Aggregate another instance: our communities follow the same-tag ones there.
    Link { url: String },
    /// List links and the state of their follows.
    Links,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Admin commands print results; the server's progress would only get in the way.
    // (The demo's instructions, too, are easier to follow without every delivery logged.)
    let quiet = matches!(
        cli.command,
        Some(Command::Admin { .. } | Command::Demo { .. })
    );
    init_logging(if quiet {
        "warn"
    } else {
        "info,sqlx=warn,sea_orm_migration=warn"
    });
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let config = Config::load()?;
            server::serve(config).await?;
        }
        Command::Admin { action } => admin(action).await?,
        Command::Demo { dir } => crate::demo::run(&dir).await?,
    }
    Ok(())
}

fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn admin(action: Admin) -> anyhow::Result<()> {
    let config = Config::load()?;
    let federation = server::build(config).await?;
    let ctx = federation.to_request_data();
    let state = ctx.app_data();
    match action {
        Admin::CreateMember {
            name,
            display_name,
            email,
            join,
        } => {
            let join: Vec<String> = join.into_iter().filter(|t| !t.trim().is_empty()).collect();
            // Checked before the member exists, so a mistyped hashtag creates nobody.
            let communities = if join.is_empty() {
                Vec::new()
            } else {
                crate::services::directory::resolve_all(&ctx, &join).await?
            };
            let (member, token) = members::create(state, &name, display_name.as_deref()).await?;
            if let Some(email) = email {
                members::set_email(state, &member, &email).await?;
            }
            for c in &communities {
                let joined = crate::services::directory::join(&ctx, &member, c).await?;
                eprintln!("joined {} ({joined})", c.ap_id);
            }
            eprintln!("created member {} — API token:", member.ap_id);
            println!("{token}");
        }
        Admin::IssueToken { name } => {
            let member = members::find_local(state, &name)
                .await?
                .with_context(|| format!("no member {name:?} on this instance"))?;
            println!("{}", members::issue_token(state, &member).await?);
        }
        Admin::CreateCommunity {
            tag,
            display_name,
            summary,
        } => {
            let community =
                communities::create(state, &tag, display_name.as_deref(), summary.as_deref())
                    .await?;
            eprintln!("created community {}", community.ap_id);
            // Linked instances may have this community too.
            links::sync_all(&ctx).await?;
            crate::federation::delivery::flush(&ctx).await?;
        }
        Admin::AddModerator { tag, member } => {
            let community = communities::get_local(state, &tag).await?;
            let found = members::find_local(state, &member)
                .await?
                .with_context(|| format!("no member {member:?} on this instance"))?;
            let txn = sea_orm::TransactionTrait::begin(&state.db).await?;
            let added = crate::services::moderators::appoint(&txn, &community, &found).await?;
            txn.commit().await?;
            eprintln!(
                "{} {} a moderator of {}",
                found.ap_id,
                if added { "is now" } else { "was already" },
                community.ap_id
            );
        }
        Admin::Link { url } => {
            let followed = links::link(&ctx, &url).await?;
            let sent = crate::federation::delivery::flush(&ctx).await?;
            eprintln!("linked {url}: following {followed} communities there ({sent} follow requests sent)");
        }
        Admin::Links => {
            let all = links::list(state).await?;
            if all.is_empty() {
                eprintln!("no links yet; add one with `cairn admin link URL`");
            }
            for l in all {
                println!(
                    "{}\t{} communities followed\t{} accepted\t{} pending",
                    l.base_url, l.communities_followed, l.follows_accepted, l.follows_pending
                );
            }
        }
    }
    Ok(())
}
