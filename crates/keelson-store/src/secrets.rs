//! SQL for the secret store. Rows hold ciphertext only; encryption is the secret service's
//! (`keelson-server::secrets`), so a database dump reveals names and times, never values.

use crate::backend::Store;
use crate::error::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A secret as stored: encrypted value and who wrote it when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub name: String,
    /// Names the key that encrypted it (a digest of the key, never the key).
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
    pub created: i64,
    pub updated: i64,
    pub created_by: String,
    pub updated_by: String,
}

const COLUMNS: &str = "name, key_id, nonce, ciphertext, created, updated, created_by, updated_by";

fn secret(row: &AnyRow) -> Result<StoredSecret, StoreError> {
    Ok(StoredSecret {
        name: row.try_get("name")?,
        key_id: row.try_get("key_id")?,
        nonce: row.try_get("nonce")?,
        ciphertext: row.try_get("ciphertext")?,
        created: row.try_get("created")?,
        updated: row.try_get("updated")?,
        created_by: row.try_get("created_by")?,
        updated_by: row.try_get("updated_by")?,
    })
}

impl Store {
    /// Creates or replaces a secret's value; the creation time and creator survive replacement.
    pub async fn put_secret(
        &self,
        name: &str,
        key_id: &str,
        nonce: &str,
        ciphertext: &str,
        principal: &str,
    ) -> Result<StoredSecret, StoreError> {
        let now = self.now();
        let row = sqlx::query(&format!(
            "INSERT INTO secrets ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $5, $6, $6) \
             ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, \
             ciphertext = excluded.ciphertext, updated = excluded.updated, updated_by = excluded.updated_by \
             RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(key_id)
        .bind(nonce)
        .bind(ciphertext)
        .bind(now)
        .bind(principal)
        .fetch_one(&self.writer)
        .await?;
        secret(&row)
    }

    pub async fn get_secret(&self, name: &str) -> Result<Option<StoredSecret>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM secrets WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(secret).transpose()
    }

    /// Every secret, by name (ciphertext included: callers show only the metadata).
    pub async fn list_secrets(&self) -> Result<Vec<StoredSecret>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM secrets ORDER BY name")).fetch_all(&self.reader).await?;
        rows.iter().map(secret).collect()
    }

    /// Deletes a secret; false when there was none of that name.
    pub async fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM secrets WHERE name = $1").bind(name).execute(&self.writer).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces a secret's ciphertext if it is still under `old_key_id` (key rotation racing a
    /// write keeps the write). True when replaced.
    pub async fn reencrypt_secret(
        &self,
        name: &str,
        old_key_id: &str,
        key_id: &str,
        nonce: &str,
        ciphertext: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE secrets SET key_id = $1, nonce = $2, ciphertext = $3 WHERE name = $4 AND key_id = $5")
                .bind(key_id)
                .bind(nonce)
                .bind(ciphertext)
                .bind(name)
                .bind(old_key_id)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() > 0)
    }
}
