//! The standalone crm server: `cargo run --release -p crm-server` serves the API on SQLite
//! (`./crm.db`, created and migrated on start) with no set-up, and runs the job workers in the
//! same process (`--no-workers` leaves them to `crm-server worker` processes).

use std::net::SocketAddr;
use std::path::PathBuf;

mod demo;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Parser, Subcommand};
use crm_core::Crm;
use crm_core::identity::{IdentityConfig, SigningKey, SigningKeys};
use crm_core::runner::RunnerConfig;
use crm_http::ApiState;

/// Configuration, from flags or the environment.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Config {
    /// Address to listen on.
    #[arg(long, env = "CRM_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// `postgres://…` for PostgreSQL; otherwise a SQLite file path.
    #[arg(long, env = "DATABASE_URL", default_value = "crm.db")]
    database_url: String,
    /// Access-token signing secret (base64url, at least 32 bytes). Required with --production.
    #[arg(long, env = "CRM_SIGNING_KEY", hide_env_values = true)]
    signing_key: Option<String>,
    /// Key id of the signing key (for rotation).
    #[arg(long, env = "CRM_SIGNING_KEY_ID", default_value = "k1")]
    signing_key_id: String,
    /// Production mode: refuse to start without an explicit signing key.
    #[arg(long, env = "CRM_PRODUCTION")]
    production: bool,
    /// Where development mode keeps its generated signing key.
    #[arg(long, env = "CRM_DEV_KEY_FILE", default_value = "crm-dev-signing-key")]
    dev_key_file: PathBuf,
    /// Origins allowed to call the API from browsers (repeat, or comma-separate in the env).
    #[arg(long = "cors-origin", env = "CRM_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Seconds before a request is answered 503.
    #[arg(long, env = "CRM_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    request_timeout_secs: u64,
    /// Send Strict-Transport-Security (when served over TLS, e.g. behind a TLS proxy).
    #[arg(long, env = "CRM_HSTS")]
    hsts: bool,
    /// Requests a minute per client address on /api/auth/*.
    #[arg(long, env = "CRM_AUTH_RATE_PER_MINUTE", default_value_t = 30)]
    auth_rate_per_minute: u32,
    /// Requests a minute per tenant (and per API key) elsewhere.
    #[arg(long, env = "CRM_API_RATE_PER_MINUTE", default_value_t = 1200)]
    api_rate_per_minute: u32,
    /// Base domain whose subdomains name tenants (`acme.<base>` → tenant `acme`).
    #[arg(long, env = "CRM_BASE_DOMAIN")]
    base_domain: Option<String>,
    /// Reverse proxies (addresses or CIDR blocks) whose X-Forwarded-For names the client for
    /// per-address limits (repeat, or comma-separate in the env). Without one the header is ignored.
    #[arg(long = "trusted-proxy", env = "CRM_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<crm_http::IpRange>,
    /// Load a demo tenant (slug `demo`, owner `owner@demo.example`) with a team and records.
    #[arg(long)]
    seed_demo: bool,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "CRM_LOG_JSON")]
    log_json: bool,
    /// SMTP server for the mail the CRM sends (`smtps://user:pass@host:465`,
    /// `smtp://user:pass@host:587?tls=required`); without it no mail is sent.
    #[arg(long, env = "CRM_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender of that mail.
    #[arg(long, env = "CRM_MAIL_FROM", default_value = "CRM <crm@localhost>")]
    mail_from: String,
    /// Address ranges webhooks may be delivered to besides public addresses (repeat, or
    /// comma-separate in the env): `127.0.0.0/8` for a receiver on this machine. Loopback,
    /// private, link-local and metadata addresses are refused unless listed.
    #[arg(long = "webhook-allow", env = "CRM_WEBHOOK_ALLOW", value_delimiter = ',')]
    webhook_allow: Vec<String>,
    /// Serve the API only: the job workers run in `crm-server worker` processes.
    #[arg(long, env = "CRM_NO_WORKERS")]
    no_workers: bool,
    /// What to run (default: the API server).
    #[command(subcommand)]
    command: Option<Command>,
}

/// What the process runs. Flags come before the subcommand (or from the environment).
#[derive(Debug, Subcommand)]
enum Command {
    /// The job workers only, no API: beside servers started with `--no-workers`, any number of
    /// them (claims are leased; on Postgres they share the work).
    Worker,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if config.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }

    let identity = IdentityConfig { keys: signing_keys(&config)?, ..IdentityConfig::default() };
    let store: std::sync::Arc<dyn crm_core::Store> = if config.database_url.starts_with("postgres://")
        || config.database_url.starts_with("postgresql://")
    {
        tracing::info!("store: PostgreSQL");
        std::sync::Arc::new(crm_storage_postgres::PgStore::connect(&config.database_url).await?)
    } else {
        tracing::info!(path = %config.database_url, "store: SQLite");
        std::sync::Arc::new(crm_storage_sqlite::SqliteStore::open(&config.database_url).await?)
    };
    let mut builder = Crm::builder_shared(store).identity(identity);
    if let Some(url) = &config.smtp_url {
        builder = builder.mailer(crm_http::mailer::SmtpMailer::new(url, &config.mail_from)?);
        tracing::info!(from = %config.mail_from, "mail: SMTP");
    } else {
        tracing::info!("mail: off (no --smtp-url)");
    }
    let outbound = crm_core::outbound::OutboundPolicy::from_allow_list(&config.webhook_allow.join(","))
        .map_err(|e| format!("--webhook-allow: {e}"))?;
    tracing::info!(allowed = ?outbound.allowed(), "webhooks: public addresses and the ranges allowed");
    // Every process delivers (or, with --no-workers, fans out) webhooks: events of a process
    // built without them reach no endpoint.
    let builder = builder.webhooks(crm_http::webhook_client::WebhookClient::new(outbound));
    let crm = builder.build();

    if let Some(Command::Worker) = config.command {
        let workers = crm.run_jobs(RunnerConfig::default())?;
        tracing::info!("crm worker running");
        shutdown_signal().await;
        workers.shutdown().await;
        tracing::info!("stopped");
        return Ok(());
    }
    let workers = if config.no_workers {
        tracing::info!("job workers: off here (--no-workers)");
        None
    } else {
        Some(crm.run_jobs(RunnerConfig::default())?)
    };

    let http = crm_http::HttpConfig {
        cors_origins: config.cors_origins.clone(),
        request_timeout: std::time::Duration::from_secs(config.request_timeout_secs),
        hsts: config.hsts,
        base_domain: config.base_domain.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        rate_limits: crm_http::RateLimits {
            auth_per_minute: config.auth_rate_per_minute,
            api_per_minute: config.api_rate_per_minute,
        },
    };
    if config.seed_demo {
        if demo::seed(&crm).await? {
            tracing::info!(
                tenant = "demo",
                users = "owner@demo.example, sam@, mia@, vic@demo.example",
                password = demo::DEMO_PASSWORD,
                "seeded the demo tenant"
            );
        } else {
            tracing::info!("the demo tenant exists already; not seeding again");
        }
    }
    let app = crm_http::router(ApiState::new(crm).with_config(http));
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    tracing::info!(address = %config.bind, "crm server listening");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    if let Some(workers) = workers {
        tracing::info!("draining the job workers");
        workers.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The configured key; in development a generated key kept in a file (with a warning).
fn signing_keys(config: &Config) -> Result<SigningKeys, Box<dyn std::error::Error>> {
    if let Some(secret) = &config.signing_key {
        let bytes = URL_SAFE_NO_PAD.decode(secret.trim_end_matches('='))?;
        return Ok(SigningKeys::new(SigningKey::new(config.signing_key_id.clone(), bytes)?, Vec::new()));
    }
    if config.production {
        return Err("--production needs CRM_SIGNING_KEY (base64url, at least 32 bytes)".into());
    }
    let key = match std::fs::read_to_string(&config.dev_key_file) {
        Ok(text) => SigningKey::new("dev", URL_SAFE_NO_PAD.decode(text.trim())?)?,
        Err(_) => {
            let key = SigningKey::generate();
            std::fs::write(&config.dev_key_file, key.secret_base64())?;
            SigningKey::new("dev", URL_SAFE_NO_PAD.decode(key.secret_base64())?)?
        }
    };
    tracing::warn!(
        file = %config.dev_key_file.display(),
        "development mode: using a generated signing key kept in a local file; set CRM_SIGNING_KEY and --production for real use"
    );
    Ok(SigningKeys::new(key, Vec::new()))
}

/// Resolves on SIGINT or SIGTERM; in-flight requests then finish before the server stops.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests and jobs");
}
