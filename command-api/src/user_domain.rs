//! The user aggregate's decisions the API makes (registration, roles), pure like
//! [`crate::domain`]. The state lives in the user's head (see [`crate::writer`]).

use std::collections::BTreeSet;

use cruxlog_schemas::{
    DomainEvent,
    events::{ProfileChanged, Role, RoleGranted, RoleRevoked, UserRegistered, aggregate},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::ApiError,
    fold::{self, Aggregate, Unfoldable},
    writer::{Decision, NewEvent},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    /// Roles held beyond the implicit `user`, as lower-case names.
    pub roles: BTreeSet<String>,
}

impl Aggregate for UserState {
    const TYPE: &'static str = aggregate::USER;

    /// Only roles are kept; every other event of a user (profile, consent, goals...) leaves
    /// the state as it was.
    fn evolve(state: Option<Self>, _: Uuid, event: &DomainEvent) -> Result<Self, Unfoldable> {
        if let DomainEvent::UserRegistered(_) = event {
            fold::absent(state.as_ref(), event)?;
            return Ok(Self {
                roles: BTreeSet::new(),
            });
        }
        let mut state = fold::existing(state, event)?;
        match event {
            DomainEvent::RoleGranted(granted) if granted.role != Role::User => {
                state.roles.insert(role_name(granted.role).to_owned());
            }
            DomainEvent::RoleRevoked(revoked) => {
                state.roles.remove(role_name(revoked.role));
            }
            DomainEvent::RoleGranted(_)
            | DomainEvent::EmailChanged(_)
            | DomainEvent::PasswordChanged(_)
            | DomainEvent::ProfileChanged(_)
            | DomainEvent::MorphologyEstimated(_)
            | DomainEvent::ConsentGiven(_)
            | DomainEvent::ConsentWithdrawn(_)
            | DomainEvent::GoalSet(_)
            | DomainEvent::GoalClosed(_)
            | DomainEvent::InjuryReported(_)
            | DomainEvent::InjuryResolved(_)
            | DomainEvent::UserErased(_) => {}
            _ => return Err(Unfoldable::foreign::<Self>(event)),
        }
        Ok(state)
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::User => "user",
        Role::Unknown => "unknown",
    }
}

/// A new account. (The operator's `create-admin` grants `admin` in a second command: every
/// command appends at most one event per aggregate, so a half-done append cannot exist for
/// the log settlement of ADR 0009 to misjudge.)
pub fn register(state: Option<UserState>, event: &UserRegistered) -> Decision<UserState> {
    if let Some(state) = state {
        // The same registration re-run after a crash (keyed): nothing more to append.
        return Ok((vec![], state));
    }
    let events = vec![NewEvent::new(event.clone())];
    Ok((
        events,
        UserState {
            roles: BTreeSet::new(),
        },
    ))
}

pub fn grant(state: Option<UserState>, event: &RoleGranted) -> Decision<UserState> {
    let mut state = state.ok_or(ApiError::NotFound)?;
    if event.role == Role::Unknown {
        return Err(ApiError::invalid("role", "must be admin or user"));
    }
    // `user` is implicit and `admin` held already: nothing to append.
    if event.role == Role::User || !state.roles.insert(role_name(event.role).to_owned()) {
        return Ok((vec![], state));
    }
    Ok((vec![NewEvent::new(event.clone())], state))
}

pub fn revoke(state: Option<UserState>, event: &RoleRevoked) -> Decision<UserState> {
    let mut state = state.ok_or(ApiError::NotFound)?;
    if event.role == Role::User {
        return Err(ApiError::invalid("role", "the user role cannot be revoked"));
    }
    if !state.roles.remove(role_name(event.role)) {
        return Ok((vec![], state));
    }
    Ok((vec![NewEvent::new(event.clone())], state))
}

/// A new profile snapshot; only an existing user has one.
pub fn change_profile(state: Option<UserState>, event: &ProfileChanged) -> Decision<UserState> {
    let state = state.ok_or(ApiError::NotFound)?;
    Ok((vec![NewEvent::new(event.clone())], state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_granted_and_revoked_once_and_unknown_users_are_not_found() {
        let user_id = uuid::Uuid::now_v7();
        let grant_admin = RoleGranted {
            user_id,
            role: Role::Admin,
        };
        assert!(matches!(grant(None, &grant_admin), Err(ApiError::NotFound)));
        let state = UserState {
            roles: BTreeSet::new(),
        };
        let (events, state) = grant(Some(state), &grant_admin).expect("grants");
        assert_eq!(events.len(), 1);
        assert!(
            grant(Some(state.clone()), &grant_admin)
                .expect("again")
                .0
                .is_empty()
        );
        let revoke_admin = RoleRevoked {
            user_id,
            role: Role::Admin,
        };
        let (events, state) = revoke(Some(state), &revoke_admin).expect("revokes");
        assert_eq!(events.len(), 1);
        assert!(
            revoke(Some(state.clone()), &revoke_admin)
                .expect("again")
                .0
                .is_empty()
        );
        let revoke_user = RoleRevoked {
            user_id,
            role: Role::User,
        };
        assert!(matches!(
            revoke(Some(state), &revoke_user),
            Err(ApiError::Validation(_))
        ));
    }
}
