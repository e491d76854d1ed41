//! Starting an instance: storage, the instance actor, the federation config, the delivery
//! worker and the HTTP server.

use crate::{
    config::Config,
    error::{Error, Result},
    federation::{self, actor::APPLICATION},
    services::{keys, links},
    state::{AppState, Inner},
    store::{self, actor, delivery_queue},
};
use activitypub_federation::config::FederationConfig;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
};
use std::{sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::Notify};

/// How often links are re-checked for communities created since.
const LINK_SYNC_EVERY: Duration = Duration::from_secs(600);

/// Everything an instance needs, without the HTTP server: used by `serve`, `admin` and tests.
pub async fn build(config: Config) -> Result<FederationConfig<AppState>> {
    let db = store::connect(&config.database_url).await?;
    let instance_actor = ensure_instance_actor(&db, &config).await?;
    let http = delivery_client(config.dev_mode())?;
    let media = crate::media_store::from_config(&config)?;
    let state = AppState(Arc::new(Inner {
        config,
        db,
        delivery_wakeup: Arc::new(Notify::new()),
        instance_actor,
        http,
        signing_keys: Default::default(),
        media,
    }));
    federation::federation_config(state).await
}

/// Outside development mode the client refuses host names that resolve to loopback or private
/// addresses, so a remote actor cannot aim our deliveries at internal services.
fn delivery_client(dev_mode: bool) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("Cairn/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(
            activitypub_federation::resolver::ValidatingDnsResolver::new(vec![], !dev_mode),
        ))
        .build()
        .map_err(|e| Error::Internal(format!("HTTP client: {e}")))
}

async fn ensure_instance_actor(db: &DatabaseConnection, config: &Config) -> Result<actor::Model> {
    let ap_id = format!("{}/actor", config.origin());
    if let Some(found) = actor::Entity::find()
        .filter(actor::Column::ApId.eq(&ap_id))
        .one(db)
        .await?
    {
        return Ok(found);
    }
    let model = keys::new_local_actor(
        &config.origin(),
        keys::LocalActor {
            kind: APPLICATION,
            ap_id,
            name: config.domain.clone(),
            local_name: None,
            display_name: Some(config.instance_name()),
            summary: None,
            collections: false,
        },
    )
    .await?;
    Ok(model.insert(db).await?)
}

/// A running instance.
pub struct Running {
    pub federation: FederationConfig<AppState>,
    pub address: std::net::SocketAddr,
    pub server: tokio::task::JoinHandle<()>,
}

/// Starts the delivery worker, the link sync and the HTTP server; returns once listening.
pub async fn start(federation: FederationConfig<AppState>) -> Result<Running> {
    let state = federation.to_request_data().app_data().clone();
    if state.db.get_database_backend() == DbBackend::Sqlite {
        delivery_queue::release_all_claims(&state.db).await?;
    }
    tokio::spawn(federation::delivery::run_worker(federation.clone()));
    tokio::spawn(crate::services::reminders::run_worker(federation.clone()));

    let sync_config = federation.clone();
    tokio::spawn(async move {
        loop {
            let ctx = sync_config.to_request_data();
            if let Err(e) = links::sync_all(&ctx).await {
                tracing::warn!("link sync failed: {e}");
            }
            tokio::time::sleep(LINK_SYNC_EVERY).await;
        }
    });

    let listener = TcpListener::bind(state.config.bind)
        .await
        .map_err(|e| Error::Internal(format!("cannot listen on {}: {e}", state.config.bind)))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let app = crate::http::router(federation.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("HTTP server stopped: {e}");
        }
    });
    tracing::info!(
        "Cairn {} is listening on http://{address} as {}",
        state.config.instance_name(),
        state.config.origin()
    );
    Ok(Running {
        federation,
        address,
        server,
    })
}

/// `cairn serve`: runs until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    let federation = build(config).await?;
    let running = start(federation).await?;
    shutdown_signal().await;
    running.server.abort();
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outside development mode, a host name that resolves to a loopback (or private) address
    /// is refused before any connection is made: a remote actor cannot aim us at internal
    /// services.
    #[tokio::test]
    async fn outside_development_mode_private_addresses_are_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let url = format!("http://localhost:{port}/inbox");
        let production = delivery_client(false).expect("client");
        let refused = production.post(&url).body("{}").send().await;
        let error = format!("{:?}", refused.expect_err("refused"));
        assert!(error.contains("ResolveInternalIpError"), "{error}");
        // In development mode the same request is made (and fails only because nobody answers
        // HTTP on that socket).
        drop(listener);
        let dev = delivery_client(true).expect("client");
        let error = format!(
            "{:?}",
            dev.post(&url).body("{}").send().await.expect_err("closed")
        );
        assert!(!error.contains("ResolveInternalIpError"), "{error}");
    }
}
