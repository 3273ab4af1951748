//! The authorisation vocabulary: who is calling and what a route needs. Policies live in the
//! server; handlers only declare a [`Permission`].

use std::fmt;

/// What a route does to its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Read,
    Write,
    Admin,
}

/// The kinds of resource permissions are granted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// Health, metrics, version: the server itself.
    System,
    Jobs,
    Experiments,
    Models,
    Artifacts,
    Datasets,
    Pipelines,
    Endpoints,
    Monitors,
    Prompts,
    Gateway,
    /// The secret store: names and metadata to read, values to write (never to read back).
    Secrets,
    /// The audit log.
    Audit,
}

/// What a route requires. `Public` routes (liveness for load balancers) need no principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Public,
    Require(Action, ResourceKind),
}

impl Permission {
    pub const fn read(resource: ResourceKind) -> Self {
        Permission::Require(Action::Read, resource)
    }
    pub const fn write(resource: ResourceKind) -> Self {
        Permission::Require(Action::Write, resource)
    }
    pub const fn admin(resource: ResourceKind) -> Self {
        Permission::Require(Action::Admin, resource)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::Public => f.write_str("public"),
            Permission::Require(action, resource) => write!(f, "{action:?}:{resource:?}").map(|_| ()),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials were presented.
    Anonymous,
    /// A user or service identified by a token, with the roles it was granted.
    User { name: String, roles: Vec<String> },
}

impl Principal {
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::User { name, .. } => name,
        }
    }

    pub fn roles(&self) -> &[String] {
        match self {
            Principal::Anonymous => &[],
            Principal::User { roles, .. } => roles,
        }
    }
}
