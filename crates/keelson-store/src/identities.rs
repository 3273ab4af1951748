//! SQL for identities: users, service tokens and role bindings. Password hashing and token
//! minting are the identity service's; rows hold only hashes and digests.

use crate::backend::Store;
use crate::error::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub name: String,
    pub password_hash: String,
    pub created: i64,
    pub updated: i64,
    pub disabled_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredToken {
    pub id: String,
    pub principal: String,
    pub description: String,
    #[serde(skip)]
    pub token_sha256: String,
    pub created: i64,
    pub created_by: String,
    pub expires: Option<i64>,
    pub revoked: Option<i64>,
    pub last_used: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoleBinding {
    pub workspace: String,
    pub principal: String,
    pub role: String,
    pub granted: i64,
    pub granted_by: String,
}

fn user(row: &AnyRow) -> Result<StoredUser, StoreError> {
    Ok(StoredUser {
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        created: row.try_get("created")?,
        updated: row.try_get("updated")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}

const TOKEN_COLUMNS: &str =
    "id, principal, description, token_sha256, created, created_by, expires, revoked, last_used";

fn token(row: &AnyRow) -> Result<StoredToken, StoreError> {
    Ok(StoredToken {
        id: row.try_get("id")?,
        principal: row.try_get("principal")?,
        description: row.try_get("description")?,
        token_sha256: row.try_get("token_sha256")?,
        created: row.try_get("created")?,
        created_by: row.try_get("created_by")?,
        expires: row.try_get("expires")?,
        revoked: row.try_get("revoked")?,
        last_used: row.try_get("last_used")?,
    })
}

fn binding(row: &AnyRow) -> Result<RoleBinding, StoreError> {
    Ok(RoleBinding {
        workspace: row.try_get("workspace")?,
        principal: row.try_get("principal")?,
        role: row.try_get("role")?,
        granted: row.try_get("granted")?,
        granted_by: row.try_get("granted_by")?,
    })
}

fn already_exists(error: sqlx::Error, what: String) -> StoreError {
    match error {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::AlreadyExists(what),
        other => StoreError::from(other),
    }
}

impl Store {
    /// Users, tokens and role bindings: none of them means the server has never been set up.
    pub async fn identity_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM service_tokens) \
             + (SELECT COUNT(*) FROM role_bindings) AS n",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(row.try_get("n")?)
    }

    pub async fn create_user(&self, name: &str, password_hash: &str) -> Result<StoredUser, StoreError> {
        let now = self.now();
        sqlx::query("INSERT INTO users (name, password_hash, created, updated) VALUES ($1, $2, $3, $3)")
            .bind(name)
            .bind(password_hash)
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(|e| already_exists(e, format!("user `{name}` already exists")))?;
        Ok(StoredUser {
            name: name.to_string(),
            password_hash: password_hash.to_string(),
            created: now,
            updated: now,
            disabled_at: None,
        })
    }

    pub async fn get_user(&self, name: &str) -> Result<Option<StoredUser>, StoreError> {
        let row = sqlx::query("SELECT name, password_hash, created, updated, disabled_at FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(user).transpose()
    }

    pub async fn list_users(&self) -> Result<Vec<StoredUser>, StoreError> {
        let rows = sqlx::query("SELECT name, password_hash, created, updated, disabled_at FROM users ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(user).collect()
    }

    /// Replaces a user's password hash; false when there is no such user.
    pub async fn set_user_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET password_hash = $1, updated = $2 WHERE name = $3")
            .bind(password_hash)
            .bind(self.now())
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a user with their tokens and role bindings, in one transaction.
    pub async fn delete_user(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let done = sqlx::query("DELETE FROM users WHERE name = $1").bind(name).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM service_tokens WHERE principal = $1").bind(name).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM role_bindings WHERE principal = $1").bind(name).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn create_token(&self, token: &StoredToken) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO service_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)"
        ))
        .bind(&token.id)
        .bind(&token.principal)
        .bind(&token.description)
        .bind(&token.token_sha256)
        .bind(token.created)
        .bind(&token.created_by)
        .bind(token.expires)
        .execute(&self.writer)
        .await
        .map_err(|e| already_exists(e, "a token with that id or digest already exists".to_string()))?;
        Ok(())
    }

    /// The token whose digest this is, revoked and expired ones included (the caller decides).
    pub async fn token_by_digest(&self, token_sha256: &str) -> Result<Option<StoredToken>, StoreError> {
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM service_tokens WHERE token_sha256 = $1"))
            .bind(token_sha256)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(token).transpose()
    }

    pub async fn get_token(&self, id: &str) -> Result<Option<StoredToken>, StoreError> {
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM service_tokens WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(token).transpose()
    }

    /// Tokens of one principal, or of everyone.
    pub async fn list_tokens(&self, principal: Option<&str>) -> Result<Vec<StoredToken>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM service_tokens WHERE ($1 = '' OR principal = $1) ORDER BY created, id"
        ))
        .bind(principal.unwrap_or_default())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(token).collect()
    }

    /// Marks a token revoked (once); false when there is no such token.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE service_tokens SET revoked = COALESCE(revoked, $1) WHERE id = $2")
            .bind(self.now())
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn touch_token(&self, id: &str, used: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE service_tokens SET last_used = $1 WHERE id = $2 AND (last_used IS NULL OR last_used < $1)")
            .bind(used)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Grants (or replaces) a principal's role in a workspace.
    pub async fn bind_role(
        &self,
        workspace: &str,
        principal: &str,
        role: &str,
        granted_by: &str,
    ) -> Result<RoleBinding, StoreError> {
        let now = self.now();
        let row = sqlx::query(
            "INSERT INTO role_bindings (workspace, principal, role, granted, granted_by) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (workspace, principal) DO UPDATE SET role = excluded.role, granted = excluded.granted, \
             granted_by = excluded.granted_by RETURNING workspace, principal, role, granted, granted_by",
        )
        .bind(workspace)
        .bind(principal)
        .bind(role)
        .bind(now)
        .bind(granted_by)
        .fetch_one(&self.writer)
        .await?;
        binding(&row)
    }

    pub async fn unbind_role(&self, workspace: &str, principal: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM role_bindings WHERE workspace = $1 AND principal = $2")
            .bind(workspace)
            .bind(principal)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes every role in a workspace (when it is deleted, so a workspace made again later
    /// under the same name starts with no one in it).
    pub async fn delete_role_bindings_in(&self, workspace: &str) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM role_bindings WHERE workspace = $1").bind(workspace).execute(&self.writer).await?;
        Ok(done.rows_affected())
    }

    pub async fn role_of(&self, workspace: &str, principal: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT role FROM role_bindings WHERE workspace = $1 AND principal = $2")
            .bind(workspace)
            .bind(principal)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|row| row.try_get("role")).transpose()?)
    }

    pub async fn role_bindings(&self, workspace: &str) -> Result<Vec<RoleBinding>, StoreError> {
        let rows = sqlx::query(
            "SELECT workspace, principal, role, granted, granted_by FROM role_bindings WHERE workspace = $1 \
             ORDER BY principal",
        )
        .bind(workspace)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(binding).collect()
    }
}
