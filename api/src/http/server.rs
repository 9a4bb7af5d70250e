//! The HTTP server's own defences: a bounded number of connections, a
//! deadline for every request's headers (a connection that sends nothing,
//! or stays idle between requests, is closed), bounded headers, and a
//! graceful shutdown that lets requests under way finish.
//!
//! axum's `serve` has none of these settings, so connections are served
//! here with hyper directly, each with the router and its client's address.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How many connections, how long, how large.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Connections served at once; past it, new ones wait in the kernel's
    /// queue until one closes (an idle one closes after
    /// `header_read_timeout`). When bookings open, thousands of parents
    /// connect at once: the server raises its open-files limit to what
    /// the system allows and keeps this below it (see [`fit_connections`]).
    pub max_connections: usize,
    /// The longest a client may take to send a request's headers, and to
    /// start its next request on a kept-alive connection.
    pub header_read_timeout: Duration,
    /// The largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// The largest request body, in bytes (answered 413 beyond).
    pub max_body_bytes: usize,
    /// Requests served at once; past it, a request is answered at once
    /// `OVERLOADED` (503, `Retry-After`) rather than queued until its
    /// client gives up. Health and metrics are never refused.
    pub max_in_flight: usize,
    /// The mutations' rate limits (see `auth::throttle`).
    pub mutations: crate::auth::throttle::MutationLimits,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            max_in_flight: 256,
            mutations: Default::default(),
        }
    }
}

/// File descriptors kept for everything but the clients' connections: the
/// database pool, the listener, logs, files being uploaded.
const RESERVED_FILES: u64 = 256;

/// Raises the soft open-files limit to the hard one and returns how many
/// connections fit under it: `wanted`, or fewer (said in the log) when
/// the system allows fewer files than those connections and the reserve.
pub fn fit_connections(wanted: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "cannot read or raise the open-files limit");
            return wanted;
        }
    };
    let room = limit.saturating_sub(RESERVED_FILES).max(64);
    if (wanted as u64) <= room {
        return wanted;
    }
    tracing::warn!(
        wanted,
        open_files_limit = limit,
        serving = room,
        "fewer connections at once than asked: the open-files limit (ulimit -n) is too low"
    );
    room as usize
}

/// Serves `router` on `listener` until `shutdown` completes, then waits
/// (at most `drain`) for the connections still open to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    drain: Duration,
) {
    let permits = Arc::new(Semaphore::new(fit_connections(limits.max_connections)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(Some(limits.header_read_timeout));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most likely: wait for some
                    // to close rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(client));
            router.clone().oneshot(request)
        });
        let builder = builder.clone();
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%client, %error, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the shutdown's grace period");
    }
}
