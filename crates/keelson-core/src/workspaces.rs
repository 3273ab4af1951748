//! Workspaces: the unit of isolation between teams. Every resource lives in exactly one.

/// The workspace that always exists: where requests without a workspace header go, where data
/// from before workspaces lives, and where users, tokens, secrets and the audit log are kept.
pub const DEFAULT_WORKSPACE: &str = "default";

/// Names that would collide with URL segments of the API (MLflow reserves the same).
const RESERVED: &[&str] = &["workspaces", "api", "ajax-api", "static-files"];

/// Checks a new workspace's name: a DNS label of 2 to 63 characters (lowercase letters, digits
/// and inner hyphens), as MLflow and Kubernetes require. Such a name is also safe as a path
/// segment and, with `-` read as `_`, as a PostgreSQL schema name.
pub fn validate_workspace_name(name: &str) -> Result<(), String> {
    if !(2..=63).contains(&name.len()) {
        return Err(format!("Workspace name '{}' must be between 2 and 63 characters.", name.escape_debug()));
    }
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let ends_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !bytes.iter().all(allowed) || !ends_ok(bytes.first()) || !ends_ok(bytes.last()) {
        return Err(format!(
            "Workspace name '{}' must match the pattern ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ (lowercase alphanumeric \
             with optional internal hyphens).",
            name.escape_debug()
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!("Workspace name '{name}' is reserved and cannot be used."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        for good in ["ab", "team-a", "a1", "0x", &"a".repeat(63)] {
            assert!(validate_workspace_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a", "-ab", "ab-", "Team", "a_b", "a.b", "a/b", "..", "über", "api", &"a".repeat(64)] {
            assert!(validate_workspace_name(bad).is_err(), "{bad}");
        }
        // The default workspace is not created by name, but its name is a valid label.
        assert!(validate_workspace_name(DEFAULT_WORKSPACE).is_ok());
    }
}
