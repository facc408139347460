//! `open` turns every misconfiguration into one line that says what to fix.

use smart_core::store::{SessionId, Store, testsuite};
use smart_store::{Keyring, StoreConfig};
use smart_store_open::{OpenError, open};

fn sqlite_config(dir: &tempfile::TempDir, material: &str) -> StoreConfig {
    let key_file = dir
        .path()
        .join(format!("keys-{}", SessionId::generate().as_str()));
    std::fs::write(&key_file, material).expect("key file");
    StoreConfig {
        key_file: Some(key_file),
        ..StoreConfig::new(format!(
            "sqlite://{}",
            dir.path().join("store.db").display()
        ))
    }
}

fn one_line(e: &OpenError) -> String {
    let message = e.to_string();
    assert!(!message.contains('\n'), "not one line: {message}");
    message
}

#[tokio::test]
async fn unknown_schemes_are_named() {
    let e = open(&StoreConfig::new("mysql://db/app"))
        .await
        .expect_err("unknown");
    assert!(matches!(e, OpenError::UnknownScheme { .. }));
    assert!(one_line(&e).contains("unknown scheme"));
}

#[tokio::test]
async fn an_unreachable_server_is_reported_without_its_password() {
    let material = Keyring::generate_material("k1").expect("material");
    let dir = tempfile::tempdir().expect("dir");
    let key_file = dir.path().join("keys");
    std::fs::write(&key_file, material).expect("write");
    let config = StoreConfig {
        key_file: Some(key_file),
        ..StoreConfig::new("postgres://app:hunter2@127.0.0.1:1/smart")
    };
    let e = open(&config).await.expect_err("unreachable");
    let message = one_line(&e);
    assert!(matches!(e, OpenError::Unreachable { .. }), "{message}");
    assert!(message.contains("unreachable"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn a_persistent_store_needs_a_key_and_memory_does_not() {
    let dir = tempfile::tempdir().expect("dir");
    let config = StoreConfig::new(format!("sqlite://{}", dir.path().join("s.db").display()));
    let e = open(&config).await.expect_err("no key");
    assert!(one_line(&e).contains("key_env"));
    let memory = open(&StoreConfig::new("memory:")).await.expect("memory");
    assert!(
        memory
            .load_session(&SessionId::generate())
            .await
            .expect("load")
            .is_none()
    );
}

#[tokio::test]
async fn a_wrong_key_fails_at_open_and_the_right_one_reads_old_sessions() {
    let dir = tempfile::tempdir().expect("dir");
    let material = Keyring::generate_material("k1").expect("material");
    let store = open(&sqlite_config(&dir, &material)).await.expect("open");
    let id = SessionId::generate();
    store
        .insert_session(&id, &testsuite::sample_session("a"))
        .await
        .expect("insert");
    drop(store);

    let other = Keyring::generate_material("k1").expect("material");
    let e = open(&sqlite_config(&dir, &other))
        .await
        .expect_err("wrong key");
    let message = one_line(&e);
    assert!(matches!(e, OpenError::Incompatible { .. }), "{message}");
    assert!(message.contains("does not open"), "{message}");

    // Rotation: a new writer key first, the old one kept: old sessions still open.
    let rotated = format!(
        "{},{material}",
        Keyring::generate_material("k2").expect("material")
    );
    let store = open(&sqlite_config(&dir, &rotated)).await.expect("open");
    assert!(store.load_session(&id).await.expect("load").is_some());
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let material = Keyring::generate_material("k1").expect("material");
    let config = sqlite_config(&dir, &material);
    drop(open(&config).await.expect("open"));
    // Pretend a newer build migrated the schema.
    let pool = sqlx::SqlitePool::connect(&config.url)
        .await
        .expect("raw open");
    sqlx::query("INSERT INTO smart_store_migrations (version) VALUES (99)")
        .execute(&pool)
        .await
        .expect("insert");
    pool.close().await;
    let e = open(&config).await.expect_err("newer");
    let message = one_line(&e);
    assert!(matches!(e, OpenError::Incompatible { .. }), "{message}");
    assert!(message.contains("newer"), "{message}");
}

/// Several processes (here: independent pools) opening one new SQLite database at the same time
/// all succeed: setting WAL mode can answer SQLITE_BUSY without waiting, and `open` tries again
/// instead of failing (two `smart` commands started at once used to fail with "database is
/// locked").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_of_a_new_sqlite_database_all_succeed() {
    let material = Keyring::generate_material("k1").expect("material");
    for _round in 0..20 {
        let dir = tempfile::tempdir().expect("dir");
        let config = sqlite_config(&dir, &material);
        let opens: Vec<_> = (0..16)
            .map(|_| {
                let config = config.clone();
                tokio::spawn(async move { open(&config).await.map(|_| ()) })
            })
            .collect();
        for opened in opens {
            if let Err(e) = opened.await.expect("joined") {
                panic!("a concurrent open failed: {e}");
            }
        }
    }
}
