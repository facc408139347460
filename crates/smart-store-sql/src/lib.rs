//! SQLite and PostgreSQL [`Backend`]s for `smart-store`.
//!
//! Two tables, one for records and one for leases, created by numbered migrations applied when
//! the backend opens (a third table remembers which were applied; a database migrated by a newer
//! build is refused). Every operation is a single SQL statement, so atomicity comes from the
//! database: `INSERT … ON CONFLICT DO UPDATE … WHERE expired` for put-if-absent and leases,
//! `DELETE … RETURNING` for take, `UPDATE … WHERE version = $n RETURNING version` for
//! compare-and-swap. Expiries are computed in SQL from the database's clock.
//!
//! SQLite runs in WAL mode with a busy timeout, so several processes can share one file; its
//! writes are serialized by the database lock. PostgreSQL is reached without TLS (loopback or a
//! private network); queries are plain strings (no compile-time macros, no database at build
//! time).
//!
//! ```sql
//! CREATE TABLE smart_store_records (
//!     namespace  TEXT   NOT NULL,   -- pending | session | meta
//!     key        TEXT   NOT NULL,   -- SHA-256 of the session id / state, hex
//!     version    BIGINT NOT NULL,
//!     created_ms BIGINT NOT NULL,   -- database clock, Unix ms
//!     expires_ms BIGINT,            -- NULL: no expiry
//!     body       BYTEA  NOT NULL,   -- sealed record (BLOB in SQLite)
//!     PRIMARY KEY (namespace, key));
//! CREATE TABLE smart_store_leases (
//!     key        TEXT   PRIMARY KEY,
//!     owner      TEXT   NOT NULL,   -- SHA-256 of the owner id, hex
//!     expires_ms BIGINT NOT NULL);
//! ```

use std::time::Duration;

use async_trait::async_trait;
use smart_core::store::StoreError;
use smart_store::backend::{
    Backend, CasOutcome, HashedKey, Namespace, RecordLifetime, StoredRecord, ms_i64,
    ttl_at_creation,
};
use sqlx::Row as _;

/// The newest schema migration this build knows.
pub const SCHEMA_VERSION: i64 = 1;

/// How long SQLite waits for another connection's (or process's) write lock.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections per pool.
pub const MAX_CONNECTIONS: u32 = 8;

#[derive(Debug, Clone)]
enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool (the same code for both databases).
macro_rules! with_pool {
    ($self:expr, $pool:ident => $body:expr) => {
        match &$self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite($pool) => $body,
            #[cfg(feature = "postgres")]
            Pool::Postgres($pool) => $body,
        }
    };
}

/// A SQLite or PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct SqlBackend {
    pool: Pool,
    name: &'static str,
    now_sql: &'static str,
}

impl SqlBackend {
    /// Opens (creating if needed) the SQLite database at `url` (`sqlite://PATH` or
    /// `sqlite::memory:`), in WAL mode with a busy timeout, and applies the migrations.
    #[cfg(feature = "sqlite")]
    pub async fn open_sqlite(url: &str) -> Result<SqlBackend, StoreError> {
        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };
        use std::str::FromStr as _;
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| driver("sqlite", "open", e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        // Opening sets `journal_mode = WAL`, and SQLite may answer SQLITE_BUSY to that without
        // calling the busy handler while another process opens the same new database (the
        // `smart` CLI started twice at once). That answer is temporary: open again, with a short
        // back-off, until the busy timeout has passed.
        let deadline = std::time::Instant::now() + SQLITE_BUSY_TIMEOUT;
        let mut delay = Duration::from_millis(10);
        let pool = loop {
            let attempt = SqlitePoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .acquire_timeout(SQLITE_BUSY_TIMEOUT)
                .connect_with(options.clone())
                .await;
            match attempt {
                Ok(pool) => break pool,
                Err(e) if is_sqlite_busy(&e) && std::time::Instant::now() + delay < deadline => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(250));
                }
                Err(e) => return Err(driver("sqlite", "open", e)),
            }
        };
        let backend = SqlBackend {
            pool: Pool::Sqlite(pool),
            name: "sqlite",
            now_sql: "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
        };
        backend.migrate().await?;
        Ok(backend)
    }

    /// Connects to the PostgreSQL database at `url` (no TLS) and applies the migrations.
    #[cfg(feature = "postgres")]
    pub async fn open_postgres(url: &str) -> Result<SqlBackend, StoreError> {
        use sqlx::postgres::PgPoolOptions;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| driver("postgres", "connect", e))?;
        let backend = SqlBackend {
            pool: Pool::Postgres(pool),
            name: "postgres",
            now_sql: "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        };
        backend.migrate().await?;
        Ok(backend)
    }

    /// The statement for this database: `{now}` becomes its clock expression. (`$N`
    /// placeholders are understood by both PostgreSQL and sqlx's SQLite driver.)
    fn sql(&self, text: &str) -> String {
        text.replace("{now}", self.now_sql)
    }

    fn blob_type(&self) -> &'static str {
        match self.name {
            "sqlite" => "BLOB",
            _ => "BYTEA",
        }
    }

    fn err(&self, operation: &'static str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        move |e| driver(self.name, operation, e)
    }

    async fn execute(&self, operation: &'static str, sql: &str) -> Result<u64, StoreError> {
        let sql = self.sql(sql);
        with_pool!(self, pool => sqlx::query(&sql).execute(pool).await.map(|r| r.rows_affected()))
            .map_err(self.err(operation))
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrations: [(i64, Vec<String>); 1] = [(
            1,
            vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS smart_store_records (
                        namespace TEXT NOT NULL,
                        key TEXT NOT NULL,
                        version BIGINT NOT NULL,
                        created_ms BIGINT NOT NULL,
                        expires_ms BIGINT,
                        body {} NOT NULL,
                        PRIMARY KEY (namespace, key))",
                    self.blob_type()
                ),
                "CREATE INDEX IF NOT EXISTS smart_store_records_expiry
                    ON smart_store_records (expires_ms)"
                    .to_owned(),
                "CREATE TABLE IF NOT EXISTS smart_store_leases (
                    key TEXT PRIMARY KEY,
                    owner TEXT NOT NULL,
                    expires_ms BIGINT NOT NULL)"
                    .to_owned(),
            ],
        )];
        if self.name == "postgres" {
            // Several processes may start at once; CREATE TABLE IF NOT EXISTS can still race in
            // PostgreSQL's catalog, so migrations run under a session-level advisory lock.
            #[cfg(feature = "postgres")]
            if let Pool::Postgres(pool) = &self.pool {
                let mut conn = pool.acquire().await.map_err(self.err("migrate"))?;
                sqlx::query("SELECT pg_advisory_lock(7243150021)")
                    .execute(&mut *conn)
                    .await
                    .map_err(self.err("migrate"))?;
                let result = self.apply(&migrations).await;
                let _ = sqlx::query("SELECT pg_advisory_unlock(7243150021)")
                    .execute(&mut *conn)
                    .await;
                return result;
            }
        }
        self.apply(&migrations).await
    }

    async fn apply(&self, migrations: &[(i64, Vec<String>)]) -> Result<(), StoreError> {
        self.execute(
            "migrate",
            "CREATE TABLE IF NOT EXISTS smart_store_migrations (version BIGINT PRIMARY KEY)",
        )
        .await?;
        let sql = self
            .sql("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM smart_store_migrations");
        let applied: i64 = with_pool!(self, pool => sqlx::query_scalar(&sql).fetch_one(pool).await)
            .map_err(self.err("migrate"))?;
        if applied > SCHEMA_VERSION {
            return Err(StoreError::NewerFormat {
                found: u32::try_from(applied).unwrap_or(u32::MAX),
                supported: SCHEMA_VERSION as u32,
            });
        }
        for (version, statements) in migrations.iter().filter(|(v, _)| *v > applied) {
            for statement in statements {
                self.execute("migrate", statement).await?;
            }
            let sql = self.sql(
                "INSERT INTO smart_store_migrations (version) VALUES ($1) ON CONFLICT DO NOTHING",
            );
            with_pool!(self, pool => sqlx::query(&sql).bind(*version).execute(pool).await.map(|_| ()))
                .map_err(self.err("migrate"))?;
        }
        Ok(())
    }

    /// Every stored cell (keys, owners, bodies) as bytes, read straight from the tables: for
    /// audits and the trial that checks nothing is stored in clear.
    pub async fn raw_dump(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let records = self.sql("SELECT namespace, key, body FROM smart_store_records");
        let leases = self.sql("SELECT key, owner FROM smart_store_leases");
        let mut out = Vec::new();
        with_pool!(self, pool => {
            for row in sqlx::query(&records).fetch_all(pool).await.map_err(self.err("dump"))? {
                out.push(row.try_get::<String, _>(0).map_err(self.err("dump"))?.into_bytes());
                out.push(row.try_get::<String, _>(1).map_err(self.err("dump"))?.into_bytes());
                out.push(row.try_get::<Vec<u8>, _>(2).map_err(self.err("dump"))?);
            }
            for row in sqlx::query(&leases).fetch_all(pool).await.map_err(self.err("dump"))? {
                out.push(row.try_get::<String, _>(0).map_err(self.err("dump"))?.into_bytes());
                out.push(row.try_get::<String, _>(1).map_err(self.err("dump"))?.into_bytes());
            }
        });
        Ok(out)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// Whether a database error may go away by itself (busy, locked, connection trouble).
fn is_temporary(backend: &str, e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if backend == "sqlite" {
                // SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes.
                code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
            } else {
                // Connection exceptions, serialization failures, deadlocks, shutdowns,
                // too many connections.
                code.starts_with("08")
                    || matches!(
                        &*code,
                        "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300"
                    )
            }
        }
        _ => false,
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED (or one of their extended codes): another connection holds the
/// lock. Unlike [`is_temporary`], I/O errors do not count (a missing directory stays missing).
#[cfg(feature = "sqlite")]
fn is_sqlite_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        _ => false,
    }
}

fn driver(backend: &'static str, operation: &'static str, e: sqlx::Error) -> StoreError {
    StoreError::Driver {
        backend,
        operation,
        temporary: is_temporary(backend, &e),
        source: Box::new(e),
    }
}

fn opt_ms(d: Option<Duration>) -> Option<i64> {
    d.map(ms_i64)
}

fn version_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative version {v}")))
}

#[async_trait]
impl Backend for SqlBackend {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn now_ms(&self) -> Result<u64, StoreError> {
        let sql = self.sql("SELECT {now}");
        let now: i64 = with_pool!(self, pool => sqlx::query_scalar(&sql).fetch_one(pool).await)
            .map_err(self.err("clock"))?;
        Ok(u64::try_from(now).unwrap_or(0))
    }

    async fn put_if_absent(
        &self,
        namespace: Namespace,
        key: &HashedKey,
        bytes: &[u8],
        lifetime: &RecordLifetime,
    ) -> Result<bool, StoreError> {
        // Inserts, or replaces an expired record; a live record makes the WHERE false and
        // nothing is written.
        let sql = self.sql(
            "INSERT INTO smart_store_records
                 (namespace, key, version, created_ms, expires_ms, body)
             VALUES ($1, $2, 1, {now}, {now} + $3, $4)
             ON CONFLICT (namespace, key) DO UPDATE
                 SET version = 1, created_ms = excluded.created_ms,
                     expires_ms = excluded.expires_ms, body = excluded.body
                 WHERE smart_store_records.expires_ms IS NOT NULL
                   AND smart_store_records.expires_ms <= {now}",
        );
        let ttl = opt_ms(ttl_at_creation(lifetime));
        let hex = key.to_hex();
        let written = with_pool!(self, pool => sqlx::query(&sql)
            .bind(namespace.as_str())
            .bind(&hex)
            .bind(ttl)
            .bind(bytes)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(self.err("put"))?;
        Ok(written == 1)
    }

    async fn take(
        &self,
        namespace: Namespace,
        key: &HashedKey,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let sql = self.sql(
            "DELETE FROM smart_store_records WHERE namespace = $1 AND key = $2
             RETURNING body, version,
                 CAST(CASE WHEN expires_ms IS NULL OR expires_ms > {now} THEN 1 ELSE 0 END AS BIGINT)",
        );
        let hex = key.to_hex();
        let row: Option<(Vec<u8>, i64, i64)> = with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(namespace.as_str())
            .bind(&hex)
            .fetch_optional(pool)
            .await)
        .map_err(self.err("take"))?;
        match row {
            Some((bytes, version, 1)) => Ok(Some(StoredRecord {
                bytes,
                version: version_u64(version)?,
            })),
            _ => Ok(None),
        }
    }

    async fn load(
        &self,
        namespace: Namespace,
        key: &HashedKey,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let sql = self.sql(
            "SELECT body, version FROM smart_store_records
             WHERE namespace = $1 AND key = $2 AND (expires_ms IS NULL OR expires_ms > {now})",
        );
        let hex = key.to_hex();
        let row: Option<(Vec<u8>, i64)> = with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(namespace.as_str())
            .bind(&hex)
            .fetch_optional(pool)
            .await)
        .map_err(self.err("load"))?;
        row.map(|(bytes, version)| {
            Ok(StoredRecord {
                bytes,
                version: version_u64(version)?,
            })
        })
        .transpose()
    }

    async fn compare_and_swap(
        &self,
        namespace: Namespace,
        key: &HashedKey,
        expected_version: u64,
        bytes: &[u8],
        lifetime: &RecordLifetime,
    ) -> Result<CasOutcome, StoreError> {
        // The new expiry: the earlier of creation + absolute and now + idle (NULL when neither).
        let sql = self.sql(
            "UPDATE smart_store_records
             SET version = version + 1, body = $4,
                 expires_ms = CASE
                     WHEN $5 IS NULL THEN {now} + $6
                     WHEN $6 IS NULL THEN created_ms + $5
                     WHEN created_ms + $5 < {now} + $6 THEN created_ms + $5
                     ELSE {now} + $6 END
             WHERE namespace = $1 AND key = $2 AND version = $3
               AND (expires_ms IS NULL OR expires_ms > {now})
             RETURNING version",
        );
        let hex = key.to_hex();
        let expected = i64::try_from(expected_version).unwrap_or(i64::MAX);
        let (absolute, idle) = (opt_ms(lifetime.absolute), opt_ms(lifetime.idle));
        let swapped: Option<i64> = with_pool!(self, pool => sqlx::query_scalar(&sql)
            .bind(namespace.as_str())
            .bind(&hex)
            .bind(expected)
            .bind(bytes)
            .bind(absolute)
            .bind(idle)
            .fetch_optional(pool)
            .await)
        .map_err(self.err("compare-and-swap"))?;
        if let Some(version) = swapped {
            return Ok(CasOutcome::Swapped(version_u64(version)?));
        }
        match self.load(namespace, key).await? {
            Some(current) => Ok(CasOutcome::Conflict(current.version)),
            None => Ok(CasOutcome::Missing),
        }
    }

    async fn delete(&self, namespace: Namespace, key: &HashedKey) -> Result<bool, StoreError> {
        let hex = key.to_hex();
        let leases = self.sql("DELETE FROM smart_store_leases WHERE key = $1");
        with_pool!(self, pool => sqlx::query(&leases).bind(&hex).execute(pool).await.map(|_| ()))
            .map_err(self.err("delete"))?;
        let sql = self.sql(
            "DELETE FROM smart_store_records WHERE namespace = $1 AND key = $2
             RETURNING CAST(CASE WHEN expires_ms IS NULL OR expires_ms > {now} THEN 1 ELSE 0 END AS BIGINT)",
        );
        let live: Option<i64> = with_pool!(self, pool => sqlx::query_scalar(&sql)
            .bind(namespace.as_str())
            .bind(&hex)
            .fetch_optional(pool)
            .await)
        .map_err(self.err("delete"))?;
        Ok(live == Some(1))
    }

    async fn try_lease(
        &self,
        key: &HashedKey,
        owner: &HashedKey,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        let sql = self.sql(
            "INSERT INTO smart_store_leases (key, owner, expires_ms) VALUES ($1, $2, {now} + $3)
             ON CONFLICT (key) DO UPDATE
                 SET owner = excluded.owner, expires_ms = excluded.expires_ms
                 WHERE smart_store_leases.expires_ms <= {now}
             RETURNING expires_ms",
        );
        let (hex, owner) = (key.to_hex(), owner.to_hex());
        let granted: Option<i64> = with_pool!(self, pool => sqlx::query_scalar(&sql)
            .bind(&hex)
            .bind(&owner)
            .bind(ms_i64(ttl))
            .fetch_optional(pool)
            .await)
        .map_err(self.err("lease"))?;
        Ok(granted.map(|e| u64::try_from(e).unwrap_or(0)))
    }

    async fn renew_lease(
        &self,
        key: &HashedKey,
        owner: &HashedKey,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        let sql = self.sql(
            "UPDATE smart_store_leases SET expires_ms = {now} + $3
             WHERE key = $1 AND owner = $2 AND expires_ms > {now}
             RETURNING expires_ms",
        );
        let (hex, owner) = (key.to_hex(), owner.to_hex());
        let renewed: Option<i64> = with_pool!(self, pool => sqlx::query_scalar(&sql)
            .bind(&hex)
            .bind(&owner)
            .bind(ms_i64(ttl))
            .fetch_optional(pool)
            .await)
        .map_err(self.err("renew lease"))?;
        Ok(renewed.map(|e| u64::try_from(e).unwrap_or(0)))
    }

    async fn release_lease(&self, key: &HashedKey, owner: &HashedKey) -> Result<bool, StoreError> {
        let sql = self.sql("DELETE FROM smart_store_leases WHERE key = $1 AND owner = $2");
        let (hex, owner) = (key.to_hex(), owner.to_hex());
        let deleted = with_pool!(self, pool => sqlx::query(&sql)
            .bind(&hex)
            .bind(&owner)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(self.err("release lease"))?;
        Ok(deleted > 0)
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        let records = self
            .execute(
                "purge",
                "DELETE FROM smart_store_records WHERE expires_ms IS NOT NULL AND expires_ms <= {now}",
            )
            .await?;
        let leases = self
            .execute(
                "purge",
                "DELETE FROM smart_store_leases WHERE expires_ms <= {now}",
            )
            .await?;
        Ok(records + leases)
    }
}
