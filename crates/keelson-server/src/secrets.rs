//! The secret store: provider keys, SMTP passwords, webhook signing keys and connection strings,
//! encrypted at rest, referenced by name, never returned.
//!
//! Values are sealed with XChaCha20-Poly1305 under a 256-bit key from the configuration (or, on
//! the embedded default, a key file made on first use), with the secret's name as associated data
//! so a row copied under another name does not decrypt. Rows record which key sealed them;
//! rotation re-seals every row under the current key while earlier keys are still configured.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use keelson_core::config::Config;
use keelson_core::secrets::{validate_secret_name, LookupFuture, SecretLookup, SecretValue};
use keelson_core::{ErrorKind, HasErrorKind};
use keelson_store::secrets::StoredSecret;
use keelson_store::{Backend, Store, StoreError};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest secret value: keys, passwords and connection strings, not files.
const MAX_SECRET_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{0}")]
    Invalid(String),
    #[error("secret `{0}` does not exist")]
    NotFound(String),
    /// No key is configured (or it cannot be read): the store cannot seal or open anything.
    #[error("{0}")]
    Unavailable(String),
    /// A row that no configured key opens: tampered with, or sealed by a key no longer listed.
    #[error("secret `{name}` cannot be decrypted with the configured keys ({reason})")]
    Undecryptable { name: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HasErrorKind for SecretError {
    fn kind(&self) -> ErrorKind {
        match self {
            SecretError::Invalid(_) => ErrorKind::InvalidArgument,
            SecretError::NotFound(_) => ErrorKind::NotFound,
            SecretError::Unavailable(_) => ErrorKind::Unavailable,
            SecretError::Undecryptable { .. } => ErrorKind::Internal,
            SecretError::Store(e) => e.kind(),
        }
    }
}

/// What the API shows of a secret: never the value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretInfo {
    pub name: String,
    pub created: i64,
    pub updated: i64,
    pub created_by: String,
    pub updated_by: String,
    /// Which key seals it now (a digest of the key).
    pub key_id: String,
}

impl From<StoredSecret> for SecretInfo {
    fn from(stored: StoredSecret) -> SecretInfo {
        SecretInfo {
            name: stored.name,
            created: stored.created,
            updated: stored.updated,
            created_by: stored.created_by,
            updated_by: stored.updated_by,
            key_id: stored.key_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RotationReport {
    /// Secrets re-sealed under the current key.
    pub reencrypted: usize,
    /// Secrets already under it.
    pub current: usize,
    pub key_id: String,
}

struct SealingKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl SealingKey {
    fn new(bytes: &[u8]) -> Result<SealingKey, String> {
        if bytes.len() != 32 {
            return Err(format!("a secret key is 32 bytes; this one is {}", bytes.len()));
        }
        // The id names the key in rows and logs without revealing it.
        let id = hex::encode(&Sha256::digest([b"keelson-secret-key:".as_slice(), bytes].concat())[..8]);
        Ok(SealingKey { id, cipher: XChaCha20Poly1305::new(Key::from_slice(bytes)) })
    }

    fn parse(text: &str, origin: &str) -> Result<SealingKey, String> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| format!("{origin} is not base64 (make one with `openssl rand -base64 32`)"))?;
        SealingKey::new(&bytes).map_err(|e| format!("{origin}: {e}"))
    }
}

/// The current key and the earlier ones.
pub struct Keyring {
    current: SealingKey,
    previous: Vec<SealingKey>,
}

impl Keyring {
    /// The keys the configuration names. With none configured, the embedded default (SQLite)
    /// uses `<data_dir>/secret.key`, creating it (owner-only) on first use.
    pub fn from_config(config: &Config, backend: Backend) -> Result<Keyring, String> {
        let secrets = &config.secrets;
        let current = if !secrets.key.is_empty() {
            SealingKey::parse(&secrets.key, "secrets.key")?
        } else if !secrets.key_file.is_empty() {
            read_key_file(Path::new(&secrets.key_file), "secrets.key_file")?
        } else if backend == Backend::Sqlite {
            default_key(&PathBuf::from(&config.data_dir).join("secret.key"))?
        } else {
            return Err("no secret key is configured: set secrets.key_file (or KEELSON_SECRETS__KEY) to the same key \
                        on every replica"
                .to_string());
        };
        let previous = secrets
            .previous_key_files
            .iter()
            .map(|path| read_key_file(Path::new(path), "secrets.previous_key_files"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Keyring { current, previous })
    }

    /// A keyring of one key, for tests.
    pub fn with_key(bytes: &[u8; 32]) -> Keyring {
        Keyring { current: SealingKey::new(bytes).unwrap_or_else(|_| unreachable!("32 bytes")), previous: Vec::new() }
    }

    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    fn seal(&self, name: &str, value: &str) -> Result<(String, String), SecretError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .current
            .cipher
            .encrypt(&nonce, Payload { msg: value.as_bytes(), aad: name.as_bytes() })
            .map_err(|_| SecretError::Unavailable("encryption failed".to_string()))?;
        Ok((hex::encode(nonce), hex::encode(sealed)))
    }

    fn open(&self, stored: &StoredSecret) -> Result<SecretValue, SecretError> {
        let undecryptable =
            |reason: &str| SecretError::Undecryptable { name: stored.name.clone(), reason: reason.to_string() };
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == stored.key_id)
            .ok_or_else(|| undecryptable(&format!("sealed by key {}, which is not configured", stored.key_id)))?;
        let nonce = hex::decode(&stored.nonce).map_err(|_| undecryptable("bad nonce"))?;
        if nonce.len() != 24 {
            return Err(undecryptable("bad nonce"));
        }
        let sealed = hex::decode(&stored.ciphertext).map_err(|_| undecryptable("bad ciphertext"))?;
        let plain = key
            .cipher
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &sealed, aad: stored.name.as_bytes() })
            .map_err(|_| undecryptable("authentication failed"))?;
        String::from_utf8(plain).map(SecretValue::new).map_err(|_| undecryptable("not UTF-8"))
    }
}

fn read_key_file(path: &Path, setting: &str) -> Result<SealingKey, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{setting}: cannot read `{}`: {e}", path.display()))?;
    SealingKey::parse(&text, &format!("{setting} `{}`", path.display()))
}

fn default_key(path: &Path) -> Result<SealingKey, String> {
    if path.exists() {
        return read_key_file(path, "the embedded default's key file");
    }
    use base64::Engine;
    let key = XChaCha20Poly1305::generate_key(&mut OsRng);
    let text = base64::engine::general_purpose::STANDARD.encode(key.as_slice());
    write_owner_only(path, &text)
        .map_err(|e| format!("cannot create the secret key file `{}`: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "created the secret store's key file; back it up with the database");
    SealingKey::new(key.as_slice())
}

/// Writes a new file readable by its owner only; refuses to replace one (two processes starting
/// at once must not end up with different keys).
fn write_owner_only(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// The secret store's operations; cheap to clone.
#[derive(Clone)]
pub struct SecretService {
    store: Store,
    keyring: Result<Arc<Keyring>, String>,
}

impl SecretService {
    /// `keyring` is an error message when no key could be had: every operation then answers it.
    pub fn new(store: Store, keyring: Result<Keyring, String>) -> SecretService {
        SecretService { store, keyring: keyring.map(Arc::new) }
    }

    fn keyring(&self) -> Result<&Keyring, SecretError> {
        self.keyring.as_deref().map_err(|reason| SecretError::Unavailable(format!("the secret store is off: {reason}")))
    }

    pub async fn put(&self, name: &str, value: &str, principal: &str) -> Result<SecretInfo, SecretError> {
        validate_secret_name(name).map_err(SecretError::Invalid)?;
        if value.is_empty() || value.len() > MAX_SECRET_BYTES {
            return Err(SecretError::Invalid(format!(
                "a secret's value must be 1 to {MAX_SECRET_BYTES} bytes; this one is {}",
                value.len()
            )));
        }
        let keyring = self.keyring()?;
        let (nonce, ciphertext) = keyring.seal(name, value)?;
        let stored = self.store.put_secret(name, keyring.current_id(), &nonce, &ciphertext, principal).await?;
        Ok(stored.into())
    }

    pub async fn list(&self) -> Result<Vec<SecretInfo>, SecretError> {
        Ok(self.store.list_secrets().await?.into_iter().map(SecretInfo::from).collect())
    }

    pub async fn delete(&self, name: &str) -> Result<(), SecretError> {
        validate_secret_name(name).map_err(SecretError::Invalid)?;
        if self.store.delete_secret(name).await? {
            Ok(())
        } else {
            Err(SecretError::NotFound(name.to_string()))
        }
    }

    /// The value, for the server's own use (a login, a signature): never for an API answer.
    pub async fn reveal(&self, name: &str) -> Result<Option<SecretValue>, SecretError> {
        validate_secret_name(name).map_err(SecretError::Invalid)?;
        let Some(stored) = self.store.get_secret(name).await? else { return Ok(None) };
        self.keyring()?.open(&stored).map(Some)
    }

    /// Re-seals every secret that an earlier key sealed under the current key.
    pub async fn rotate(&self) -> Result<RotationReport, SecretError> {
        let keyring = self.keyring()?;
        let mut report = RotationReport { reencrypted: 0, current: 0, key_id: keyring.current_id().to_string() };
        for stored in self.store.list_secrets().await? {
            if stored.key_id == keyring.current_id() {
                report.current += 1;
                continue;
            }
            let value = keyring.open(&stored)?;
            let (nonce, ciphertext) = keyring.seal(&stored.name, value.expose())?;
            if self
                .store
                .reencrypt_secret(&stored.name, &stored.key_id, keyring.current_id(), &nonce, &ciphertext)
                .await?
            {
                report.reencrypted += 1;
            } else {
                // Rewritten meanwhile, under the current key.
                report.current += 1;
            }
        }
        Ok(report)
    }
}

impl SecretLookup for SecretService {
    fn lookup<'a>(&'a self, name: &'a str) -> LookupFuture<'a> {
        Box::pin(async move { self.reveal(name).await.map_err(|e| e.to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/k.db", dir.path().display());
        (Store::open(&url, &keelson_store::StoreOptions::default()).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn values_are_sealed_bound_to_their_name_and_rotated() {
        let (store, _dir) = store().await;
        let old = SecretService::new(store.clone(), Ok(Keyring::with_key(&[7; 32])));
        old.put("smtp-password", "hunter2-very-secret", "alice").await.unwrap();
        let row = store.get_secret("smtp-password").await.unwrap().unwrap();
        assert!(!row.ciphertext.contains(&hex::encode("hunter2")), "stored sealed");
        assert_eq!(old.reveal("smtp-password").await.unwrap().unwrap().expose(), "hunter2-very-secret");
        assert_eq!(old.reveal("absent").await.unwrap(), None);

        // A row copied under another name does not open: the name is bound to the value.
        store.put_secret("copy", &row.key_id, &row.nonce, &row.ciphertext, "mallory").await.unwrap();
        assert!(matches!(old.reveal("copy").await, Err(SecretError::Undecryptable { .. })));
        store.delete_secret("copy").await.unwrap();

        // Rotation: the new key with the old one listed as previous re-seals every row.
        let old_id = old.keyring().unwrap().current_id().to_string();
        let mut rotated = Keyring::with_key(&[9; 32]);
        rotated.previous.push(SealingKey::new(&[7; 32]).unwrap());
        let new = SecretService::new(store.clone(), Ok(rotated));
        assert_eq!(new.reveal("smtp-password").await.unwrap().unwrap().expose(), "hunter2-very-secret");
        let report = new.rotate().await.unwrap();
        assert_eq!((report.reencrypted, report.current), (1, 0));
        assert_ne!(report.key_id, old_id);
        // After rotation the old key alone no longer opens it; the new key alone does.
        assert!(matches!(old.reveal("smtp-password").await, Err(SecretError::Undecryptable { .. })));
        let only_new = SecretService::new(store.clone(), Ok(Keyring::with_key(&[9; 32])));
        assert_eq!(only_new.reveal("smtp-password").await.unwrap().unwrap().expose(), "hunter2-very-secret");
        assert_eq!(only_new.rotate().await.unwrap().current, 1);
    }

    #[tokio::test]
    async fn the_embedded_default_makes_one_owner_only_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().display().to_string(), ..Config::default() };
        let first = Keyring::from_config(&config, Backend::Sqlite).unwrap();
        let again = Keyring::from_config(&config, Backend::Sqlite).unwrap();
        assert_eq!(first.current_id(), again.current_id(), "the file is reused, not replaced");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let refused = Keyring::from_config(&config, Backend::Postgres).err().unwrap();
        assert!(refused.contains("secrets.key_file"), "{refused}");
        let bad = Config {
            secrets: keelson_core::config::SecretsConfig { key: "c2hvcnQ=".into(), ..Default::default() },
            ..config
        };
        assert!(Keyring::from_config(&bad, Backend::Sqlite).err().unwrap().contains("32 bytes"));
    }

    #[tokio::test]
    async fn bad_names_and_values_are_refused_and_a_missing_key_says_which_setting() {
        let (store, _dir) = store().await;
        let service = SecretService::new(store.clone(), Ok(Keyring::with_key(&[1; 32])));
        for name in ["", "../x", "a b"] {
            assert!(matches!(service.put(name, "v", "a").await, Err(SecretError::Invalid(_))), "{name}");
        }
        assert!(matches!(service.put("x", "", "a").await, Err(SecretError::Invalid(_))));
        assert!(matches!(service.delete("nope").await, Err(SecretError::NotFound(_))));
        let off = SecretService::new(store, Err("no secret key is configured: set secrets.key_file".to_string()));
        let error = off.put("x", "v", "a").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert!(error.to_string().contains("secrets.key_file"), "{error}");
    }
}
