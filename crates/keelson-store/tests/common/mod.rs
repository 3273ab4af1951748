//! One harness for every store test file: a fresh database per test on SQLite and PostgreSQL,
//! and `both_backends!` to instantiate each test body for both.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use keelson_core::clock::ManualClock;
use keelson_store::{Store, StoreOptions};
use std::sync::Arc;

pub struct TestDb {
    pub url: String,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/keelson.db", dir.path().display());
        let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
        Self { url, store, _dir: Some(dir) }
    }

    /// A fresh schema per test keeps parallel tests apart on one database.
    pub async fn postgres() -> Self {
        let base = std::env::var("KEELSON_TEST_DATABASE_URL")
            .expect("KEELSON_TEST_DATABASE_URL must point at a PostgreSQL database for these tests");
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = Store::connect(&base, &StoreOptions::default()).await.unwrap();
        admin.execute_for_tests(&format!("CREATE SCHEMA {schema}")).await.unwrap();
        admin.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options[search_path]={schema}");
        let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
        Self { url, store, _dir: None }
    }

    /// Another connection pool on the same database, as another process would have.
    pub async fn second_store(&self) -> Store {
        Store::open(&self.url, &StoreOptions::default()).await.unwrap()
    }

    pub fn with_clock(&self, start: i64) -> (Store, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(start));
        (self.store.clone().with_clock(clock.clone()), clock)
    }
}

/// Instantiates each named `async fn name(db: TestDb)` for SQLite and (ignored unless
/// `KEELSON_TEST_DATABASE_URL` is set and ignored tests run) PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::TestDb::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs KEELSON_TEST_DATABASE_URL; scripts/test runs it"]
                async fn $name() {
                    super::$name(super::common::TestDb::postgres().await).await;
                }
            )*
        }
    };
}
