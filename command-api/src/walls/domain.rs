//! Decisions of the gym, wall and route aggregates: pure and synchronous, state + command ->
//! events or a domain error (STYLE.md). Each state is what later commands check and nothing
//! more; it lives in the aggregate's head (see [`crate::writer`]), so a wall can be registered
//! under a gym, or a route on a wall, right after its creation without waiting for a
//! projection.

use std::collections::BTreeSet;

use cruxlog_schemas::{
    DomainEvent,
    events::{
        GymRegistered, RouteConfirmed, RouteDefined, WallPhotoUploaded, WallRegistered, aggregate,
    },
    grades::Grade,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::ApiError,
    fold::{self, Aggregate, Unfoldable},
    writer::{Decision, NewEvent},
};

/// A gym only has to be known to exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GymState {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WallState {
    pub gym_id: Uuid,
    /// The default angle of routes defined on the wall.
    pub angle_degrees: Option<f64>,
    /// Photos a route may be drawn on.
    pub photos: BTreeSet<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteState {
    pub wall_id: Uuid,
    pub grade: Grade,
    pub confirmed: bool,
}

impl GymState {
    fn registered(event: &GymRegistered) -> Self {
        Self {
            name: event.name.clone(),
        }
    }
}

impl WallState {
    fn registered(event: &WallRegistered) -> Self {
        Self {
            gym_id: event.gym_id,
            angle_degrees: event.angle_degrees,
            photos: BTreeSet::new(),
        }
    }
}

impl RouteState {
    fn defined(event: &RouteDefined) -> Self {
        Self {
            wall_id: event.wall_id,
            grade: event.grade.clone(),
            confirmed: false,
        }
    }
}

impl Aggregate for GymState {
    const TYPE: &'static str = aggregate::GYM;

    fn evolve(state: Option<Self>, _: Uuid, event: &DomainEvent) -> Result<Self, Unfoldable> {
        match event {
            DomainEvent::GymRegistered(registered) => {
                fold::absent(state.as_ref(), event)?;
                Ok(Self::registered(registered))
            }
            _ => Err(Unfoldable::foreign::<Self>(event)),
        }
    }
}

impl Aggregate for WallState {
    const TYPE: &'static str = aggregate::WALL;

    fn evolve(state: Option<Self>, _: Uuid, event: &DomainEvent) -> Result<Self, Unfoldable> {
        match event {
            DomainEvent::WallRegistered(registered) => {
                fold::absent(state.as_ref(), event)?;
                Ok(Self::registered(registered))
            }
            DomainEvent::WallPhotoUploaded(uploaded) => {
                let mut state = fold::existing(state, event)?;
                state.photos.insert(uploaded.photo_id);
                Ok(state)
            }
            _ => Err(Unfoldable::foreign::<Self>(event)),
        }
    }
}

impl Aggregate for RouteState {
    const TYPE: &'static str = aggregate::ROUTE;

    fn evolve(state: Option<Self>, _: Uuid, event: &DomainEvent) -> Result<Self, Unfoldable> {
        match event {
            DomainEvent::RouteDefined(defined) => {
                fold::absent(state.as_ref(), event)?;
                Ok(Self::defined(defined))
            }
            DomainEvent::RouteConfirmed(confirmed) => {
                let mut state = fold::existing(state, event)?;
                state.confirmed = true;
                state.grade = confirmed.grade.clone();
                Ok(state)
            }
            // The state keeps nothing about retirement.
            DomainEvent::RouteRetired(_) => fold::existing(state, event),
            _ => Err(Unfoldable::foreign::<Self>(event)),
        }
    }
}

/// A second run of the same keyed command finds its aggregate created: nothing more to append.
pub fn register_gym(state: Option<GymState>, event: &GymRegistered) -> Decision<GymState> {
    match state {
        Some(state) => Ok((vec![], state)),
        None => Ok((
            vec![NewEvent::new(event.clone())],
            GymState::registered(event),
        )),
    }
}

pub fn register_wall(state: Option<WallState>, event: &WallRegistered) -> Decision<WallState> {
    match state {
        Some(state) if state.gym_id == event.gym_id => Ok((vec![], state)),
        Some(_) => Err(ApiError::Conflict("wall id taken".into())),
        None => Ok((
            vec![NewEvent::new(event.clone())],
            WallState::registered(event),
        )),
    }
}

pub fn add_photo(state: Option<WallState>, event: &WallPhotoUploaded) -> Decision<WallState> {
    let mut state = state.ok_or(ApiError::NotFound)?;
    if !state.photos.insert(event.photo_id) {
        return Ok((vec![], state));
    }
    Ok((vec![NewEvent::new(event.clone())], state))
}

pub fn define_route(state: Option<RouteState>, event: &RouteDefined) -> Decision<RouteState> {
    match state {
        Some(state) if state.wall_id == event.wall_id => Ok((vec![], state)),
        Some(_) => Err(ApiError::Conflict("route id taken".into())),
        None => Ok((
            vec![NewEvent::new(event.clone())],
            RouteState::defined(event),
        )),
    }
}

/// Confirms a route at `grade` (its proposed grade when `None`); confirming it again at the
/// same grade appends nothing, at another grade re-grades it.
pub fn confirm_route(
    state: Option<RouteState>,
    route_id: Uuid,
    grade: Option<&Grade>,
) -> Decision<RouteState> {
    let mut state = state.ok_or(ApiError::NotFound)?;
    let grade = grade.unwrap_or(&state.grade).clone();
    if state.confirmed && state.grade == grade {
        return Ok((vec![], state));
    }
    let event = RouteConfirmed {
        route_id,
        wall_id: state.wall_id,
        grade: grade.clone(),
    };
    state.confirmed = true;
    state.grade = grade;
    Ok((vec![NewEvent::new(event)], state))
}

#[cfg(test)]
mod tests {
    use cruxlog_schemas::grades::GradeSystem;

    use super::*;

    fn grade(label: &str) -> Grade {
        Grade::parse(GradeSystem::Fontainebleau, label).expect("a grade")
    }

    fn defined() -> RouteState {
        RouteState {
            wall_id: Uuid::now_v7(),
            grade: grade("6a"),
            confirmed: false,
        }
    }

    #[test]
    fn a_route_is_confirmed_once_per_grade_and_a_missing_one_is_not_found() {
        let route_id = Uuid::now_v7();
        assert!(matches!(
            confirm_route(None, route_id, None),
            Err(ApiError::NotFound)
        ));
        let (events, confirmed) = confirm_route(Some(defined()), route_id, None).expect("ok");
        assert_eq!(events.len(), 1);
        assert!(confirmed.confirmed);
        let (events, same) = confirm_route(Some(confirmed), route_id, None).expect("again");
        assert!(events.is_empty(), "confirming twice appends once");
        let (events, regraded) =
            confirm_route(Some(same), route_id, Some(&grade("6b"))).expect("re-grade");
        assert_eq!(events.len(), 1);
        assert_eq!(regraded.grade, grade("6b"));
    }

    #[test]
    fn a_photo_needs_a_wall_and_is_added_once() {
        let photo = cruxlog_schemas::events::samples::all()
            .into_iter()
            .find_map(|event| match event {
                cruxlog_schemas::DomainEvent::WallPhotoUploaded(event) => Some(event),
                _ => None,
            })
            .expect("a sample");
        assert!(matches!(add_photo(None, &photo), Err(ApiError::NotFound)));
        let wall = WallState {
            gym_id: Uuid::now_v7(),
            angle_degrees: None,
            photos: BTreeSet::new(),
        };
        let (events, wall) = add_photo(Some(wall), &photo).expect("adds");
        assert_eq!(events.len(), 1);
        assert!(add_photo(Some(wall), &photo).expect("again").0.is_empty());
    }
}
