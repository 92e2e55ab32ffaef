//! The ledger's schema, versioned in the repository: each migration applied once, in
//! order, all pending ones in one transaction under an advisory lock, so that replicas
//! starting together, or `pasarela migrate` beside them, never apply one twice.

use anyhow::Context as _;
use tokio_postgres::Client;

use super::postgres::PostgresConfig;

/// Every migration: its version, its name and its statements.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "records", include_str!("../migrations/0001_records.sql")),
    (
        2,
        "transaction_ids",
        include_str!("../migrations/0002_transaction_ids.sql"),
    ),
    (
        3,
        "append_only",
        include_str!("../migrations/0003_append_only.sql"),
    ),
    (
        4,
        "open_key_owners",
        include_str!("../migrations/0004_open_key_owners.sql"),
    ),
    (5, "leases", include_str!("../migrations/0005_leases.sql")),
    (
        6,
        "bindings",
        include_str!("../migrations/0006_bindings.sql"),
    ),
];

/// The schema version this build reads and writes.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, ..)| *version)
}

/// What a migration run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    pub from: i32,
    pub to: i32,
}

/// Brings the schema of `config` to `up_to` (the latest when `None`); the command
/// `pasarela migrate` and `migrate_at_start` run it.
pub async fn migrate(config: &PostgresConfig, up_to: Option<i32>) -> anyhow::Result<Migrated> {
    let store = super::postgres::connect_for_migration(config).await?;
    apply_to(&store, config.schema()?, up_to.unwrap_or_else(latest)).await
}

/// Applies every pending migration.
pub(crate) async fn apply(client: &Client, schema: &str) -> anyhow::Result<Migrated> {
    apply_to(client, schema, latest()).await
}

async fn apply_to(client: &Client, schema: &str, up_to: i32) -> anyhow::Result<Migrated> {
    anyhow::ensure!(
        (0..=latest()).contains(&up_to),
        "no migration {up_to}: this build knows 1 to {}",
        latest()
    );
    client.batch_execute("BEGIN").await?;
    let applied = apply_in_transaction(client, schema, up_to).await;
    let end = if applied.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    client.batch_execute(end).await?;
    let migrated = applied?;
    if migrated.from != migrated.to {
        tracing::info!(
            schema,
            from = migrated.from,
            to = migrated.to,
            "idempotency schema migrated"
        );
    }
    Ok(migrated)
}

async fn apply_in_transaction(
    client: &Client,
    schema: &str,
    up_to: i32,
) -> anyhow::Result<Migrated> {
    // A migration may wait behind another replica's, or take long on a big table: the
    // bounds of money calls do not apply to it. A table lock it waits for queues every
    // money call behind it, so that wait is short; a refused run is simply run again.
    client
        .batch_execute(
            "SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0; \
             SET LOCAL lock_timeout = '5s'",
        )
        .await?;
    client
        .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&schema])
        .await?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await?
        .is_some();
    // Creating a schema needs more than using one: only asked for when it is missing.
    if !exists {
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .with_context(|| format!("creating the schema {schema}"))?;
    }
    client
        .batch_execute(&format!(
            "SET LOCAL search_path TO {schema};
             CREATE TABLE IF NOT EXISTS schema_migrations (
               version integer PRIMARY KEY,
               name text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now()
             )"
        ))
        .await?;
    let from = current(client, schema).await?;
    for (version, name, statements) in MIGRATIONS {
        if *version <= from || *version > up_to {
            continue;
        }
        client
            .batch_execute(statements)
            .await
            .with_context(|| format!("migration {version} ({name})"))?;
        client
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
    }
    Ok(Migrated {
        from,
        to: from.max(up_to),
    })
}

/// The schema's version: 0 when no migration ran.
async fn current(client: &Client, schema: &str) -> anyhow::Result<i32> {
    let table = format!("{schema}.schema_migrations");
    let known = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await?
        .get::<_, bool>(0);
    if !known {
        return Ok(0);
    }
    let row = client
        .query_one(&format!("SELECT max(version) FROM {table}"), &[])
        .await?;
    Ok(row.get::<_, Option<i32>>(0).unwrap_or(0))
}

/// Refuses a schema older than this build; a newer one (a later release rolled out
/// first) is used, as migrations only add.
pub(crate) async fn check(client: &Client, schema: &str) -> anyhow::Result<()> {
    let version = current(client, schema).await?;
    anyhow::ensure!(
        version >= latest(),
        "the idempotency schema {schema} is at version {version}, this build needs {}: run \
         `pasarela migrate` (or set idempotency.postgres.migrate_at_start)",
        latest()
    );
    if version > latest() {
        tracing::warn!(
            schema,
            version,
            "the idempotency schema is newer than this build"
        );
    }
    Ok(())
}
