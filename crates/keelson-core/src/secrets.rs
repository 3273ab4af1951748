//! How domain code asks for a secret by name without knowing where secrets live. The secret
//! store (encrypted at rest in the metadata store) implements [`SecretLookup`]; channels, sources
//! and providers hold only names.

use std::future::Future;
use std::pin::Pin;

/// A secret's value, kept out of `Debug` output so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> SecretValue {
        SecretValue(value.into())
    }

    /// The value, for the one place that sends it (a login, a signature).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<SecretValue>, String>> + Send + 'a>>;

/// Finds secrets by name: `Ok(None)` when no secret has the name, `Err` when the store failed.
pub trait SecretLookup: Send + Sync {
    fn lookup<'a>(&'a self, name: &'a str) -> LookupFuture<'a>;
}

/// Secret names: 1–128 of letters, digits, `-`, `_` and `.`, starting with a letter or digit.
pub fn validate_secret_name(name: &str) -> Result<(), String> {
    let valid = (1..=128).contains(&name.len())
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "secret name `{}` must be 1–128 letters, digits, '-', '_' or '.', starting with a letter or digit",
            name.escape_debug()
        ))
    }
}

/// A lookup over a fixed map: for tests and for callers that resolved their secrets already.
#[derive(Debug, Default, Clone)]
pub struct StaticSecrets(pub std::collections::BTreeMap<String, SecretValue>);

impl SecretLookup for StaticSecrets {
    fn lookup<'a>(&'a self, name: &'a str) -> LookupFuture<'a> {
        let found = self.0.get(name).cloned();
        Box::pin(async move { Ok(found) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_do_not_print_and_names_are_checked() {
        let value = SecretValue::new("hunter2");
        assert!(!format!("{value:?}").contains("hunter2"));
        assert_eq!(value.expose(), "hunter2");
        for good in ["smtp-password", "OPENAI_KEY", "a", "hook.v2"] {
            validate_secret_name(good).unwrap();
        }
        for bad in ["", "-x", ".x", "a b", "a/b", "../x", &"a".repeat(129)] {
            assert!(validate_secret_name(bad).is_err(), "{bad}");
        }
    }
}
