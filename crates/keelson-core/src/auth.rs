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
    /// Users, tokens and role bindings.
    Identities,
    /// The list of workspaces: listing and reading for anyone with a role somewhere, creating
    /// and deleting for admins of the default workspace.
    Workspaces,
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
    /// A user or service identified by a token or password: the roles it was given by name (a
    /// tokens file's `roles`, which promotion approvals count) and its role in the workspace.
    User { name: String, roles: Vec<String>, role: Option<Role> },
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

    /// The principal's workspace role: the one bound to it, or the highest workspace role among
    /// its named roles (other roles, such as a promotion policy's `approver`, grant no route).
    pub fn workspace_role(&self) -> Option<Role> {
        let bound = match self {
            Principal::Anonymous => None,
            Principal::User { role, .. } => *role,
        };
        self.roles().iter().filter_map(|role| Role::parse(role)).chain(bound).max()
    }
}

/// What a principal may do in a workspace: viewers read, editors also write, admins also
/// administer (policies, secrets, users, the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Read => true,
            Action::Write => self >= Role::Editor,
            Action::Admin => self == Role::Admin,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_in_order_and_other_roles_grant_nothing() {
        assert!(Role::Viewer.allows(Action::Read) && !Role::Viewer.allows(Action::Write));
        assert!(Role::Editor.allows(Action::Write) && !Role::Editor.allows(Action::Admin));
        assert!(Role::Admin.allows(Action::Admin));
        let user = |roles: &[&str]| Principal::User {
            name: "u".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            role: None,
        };
        assert_eq!(user(&["approver", "viewer", "editor"]).workspace_role(), Some(Role::Editor));
        assert_eq!(user(&["approver"]).workspace_role(), None);
        assert_eq!(Principal::Anonymous.workspace_role(), None);
        let bound = Principal::User { name: "u".into(), roles: vec!["viewer".into()], role: Some(Role::Admin) };
        assert_eq!(bound.workspace_role(), Some(Role::Admin));
    }
}
