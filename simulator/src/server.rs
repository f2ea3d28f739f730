//! Starting the simulator: as the binary does, or in-process from tests on
//! an ephemeral loopback port.

use crate::config::SimConfig;
use crate::state::SimState;
use axum::Router;
use axum::routing::any;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The path of the API endpoint, as on the real nodes.
pub const API_PATH: &str = "/route/rest";

pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route(API_PATH, any(crate::protocol::rest))
        .merge(crate::admin::router())
        .with_state(state)
}

/// A running simulator. Dropping it stops the server.
pub struct SimServer {
    addr: SocketAddr,
    state: Arc<SimState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimServer {
    /// Binds `config.listen` and serves in a background task.
    pub async fn start(config: SimConfig) -> std::io::Result<SimServer> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState::new(config));
        let app = router(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(SimServer {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to configure as the client's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}{API_PATH}", self.addr)
    }

    /// The base URL of the admin endpoints (`…/_sim/faults`).
    pub fn admin_base(&self) -> String {
        format!("http://{}/_sim", self.addr)
    }

    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    /// Serves until the task ends (for the binary).
    pub async fn wait(mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
