//! A Redis [`Backend`] for `smart-store`.
//!
//! Layout: one string key per record, `smart-store:{namespace}:{sha256-hex}`, whose value is
//! `{version}:{created_ms}:` followed by the sealed bytes, with the record's expiry as the key's
//! Redis TTL; one string key per lease, `smart-store:lease:{sha256-hex}`, holding the hashed
//! owner with a `PX` TTL.
//!
//! Atomicity: take is `GETDEL`; put-if-absent and leases are `SET NX PX`; compare-and-swap,
//! renew and release are short Lua scripts (Redis runs a script without interleaving other
//! commands). Every expiry is Redis's own (`TIME`, key TTLs), so the servers' clock decides and
//! Redis removes expired keys by itself: [`purge_expired`](Backend::purge_expired) has nothing to
//! do.
//!
//! The connection is a [`redis::aio::ConnectionManager`], which reconnects
//! after a dropped connection; a command that fails on a dropped connection is reported as a
//! temporary error and can be retried.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use smart_core::store::{StoreError, duration_ms};
use smart_store::backend::{
    Backend, CasOutcome, HashedKey, Namespace, RecordLifetime, StoredRecord, ttl_at_creation,
};

/// The prefix of every key this backend writes.
pub const KEY_PREFIX: &str = "smart-store";

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one command may take.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A Redis backend.
#[derive(Clone)]
pub struct RedisBackend {
    conn: ConnectionManager,
    put_if_absent: redis::Script,
    cas: redis::Script,
    try_lease: redis::Script,
    renew: redis::Script,
    release: redis::Script,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisBackend")
    }
}

const NOW_LUA: &str = "local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

fn driver(operation: &'static str, e: redis::RedisError) -> StoreError {
    let temporary = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
                | redis::ErrorKind::Server(redis::ServerErrorKind::TryAgain)
                | redis::ErrorKind::Server(redis::ServerErrorKind::MasterDown)
        );
    StoreError::Driver {
        backend: "redis",
        operation,
        temporary,
        source: Box::new(e),
    }
}

fn record_key(namespace: Namespace, key: &HashedKey) -> String {
    format!("{KEY_PREFIX}:{}:{}", namespace.as_str(), key.to_hex())
}

fn lease_key(key: &HashedKey) -> String {
    format!("{KEY_PREFIX}:lease:{}", key.to_hex())
}

/// Splits `{version}:{created_ms}:{bytes}`.
fn parse_record(value: Vec<u8>) -> Result<StoredRecord, StoreError> {
    let corrupt = || StoreError::Corrupt("redis record header".into());
    let first = value.iter().position(|&b| b == b':').ok_or_else(corrupt)?;
    let second = value[first + 1..]
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(corrupt)?
        + first
        + 1;
    let version: u64 = std::str::from_utf8(&value[..first])
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(corrupt)?;
    Ok(StoredRecord {
        bytes: value[second + 1..].to_vec(),
        version,
    })
}

fn ms_arg(d: Option<Duration>) -> String {
    d.map(|d| duration_ms(d).max(1).to_string())
        .unwrap_or_default()
}

impl RedisBackend {
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`).
    pub async fn connect(url: &str) -> Result<RedisBackend, StoreError> {
        let client = redis::Client::open(url).map_err(|e| driver("connect", e))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1);
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| driver("connect", e))?;
        let backend = RedisBackend {
            conn,
            put_if_absent: redis::Script::new(&format!(
                "{NOW_LUA}
local value = '1:' .. string.format('%d', now) .. ':' .. ARGV[1]
local ok
if ARGV[2] == '' then ok = redis.call('SET', KEYS[1], value, 'NX')
else ok = redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[2]) end
if ok then return 1 else return 0 end"
            )),
            cas: redis::Script::new(&format!(
                "local cur = redis.call('GET', KEYS[1])
if not cur then return {{0}} end
local p1 = string.find(cur, ':', 1, true)
local p2 = string.find(cur, ':', p1 + 1, true)
local version = tonumber(string.sub(cur, 1, p1 - 1))
local created = tonumber(string.sub(cur, p1 + 1, p2 - 1))
if version ~= tonumber(ARGV[1]) then return {{1, version}} end
{NOW_LUA}
local expires = nil
if ARGV[3] ~= '' then expires = created + tonumber(ARGV[3]) end
if ARGV[4] ~= '' then
  local idle = now + tonumber(ARGV[4])
  if expires == nil or idle < expires then expires = idle end
end
local value = string.format('%d', version + 1) .. ':' .. string.format('%d', created) .. ':' .. ARGV[2]
if expires == nil then redis.call('SET', KEYS[1], value)
elseif expires <= now then redis.call('DEL', KEYS[1]) return {{0}}
else redis.call('SET', KEYS[1], value, 'PX', string.format('%d', expires - now)) end
return {{2, version + 1}}"
            )),
            try_lease: redis::Script::new(&format!(
                "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
{NOW_LUA}
  return now + tonumber(ARGV[2])
end
return -1"
            )),
            renew: redis::Script::new(&format!(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then
{NOW_LUA}
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return now + tonumber(ARGV[2])
end
return -1"
            )),
            release: redis::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0",
            ),
        };
        // Fail now, with a one-line error, if the server is not there.
        backend.now_ms().await?;
        Ok(backend)
    }

    /// Every key and value this backend wrote, read straight from Redis: for audits and the trial
    /// that checks nothing is stored in clear.
    pub async fn raw_dump(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut conn = self.conn.clone();
        let mut out = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{KEY_PREFIX}:*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(|e| driver("dump", e))?;
            for key in keys {
                let value: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| driver("dump", e))?;
                out.push(key.into_bytes());
                out.extend(value);
            }
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }
}

impl RedisBackend {
    /// Runs one of the lease scripts: `KEYS[1]` the lease key, `ARGV[1]` the hashed owner and,
    /// when given, `ARGV[2]` the TTL in milliseconds (at least 1: `PX 0` is an error).
    async fn run_lease_script<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        operation: &'static str,
        key: &HashedKey,
        owner: &HashedKey,
        ttl: Option<Duration>,
    ) -> Result<T, StoreError> {
        let mut invocation = script.key(lease_key(key));
        invocation.arg(owner.to_hex());
        if let Some(ttl) = ttl {
            invocation.arg(duration_ms(ttl).max(1));
        }
        invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| driver(operation, e))
    }
}

fn expiry(ms: i64) -> Option<u64> {
    u64::try_from(ms).ok()
}

#[async_trait]
impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn now_ms(&self) -> Result<u64, StoreError> {
        let (secs, micros): (u64, u64) = redis::cmd("TIME")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| driver("clock", e))?;
        Ok(secs * 1000 + micros / 1000)
    }

    async fn put_if_absent(
        &self,
        namespace: Namespace,
        key: &HashedKey,
        bytes: &[u8],
        lifetime: &RecordLifetime,
    ) -> Result<bool, StoreError> {
        let written: i64 = self
            .put_if_absent
            .key(record_key(namespace, key))
            .arg(bytes)
            .arg(ms_arg(ttl_at_creation(lifetime)))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| driver("put", e))?;
        Ok(written == 1)
    }

    async fn take(
        &self,
        namespace: Namespace,
        key: &HashedKey,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let value: Option<Vec<u8>> = redis::cmd("GETDEL")
            .arg(record_key(namespace, key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| driver("take", e))?;
        value.map(parse_record).transpose()
    }

    async fn load(
        &self,
        namespace: Namespace,
        key: &HashedKey,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(record_key(namespace, key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| driver("load", e))?;
        value.map(parse_record).transpose()
    }

    async fn compare_and_swap(
        &self,
        namespace: Namespace,
        key: &HashedKey,
        expected_version: u64,
        bytes: &[u8],
        lifetime: &RecordLifetime,
    ) -> Result<CasOutcome, StoreError> {
        let result: Vec<i64> = self
            .cas
            .key(record_key(namespace, key))
            .arg(expected_version.to_string())
            .arg(bytes)
            .arg(ms_arg(lifetime.absolute))
            .arg(ms_arg(lifetime.idle))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| driver("compare-and-swap", e))?;
        let version = |i: usize| {
            result
                .get(i)
                .and_then(|v| u64::try_from(*v).ok())
                .ok_or_else(|| StoreError::Corrupt("redis CAS reply".into()))
        };
        match result.first() {
            Some(2) => Ok(CasOutcome::Swapped(version(1)?)),
            Some(1) => Ok(CasOutcome::Conflict(version(1)?)),
            _ => Ok(CasOutcome::Missing),
        }
    }

    async fn delete(&self, namespace: Namespace, key: &HashedKey) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let (deleted, _): (i64, i64) = redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(record_key(namespace, key))
            .cmd("DEL")
            .arg(lease_key(key))
            .query_async(&mut conn)
            .await
            .map_err(|e| driver("delete", e))?;
        Ok(deleted > 0)
    }

    async fn try_lease(
        &self,
        key: &HashedKey,
        owner: &HashedKey,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        let expires: i64 = self
            .run_lease_script(&self.try_lease, "lease", key, owner, Some(ttl))
            .await?;
        Ok(expiry(expires))
    }

    async fn renew_lease(
        &self,
        key: &HashedKey,
        owner: &HashedKey,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        let expires: i64 = self
            .run_lease_script(&self.renew, "renew lease", key, owner, Some(ttl))
            .await?;
        Ok(expiry(expires))
    }

    async fn release_lease(&self, key: &HashedKey, owner: &HashedKey) -> Result<bool, StoreError> {
        let released: i64 = self
            .run_lease_script(&self.release, "release lease", key, owner, None)
            .await?;
        Ok(released == 1)
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        // Redis deletes expired keys by itself.
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_values_split_into_version_and_body() {
        let record = parse_record(b"7:1700000000000:\x01:body".to_vec()).expect("parse");
        assert_eq!(record.version, 7);
        assert_eq!(record.bytes, b"\x01:body");
        assert!(parse_record(b"garbage".to_vec()).is_err());
        assert!(parse_record(b"x:1:y".to_vec()).is_err());
    }
}
