//! Builds and runs one pasarela process: the enabled services behind the RPC and auth
//! layers, health and reflection on the gRPC port, metrics and probe health on the admin
//! port, and a bounded drain on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::routing::get;
use futures::future::BoxFuture;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::{Routes, RoutesBuilder};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::ServiceBuilder;

use pasarela_auth::SecretAttempts;
use pasarela_idempotency::{IdempotencyMetrics, Ledger};

use crate::config::{Config, ServiceName};
use crate::connections::{self, ConnectionMetrics, Incoming};
use crate::operations::Operations;
use crate::rpc_layer::{self, RpcLayer};

/// A started process. It runs until [`Running::shutdown`] or the future given to
/// [`Running::run_until`] says stop.
pub struct Running {
    pub grpc_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Drains and stops, as SIGTERM would.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.context("server task panicked")?
    }

    /// Serves until `signal` resolves (or the server fails), then drains and stops.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Running { stop, mut task, .. } = self;
        tokio::select! {
            result = &mut task => result.context("server task panicked")?,
            () = signal => {
                let _ = stop.send(true);
                task.await.context("server task panicked")?
            }
        }
    }
}

/// Binds the listeners, builds every enabled service, and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let mut routes = RoutesBuilder::default();
    // Every service, health and reflection included, decodes no more than the services do.
    let limit = config.max_request_bytes;
    routes.add_service(health_service.clone().max_decoding_message_size(limit));
    if config.reflection {
        add_reflection(&mut routes, &dedup(&config.services), limit)?;
    }
    let methods = rpc_layer::known_methods(CONTRACTS);
    config
        .auth
        .check_names(&rpc_layer::known_services(CONTRACTS), &methods)?;
    // Built before the services: the handlers that check secrets share its budgets.
    let auth = pasarela_auth::AuthLayer::new(&auth_settings(&config))
        .await
        .context("building the auth layer")?;
    let attempts = auth.secret_attempts();
    // One handle for every idempotent service of this server, registered once.
    let idempotency_metrics = IdempotencyMetrics::default();
    let mut ledgers = Vec::new();
    for name in dedup(&config.services) {
        let shared = Shared {
            attempts: &attempts,
            metrics: &idempotency_metrics,
        };
        ledgers.extend(add_service(&mut routes, &config, name, shared).await?);
        health
            .set_service_status(name.grpc_name(), ServingStatus::Serving)
            .await;
    }
    // Operators reconcile unknown outcomes wherever money-moving services run.
    let counter = (!ledgers.is_empty()).then(|| {
        let operations = Operations::new(ledgers, config.operations.clone());
        let counter = operations.spawn_counter();
        routes.add_service(
            operations
                .into_server()
                .max_decoding_message_size(config.max_request_bytes),
        );
        counter
    });

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding gRPC address {}", config.listen))?;
    let grpc_addr = listener.local_addr()?;
    let admin = match config.admin_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding admin address {addr}"))?,
        ),
        None => None,
    };
    let admin_addr = admin.as_ref().map(TcpListener::local_addr).transpose()?;

    config.connections.validate()?;
    config.operations.validate()?;
    config.check_tenants()?;
    // TLS through an acceptor that re-reads renewed certificate files.
    let tls = config
        .tls
        .as_ref()
        .map(pasarela_auth::tls_acceptor)
        .transpose()
        .context("server TLS")?;
    let connection_metrics = ConnectionMetrics::default();
    let incoming = connections::incoming(
        listener,
        &config.connections,
        tls,
        connection_metrics.clone(),
    );
    let (stop, stopped) = watch::channel(false);
    let http2 = &config.http2;
    let server = tonic::transport::Server::builder()
        .max_connection_age(
            config
                .max_connection_age
                .unwrap_or(std::time::Duration::MAX),
        )
        .max_connection_age_grace(http2.max_connection_age_grace)
        .max_concurrent_streams(http2.max_concurrent_streams)
        .http2_max_pending_accept_reset_streams(Some(http2.max_pending_accept_reset_streams))
        .http2_max_local_error_reset_streams(Some(http2.max_local_error_reset_streams))
        .concurrency_limit_per_connection(http2.concurrency_limit_per_connection)
        .http2_max_header_list_size(http2.max_header_list_size)
        .http2_keepalive_interval(Some(http2.keepalive_interval))
        .http2_keepalive_timeout(Some(http2.keepalive_timeout));
    let router = server
        .layer(
            ServiceBuilder::new()
                .layer(RpcLayer::new(
                    methods,
                    rpc_layer::client_streaming_methods(CONTRACTS),
                    config.connections.message_timeout,
                ))
                .layer(auth),
        )
        .add_routes(routes.routes());

    // The admin port outlives the drain so probes keep reading NOT_SERVING until the end.
    let registry = metrics_registry(&idempotency_metrics, &connection_metrics);
    let admin_task =
        admin.map(|listener| tokio::spawn(serve_admin(listener, health_service, registry)));
    let services = dedup(&config.services);
    let shutdown = config.shutdown.clone();
    let task = tokio::spawn(async move {
        let graceful = drain_signal(stopped.clone(), health, services, shutdown.drain_delay);
        let serving: BoxFuture<'static, Result<(), tonic::transport::Error>> = match incoming {
            Incoming::Plain(connections) => {
                Box::pin(router.serve_with_incoming_shutdown(connections, graceful))
            }
            Incoming::Tls(connections) => {
                Box::pin(router.serve_with_incoming_shutdown(connections, graceful))
            }
        };
        tokio::pin!(serving);
        let mut bound = stopped;
        let result = tokio::select! {
            result = &mut serving => result.context("gRPC server failed"),
            () = async {
                let _ = bound.wait_for(|stop| *stop).await;
                tokio::time::sleep(shutdown.drain_delay.saturating_add(shutdown.drain_timeout)).await;
            } => {
                tracing::warn!("drain bound reached; closing the remaining calls");
                Ok(())
            }
        };
        if let Some(admin_task) = admin_task {
            admin_task.abort();
        }
        if let Some(counter) = counter {
            counter.abort();
        }
        tracing::info!("pasarela stopped");
        result
    });
    tracing::info!(%grpc_addr, ?admin_addr, "pasarela serving");
    Ok(Running {
        grpc_addr,
        admin_addr,
        stop,
        task,
    })
}

/// Resolves when in-flight calls may start draining: health is turned NOT_SERVING at the
/// stop signal, and new calls are still accepted during `delay` (load balancers and
/// kube-proxy take a moment to notice).
async fn drain_signal(
    mut stopped: watch::Receiver<bool>,
    health: HealthReporter,
    services: Vec<ServiceName>,
    delay: std::time::Duration,
) {
    let _ = stopped.wait_for(|stop| *stop).await;
    tracing::info!("stop requested: health NOT_SERVING, draining");
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    for name in services {
        health
            .set_service_status(name.grpc_name(), ServingStatus::NotServing)
            .await;
    }
    tokio::time::sleep(delay).await;
}

/// What every service of one server shares.
#[derive(Clone, Copy)]
struct Shared<'a> {
    /// Budgets of the secrets the providers check.
    attempts: &'a SecretAttempts,
    metrics: &'a IdempotencyMetrics,
}

/// Adds one service; answers its idempotency ledger when it moves money.
async fn add_service(
    routes: &mut RoutesBuilder,
    config: &Config,
    name: ServiceName,
    shared: Shared<'_>,
) -> anyhow::Result<Option<Ledger>> {
    let Shared { attempts, metrics } = shared;
    let limit = config.max_request_bytes;
    let missing = || format!("service {name:?} is enabled but has no configuration section");
    Ok(match name {
        ServiceName::Security => {
            let section = config.security.clone().with_context(missing)?;
            let (server, ledger) =
                pasarela_security::service(section, attempts.clone(), metrics.clone()).await?;
            routes.add_service(server.max_decoding_message_size(limit));
            Some(ledger)
        }
        ServiceName::Bureau => {
            let section = config.bureau.clone().with_context(missing)?;
            let server = pasarela_bureau::service(section, attempts.clone()).await?;
            routes.add_service(server.max_decoding_message_size(limit));
            None
        }
        ServiceName::RecurringPayments => {
            let section = config.recurring_payments.clone().with_context(missing)?;
            let (server, ledger) =
                pasarela_recurring_payments::service(section, metrics.clone()).await?;
            routes.add_service(server.max_decoding_message_size(limit));
            Some(ledger)
        }
    })
}

/// Every contract a call may name: pasarela's, health's and reflection's.
pub const CONTRACTS: &[&[u8]] = &[
    pasarela::FILE_DESCRIPTOR_SET,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

/// The operators' service, served beside every service that moves money.
const OPERATIONS_SERVICE: &str = "pasarela.operations.v1.OperationsService";

/// Services reflection lists besides the enabled pasarela ones.
const INFRASTRUCTURE_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Reflection lists what this process serves: a pod running one service does not
/// advertise the other two.
fn add_reflection(
    routes: &mut RoutesBuilder,
    services: &[ServiceName],
    limit: usize,
) -> anyhow::Result<()> {
    let builder = || {
        let operations = services
            .iter()
            .any(|name| name.moves_money())
            .then_some(OPERATIONS_SERVICE);
        let names = services
            .iter()
            .map(|name| name.grpc_name())
            .chain(operations)
            .chain(INFRASTRUCTURE_SERVICES);
        names.fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(pasarela::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
            |builder, name| builder.with_service_name(name),
        )
    };
    // Each version lists the other too, so `list` shows both whichever a client speaks.
    let v1 = builder()
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("reflection v1")?;
    let v1alpha = builder()
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("reflection v1alpha")?;
    routes.add_service(v1.max_decoding_message_size(limit));
    routes.add_service(v1alpha.max_decoding_message_size(limit));
    Ok(())
}

/// The auth settings, with the rate-limit Redis's key prefix of the one service served,
/// `pasarela:<service>`, when none is configured: each service's replicas share their
/// buckets with each other only, and the deploy limits each service's Redis ACL user to its
/// own prefix (docs/deploy.md, "Redis"). A process of several services keeps the auth
/// crate's default, `pasarela`.
fn auth_settings(config: &Config) -> pasarela_auth::Config {
    let mut auth = config.auth.clone();
    if let (None, [service]) = (
        &auth.rate_limit_redis_prefix,
        dedup(&config.services).as_slice(),
    ) {
        let name = match service {
            ServiceName::Security => "security",
            ServiceName::Bureau => "bureau",
            ServiceName::RecurringPayments => "recurring-payments",
        };
        auth.rate_limit_redis_prefix = Some(format!("pasarela:{name}"));
    }
    auth
}

fn dedup(services: &[ServiceName]) -> Vec<ServiceName> {
    ServiceName::ALL
        .into_iter()
        .filter(|name| services.contains(name))
        .collect()
}

/// The admin port: `/metrics` for Prometheus and `grpc.health.v1` in plaintext for
/// Kubernetes probes (which cannot present a client certificate).
async fn serve_admin<H>(listener: TcpListener, health: H, registry: Registry)
where
    H: tonic::server::NamedService
        + tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    H::Future: Send + 'static,
{
    let registry = Arc::new(registry);
    let metrics = get(move || {
        let registry = registry.clone();
        async move { render_metrics(&registry) }
    });
    let app = Routes::new(health)
        .into_axum_router()
        .route("/metrics", metrics);
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "admin server failed");
    }
}

fn metrics_registry(idempotency: &IdempotencyMetrics, connections: &ConnectionMetrics) -> Registry {
    let mut registry = Registry::default();
    connections.register(&mut registry);
    rpc_layer::register(&mut registry);
    pasarela_provider::metrics::register(&mut registry);
    pasarela_provider::credential::register(&mut registry);
    idempotency.register(&mut registry);
    registry
}

pub(crate) fn render_metrics(registry: &Registry) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => (
            [(
                http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
