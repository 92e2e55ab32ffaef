//! Logs and traces: JSON logs for `serve`, human-readable for `dev`, the level from
//! configuration unless `RUST_LOG` is set, and optional OTLP trace export with the W3C
//! trace context taken from incoming metadata.

use anyhow::Context as _;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::{LogFormat, LogSettings};

mod json;

/// Keeps the log writer and the trace exporter alive until [`Telemetry::shutdown`]
/// flushes them.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    _log_writer: WorkerGuard,
}

impl Telemetry {
    /// Exports the spans still buffered; the exporter's shutdown blocks, so it runs off the
    /// async workers. The log writer flushes when this returns.
    pub async fn shutdown(self) {
        if let Some(provider) = self.tracer_provider {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Installs the process-wide subscriber (once; later calls only return a handle).
pub fn init(settings: &LogSettings) -> anyhow::Result<Telemetry> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    // Lines are written by a dedicated thread, so a call does not wait on stderr; not
    // lossy: audit lines are never dropped (a full buffer slows callers instead).
    let (writer, log_writer) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let fmt = match settings.format {
        LogFormat::Json => json_layer(writer).boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .compact()
            .boxed(),
    };
    let tracer_provider = settings
        .otlp_endpoint
        .as_deref()
        .map(tracer_provider)
        .transpose()?;
    // Traces keep every call's spans whatever the log level: the log filter applies to
    // the log lines alone.
    let otel = tracer_provider.as_ref().map(|provider| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("pasarela"))
            .with_filter(LevelFilter::INFO)
    });
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init();
    // A panic is one log line like any other (its place, not its message, which may quote
    // a value), never a backtrace written beside the JSON lines.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(%location, "panic");
    }));
    Ok(Telemetry {
        tracer_provider,
        _log_writer: log_writer,
    })
}

/// The layer that writes `serve`'s JSON lines to `writer`.
pub fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .fmt_fields(json::JsonMembers)
        .event_format(json::JsonLines)
}

fn tracer_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .context("building the OTLP exporter")?;
    // The exporter speaks tonic, so its batches are sent from the tokio runtime rather
    // than from the SDK's own thread.
    let processor = BatchSpanProcessor::builder(exporter, Tokio).build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("pasarela")
                .build(),
        )
        .build())
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Makes `span` a child of the caller's trace (`traceparent` metadata), when tracing is on.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&Headers(headers))
    });
    let _ = span.set_parent(parent);
}
