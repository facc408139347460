//! Where the CLI keeps its sessions: a sealed store (SQLite by default) plus a small index of
//! human names.
//!
//! A session holds tokens, and a rotated refresh token that is lost or spent twice ends the whole
//! grant. Keeping sessions in the same sealed [`Store`] a web app uses means the CLI gets the
//! same guarantees for free: records are encrypted, keys are hashed, and a refresh is written by
//! compare-and-swap before the new access token is used, so a `smart fhir` that is killed right
//! after a refresh leaves the rotated token behind for the next run.
//!
//! **Location.** `--store URL` (or `SMART_STORE_URL`) names any store `smart-store-open` opens;
//! by default it is `sqlite://$XDG_DATA_HOME/smart/sessions.db` (`~/.local/share/smart/…` when
//! `XDG_DATA_HOME` is unset), created on first use, private to its owner.
//!
//! **Key.** Records are sealed with the key material in `SMART_STORE_KEY` when set; otherwise
//! with a key file created on first use with mode 0600 next to the database
//! (`sessions.key` beside `sessions.db`; `store.key` in the data directory for server stores).
//! Without the key the database is unreadable, so the key file is refused when other users can
//! read it.
//!
//! **Names.** `smart launch` stores the session under a random [`SessionId`] (a credential) and
//! gives it a short name such as `demo-public-3`. The names live in one index record, sealed like
//! the sessions and kept in the store's `meta` space under a key derived from the writing key's
//! id (so several people can share one server store with their own keys and lists). The index
//! is updated by compare-and-swap, so concurrent launches never lose each other's names, and it
//! is bounded ([`MAX_SESSIONS`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use smart_core::store::{
    Lease, PendingLaunch, Session, SessionId, SessionLifetime, Store, StoreError, Versioned,
};
use smart_store::backend::{CasOutcome, HashedKey, Namespace};
use smart_store::{Keyring, SealedStore, StoreConfig};

type CliError = Box<dyn std::error::Error + Send + Sync>;

/// The variable holding the store's key material (`KEY_ID:BASE64URL`, see `smart-store`).
pub(crate) const KEY_ENV: &str = "SMART_STORE_KEY";

/// The most sessions the index holds; `smart sessions rm` makes room.
pub(crate) const MAX_SESSIONS: usize = 512;

/// The most bytes one index entry takes (its JSON): with [`MAX_SESSIONS`] entries the index
/// stays well inside one sealed record (`smart_store::MAX_RECORD_BYTES`, 1 MiB).
pub(crate) const MAX_ENTRY_BYTES: usize = 1536;

// A full index of the largest entries (plus separators and the header) fits in one sealed record.
const _: () = assert!(MAX_SESSIONS * (MAX_ENTRY_BYTES + 1) + 64 < smart_store::MAX_RECORD_BYTES);

/// The longest session name.
pub(crate) const MAX_NAME_LEN: usize = 40;

/// How often an index update is retried after losing a compare-and-swap to another process.
const INDEX_CAS_ATTEMPTS: u32 = 64;

/// The index record's format.
const INDEX_FORMAT: u32 = 1;

static STORE_URL: OnceLock<String> = OnceLock::new();

/// Sets the store URL for the rest of the process (from `--store`).
pub(crate) fn set_url(url: String) {
    let _ = STORE_URL.set(url);
}

/// How a session's client authenticates: decides which credentials `smart fhir` needs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ClientType {
    /// No credentials.
    Public,
    /// A client secret (`--client-secret`, `SMART_CLIENT_SECRET`).
    ConfidentialSymmetric,
    /// A private key (`--key`).
    ConfidentialAsymmetric,
}

impl ClientType {
    /// The name used in session files and listings.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ClientType::Public => "public",
            ClientType::ConfidentialSymmetric => "confidential-symmetric",
            ClientType::ConfidentialAsymmetric => "confidential-asymmetric",
        }
    }

    /// Parses [`ClientType::as_str`].
    pub(crate) fn parse(text: &str) -> Option<ClientType> {
        [
            ClientType::Public,
            ClientType::ConfidentialSymmetric,
            ClientType::ConfidentialAsymmetric,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

/// One named session: what the CLI needs besides the session record to use it again. Holds no
/// token, secret or key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The human name (`demo-public-3`).
    pub(crate) name: String,
    /// The session's id in the store (a credential: only ever stored sealed).
    pub(crate) session_id: SessionId,
    pub(crate) client_type: ClientType,
    /// The registered redirect URI the launch used.
    pub(crate) redirect_uri: String,
    /// The `--adapter` value of the launch (`auto` or an adapter name).
    pub(crate) adapter: String,
    /// The `--adapter-option`s of the launch.
    #[serde(default)]
    pub(crate) adapter_options: serde_json::Map<String, serde_json::Value>,
    /// The `--jku` of an asymmetric client.
    #[serde(default)]
    pub(crate) jku: Option<String>,
    /// When the name was given (Unix seconds).
    pub(crate) created_at: u64,
}

/// What a new entry needs; the name is chosen when it is added.
#[derive(Debug, Clone)]
pub(crate) struct NewEntry {
    pub(crate) session_id: SessionId,
    pub(crate) client_id: String,
    pub(crate) client_type: ClientType,
    pub(crate) redirect_uri: String,
    pub(crate) adapter: String,
    pub(crate) adapter_options: serde_json::Map<String, serde_json::Value>,
    pub(crate) jku: Option<String>,
    /// `--name`, when given.
    pub(crate) name: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    format: u32,
    /// The number in the next generated name; never reused, so a removed name is not reissued.
    next_number: u64,
    /// Oldest first.
    entries: Vec<Entry>,
}

impl Index {
    /// Adds `new` under its `--name` or the next free `<prefix>-<n>`; returns the name. Refuses a
    /// taken name, and a full index ([`MAX_SESSIONS`]).
    fn add(&mut self, new: &NewEntry, prefix: &str, created_at: u64) -> Result<String, CliError> {
        if self.entries.len() >= MAX_SESSIONS {
            return Err(format!(
                "the session store holds {MAX_SESSIONS} sessions, the most it keeps; remove some with `smart sessions rm NAME`"
            )
            .into());
        }
        let name = match &new.name {
            Some(name) => {
                if self.entries.iter().any(|e| &e.name == name) {
                    return Err(format!(
                        "a session named `{name}` exists; pick another --name or remove it with `smart sessions rm {name}`"
                    )
                    .into());
                }
                name.clone()
            }
            None => loop {
                let n = self.next_number;
                self.next_number = n.saturating_add(1);
                let name = format!("{prefix}-{n}");
                if !self.entries.iter().any(|e| e.name == name) {
                    break name;
                }
            },
        };
        let entry = Entry {
            name: name.clone(),
            session_id: new.session_id.clone(),
            client_type: new.client_type,
            redirect_uri: new.redirect_uri.clone(),
            adapter: new.adapter.clone(),
            adapter_options: new.adapter_options.clone(),
            jku: new.jku.clone(),
            created_at,
        };
        let size = serde_json::to_vec(&entry)?.len();
        if size > MAX_ENTRY_BYTES {
            return Err(format!(
                "the session's --redirect-uri, --adapter-option and --jku values add up to {size} bytes; the session store keeps at most {MAX_ENTRY_BYTES} per session, so shorten them"
            )
            .into());
        }
        self.entries.push(entry);
        Ok(name)
    }
}

/// The CLI's store: the sealed store sessions live in, and the index of their names.
#[derive(Debug, Clone)]
pub(crate) struct SessionStore {
    store: Arc<SealedStore>,
    index_key: HashedKey,
    /// The store URL (password redacted), for messages.
    location: String,
}

/// The registration name the CLI uses for sessions of `client_id`: its letters, digits and
/// dashes, at most 24 characters (`client` when none are left).
pub(crate) fn registration_name(client_id: &str) -> String {
    let mut name = String::new();
    for c in client_id.chars() {
        if name.len() == 24 {
            break;
        }
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_end_matches('-');
    if name.is_empty() {
        "client".to_owned()
    } else {
        name.to_owned()
    }
}

/// Checks a user-chosen session name: 1 to [`MAX_NAME_LEN`] of `A-Z a-z 0-9 - _ .`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "session name `{}` is invalid; use 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 - _ . (e.g. my-session)",
            crate::terminal::clean(name)
        ))
    }
}

/// `$XDG_DATA_HOME/smart`, or `$HOME/.local/share/smart`.
fn data_dir() -> Result<PathBuf, CliError> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(dir) = absolute("XDG_DATA_HOME") {
        return Ok(dir.join("smart"));
    }
    if let Some(home) = absolute("HOME") {
        return Ok(home.join(".local/share/smart"));
    }
    Err("cannot find a data directory for the session store: set XDG_DATA_HOME or HOME, or pass --store sqlite:///PATH/sessions.db".into())
}

/// Creates `dir` (and its parents) if missing; the last level private to its owner.
fn ensure_private_dir(dir: &Path) -> Result<(), CliError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| {
        format!(
            "cannot create the session store directory {}: {e}",
            dir.display()
        )
    })?;
    Ok(())
}

/// The file a `sqlite:` URL names, if any (`sqlite::memory:` names none).
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// The store URL and, when `key_from_env` is false, its key file.
fn resolve(key_from_env: bool) -> Result<(String, Option<PathBuf>), CliError> {
    let url = match STORE_URL.get() {
        Some(url) => url.clone(),
        None => {
            let dir = data_dir()?;
            ensure_private_dir(&dir)?;
            format!("sqlite://{}", dir.join("sessions.db").display())
        }
    };
    let db = sqlite_path(&url);
    if let Some(db) = &db {
        if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            ensure_private_dir(parent)?;
        }
        // An empty file is a valid new SQLite database; creating it here makes it (and the WAL
        // files SQLite derives from it) private before anything is written.
        crate::files::create_if_absent(db, b"", crate::files::PRIVATE)?;
    }
    if key_from_env || url == "memory:" {
        return Ok((url, None));
    }
    let key_file = match db {
        Some(db) => {
            let key = db.with_extension("key");
            if key == db {
                return Err(format!(
                    "--store {url}: the database must not end in .key (the key file goes next to it)"
                )
                .into());
            }
            key
        }
        None => {
            let dir = data_dir()?;
            ensure_private_dir(&dir)?;
            dir.join("store.key")
        }
    };
    Ok((url, Some(key_file)))
}

/// Creates the key file with a fresh random key (mode 0600) unless it exists, then checks that
/// it is private.
fn ensure_key_file(path: &Path) -> Result<(), CliError> {
    if !path.exists() {
        let id = format!("cli-{}", &HashedKey::of(&random_id()).to_hex()[..8]);
        let material = zeroize::Zeroizing::new(Keyring::generate_material(&id)?);
        crate::files::create_if_absent(path, material.as_bytes(), crate::files::PRIVATE)?;
    }
    crate::files::refuse_symlink(path)?;
    crate::files::refuse_shared(path)?;
    Ok(())
}

fn random_id() -> String {
    SessionId::generate().as_str().to_owned()
}

impl SessionStore {
    /// Opens the store `--store` names (or the default one), creating it and its key on first
    /// use.
    pub(crate) async fn open() -> Result<SessionStore, CliError> {
        let key_from_env = std::env::var_os(KEY_ENV).is_some_and(|v| !v.is_empty());
        let (url, key_file) = resolve(key_from_env)?;
        let mut config = StoreConfig::new(url);
        if key_from_env {
            config = config.with_key_env(KEY_ENV);
        } else if let Some(path) = key_file {
            ensure_key_file(&path)?;
            config.key_file = Some(path);
        }
        let writer = match config.keyring()? {
            Some(keyring) => keyring.writer_id().to_owned(),
            None => "ephemeral".to_owned(),
        };
        let store = smart_store_open::open(&config).await?;
        Ok(SessionStore {
            store,
            index_key: HashedKey::of(&format!("smart-cli:session-index:{writer}")),
            location: config.redacted_url(),
        })
    }

    /// The store, for a `SmartClient`: refreshes write through it, and print what a refresh
    /// warned about.
    pub(crate) fn client_store(&self) -> Arc<dyn Store> {
        Arc::new(ReportingStore {
            inner: self.store.clone(),
        })
    }

    /// The store without the refresh reporting.
    pub(crate) fn store(&self) -> &Arc<SealedStore> {
        &self.store
    }

    /// The store URL, password redacted.
    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    async fn read_index(&self) -> Result<(Option<u64>, Index), CliError> {
        let backend = self.store.backend();
        match backend.load(Namespace::Meta, &self.index_key).await? {
            None => Ok((
                None,
                Index {
                    format: INDEX_FORMAT,
                    next_number: 1,
                    entries: Vec::new(),
                },
            )),
            Some(record) => {
                let index: Index = self
                    .store
                    .open(Namespace::Meta, &self.index_key, &record.bytes)
                    .map_err(|e| format!("the session index in {}: {e}", self.location))?;
                if index.format > INDEX_FORMAT {
                    return Err(format!(
                        "the session index in {} has format {}, newer than this smart reads ({INDEX_FORMAT}); upgrade smart",
                        self.location, index.format
                    )
                    .into());
                }
                Ok((Some(record.version), index))
            }
        }
    }

    /// Applies `change` to the index and writes it by compare-and-swap, retrying from a fresh
    /// read when another process wrote in between.
    async fn update_index<R>(
        &self,
        mut change: impl FnMut(&mut Index) -> Result<R, CliError>,
    ) -> Result<R, CliError> {
        let backend = self.store.backend();
        for attempt in 0..INDEX_CAS_ATTEMPTS {
            let (version, mut index) = self.read_index().await?;
            let result = change(&mut index)?;
            index.format = INDEX_FORMAT;
            let bytes = self.store.seal(Namespace::Meta, &self.index_key, &index)?;
            let written = match version {
                None => {
                    backend
                        .put_if_absent(
                            Namespace::Meta,
                            &self.index_key,
                            &bytes,
                            &SessionLifetime::UNLIMITED,
                        )
                        .await?
                }
                Some(version) => matches!(
                    backend
                        .compare_and_swap(
                            Namespace::Meta,
                            &self.index_key,
                            version,
                            &bytes,
                            &SessionLifetime::UNLIMITED,
                        )
                        .await?,
                    CasOutcome::Swapped(_)
                ),
            };
            if written {
                return Ok(result);
            }
            tokio::time::sleep(Duration::from_millis(2 + u64::from(attempt.min(20)))).await;
        }
        Err(format!(
            "the session index in {} kept changing under concurrent writers; try again",
            self.location
        )
        .into())
    }

    /// Names a stored session and returns the name.
    pub(crate) async fn add(&self, new: NewEntry) -> Result<String, CliError> {
        if let Some(name) = &new.name {
            check_name(name)?;
        }
        let prefix = registration_name(&new.client_id);
        let created_at = smart_core::token::now_unix();
        self.update_index(|index| index.add(&new, &prefix, created_at))
            .await
    }

    /// Every named session, oldest first.
    pub(crate) async fn entries(&self) -> Result<Vec<Entry>, CliError> {
        Ok(self.read_index().await?.1.entries)
    }

    /// The session called `name`, or the most recent one.
    pub(crate) async fn find(&self, name: Option<&str>) -> Result<Entry, CliError> {
        let entries = self.entries().await?;
        match name {
            Some(name) => entries.into_iter().find(|e| e.name == name).ok_or_else(|| {
                format!(
                    "no session named `{}` in {}; see `smart sessions list`",
                    crate::terminal::clean(name),
                    self.location
                )
                .into()
            }),
            None => entries.into_iter().last().ok_or_else(|| {
                format!(
                    "no session in {}; start one with `smart launch … --headless` (or import a file with `smart sessions import FILE`)",
                    self.location
                )
                .into()
            }),
        }
    }

    /// Removes the name and deletes its session; returns the entry.
    pub(crate) async fn remove(&self, name: &str) -> Result<Entry, CliError> {
        let location = self.location.clone();
        let entry = self
            .update_index(|index| {
                let at = index
                    .entries
                    .iter()
                    .position(|e| e.name == name)
                    .ok_or_else(|| {
                        format!(
                            "no session named `{}` in {location}; see `smart sessions list`",
                            crate::terminal::clean(name)
                        )
                    })?;
                Ok(index.entries.remove(at))
            })
            .await?;
        self.store.delete_session(&entry.session_id).await?;
        Ok(entry)
    }
}

/// The sealed store, saying on stderr what a refresh the server answered oddly (e.g. an
/// `id_token` without `aud`) left in `refresh_warnings`; the tokens are stored all the same.
#[derive(Debug)]
struct ReportingStore {
    inner: Arc<SealedStore>,
}

#[async_trait]
impl Store for ReportingStore {
    async fn put_pending_launch(
        &self,
        state: &str,
        launch: &PendingLaunch,
    ) -> Result<(), StoreError> {
        self.inner.put_pending_launch(state, launch).await
    }

    async fn take_pending_launch(&self, state: &str) -> Result<Option<PendingLaunch>, StoreError> {
        self.inner.take_pending_launch(state).await
    }

    async fn insert_session(&self, id: &SessionId, session: &Session) -> Result<u64, StoreError> {
        self.inner.insert_session(id, session).await
    }

    async fn load_session(&self, id: &SessionId) -> Result<Option<Versioned<Session>>, StoreError> {
        self.inner.load_session(id).await
    }

    async fn compare_and_swap_session(
        &self,
        id: &SessionId,
        expected_version: u64,
        session: &Session,
    ) -> Result<u64, StoreError> {
        let version = self
            .inner
            .compare_and_swap_session(id, expected_version, session)
            .await?;
        for warning in &session.refresh_warnings {
            crate::terminal::eprint_line(&format!(
                "warning: refresh: {}",
                smart_core::server_text::escape_controls(&warning.to_string())
            ));
        }
        Ok(version)
    }

    async fn delete_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.inner.delete_session(id).await
    }

    async fn try_acquire_lease(
        &self,
        id: &SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.inner.try_acquire_lease(id, owner, ttl).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.inner.release_lease(lease).await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        self.inner.renew_lease(lease, ttl).await
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.inner.purge_expired().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_names_are_short_and_plain() {
        assert_eq!(registration_name("demo-public"), "demo-public");
        assert_eq!(registration_name("My App!!v2"), "my-app-v2");
        assert_eq!(registration_name("\u{1b}[31m"), "31m");
        assert_eq!(registration_name("!!!"), "client");
        assert_eq!(registration_name(&"x".repeat(100)).len(), 24);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("demo-public-1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    fn new_entry(name: Option<&str>) -> NewEntry {
        NewEntry {
            session_id: SessionId::generate(),
            client_id: "demo-public".into(),
            client_type: ClientType::Public,
            redirect_uri: "http://127.0.0.1:8765/callback".into(),
            adapter: "auto".into(),
            adapter_options: serde_json::Map::new(),
            jku: None,
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn the_index_names_uniquely_and_is_bounded() {
        let mut index = Index {
            format: INDEX_FORMAT,
            next_number: 1,
            entries: Vec::new(),
        };
        assert_eq!(
            index.add(&new_entry(None), "demo", 0).expect("add"),
            "demo-1"
        );
        // A --name that looks generated does not make the generator reissue it.
        assert_eq!(
            index
                .add(&new_entry(Some("demo-2")), "demo", 0)
                .expect("add"),
            "demo-2"
        );
        assert_eq!(
            index.add(&new_entry(None), "demo", 0).expect("add"),
            "demo-3"
        );
        let taken = index
            .add(&new_entry(Some("demo-1")), "demo", 0)
            .expect_err("taken");
        assert!(taken.to_string().contains("exists"), "{taken}");
        while index.entries.len() < MAX_SESSIONS {
            index.add(&new_entry(None), "demo", 0).expect("room");
        }
        let full = index.add(&new_entry(None), "demo", 0).expect_err("full");
        assert!(full.to_string().contains("smart sessions rm"), "{full}");
        assert_eq!(index.entries.len(), MAX_SESSIONS);
        let mut huge = new_entry(Some("huge"));
        huge.redirect_uri = format!("http://127.0.0.1/{}", "x".repeat(MAX_ENTRY_BYTES));
        index.entries.clear();
        let refused = index.add(&huge, "demo", 0).expect_err("too large");
        assert!(refused.to_string().contains("shorten"), "{refused}");
        assert!(index.entries.is_empty());
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite:///tmp/x/sessions.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x/sessions.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://db/x"), None);
    }
}
