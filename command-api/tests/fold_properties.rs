//! The fold of an aggregate's events gives the state its decisions returned (ADR 0014):
//! random command sequences run through the decisions, with strangers and repeats mixed in,
//! and the events they appended fold, by [`Aggregate::evolve`], into the very state the
//! decisions hold, after every step and as the JSON a head stores.

use cruxlog_command_api::{
    coaching::domain as coaching,
    domain as sessions,
    fold::{self, Aggregate},
    user_domain as users,
    walls::domain as walls,
    writer::Decision,
};
use cruxlog_schemas::{
    DomainEvent,
    events::{Role, samples},
    grades::{Grade, GradeSystem},
};
use proptest::{collection::vec, prelude::*, sample::select};
use uuid::Uuid;

/// The first sample of one event type, to vary from.
macro_rules! sample {
    ($variant:ident) => {
        samples::all()
            .into_iter()
            .find_map(|event| match event {
                DomainEvent::$variant(event) => Some(event),
                _ => None,
            })
            .expect(concat!("a sample of ", stringify!($variant)))
    };
}

/// Runs `decide` on the current state like the writer does: a refusal leaves the state, an
/// answer appends its events; each appended event must fold the state before it into the
/// state after it.
fn step<S>(
    state: &mut Option<S>,
    log: &mut Vec<(Uuid, DomainEvent)>,
    decide: impl FnOnce(Option<S>) -> Decision<S>,
) where
    S: Aggregate + Clone + PartialEq + std::fmt::Debug,
{
    let Ok((events, next)) = decide(state.clone()) else {
        return;
    };
    let mut folded = state.clone();
    for new in events {
        folded = Some(S::evolve(folded, new.event_id, &new.event).expect("the event folds"));
        log.push((new.event_id, new.event));
    }
    assert_eq!(folded.as_ref(), Some(&next), "one step's fold");
    *state = Some(next);
}

/// The whole log folded from nothing, typed and as stored JSON, equals the decisions' state.
fn assert_folds<S>(state: Option<S>, log: &[(Uuid, DomainEvent)])
where
    S: Aggregate + PartialEq + std::fmt::Debug,
{
    let mut typed: Option<S> = None;
    let mut json = None;
    for (event_id, event) in log {
        typed = Some(S::evolve(typed, *event_id, event).expect("folds"));
        json = Some(
            fold::evolve_json(S::TYPE, json.as_ref(), *event_id, event).expect("folds as JSON"),
        );
    }
    assert_eq!(typed, state);
    let stored = json.map(|json| serde_json::from_value::<S>(json).expect("decodes"));
    assert_eq!(stored, state);
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 200,
        ..ProptestConfig::default()
    }
}

#[derive(Debug, Clone)]
enum SessionOp {
    Start { stranger: bool },
    Log(usize),
    Correct(usize),
    Delete(usize),
    Attach { video: usize, attempt: usize },
    End { stranger: bool },
}

fn session_op() -> impl Strategy<Value = SessionOp> {
    prop_oneof![
        1 => any::<bool>().prop_map(|stranger| SessionOp::Start { stranger }),
        4 => (0..4_usize).prop_map(SessionOp::Log),
        2 => (0..4_usize).prop_map(SessionOp::Correct),
        2 => (0..4_usize).prop_map(SessionOp::Delete),
        3 => (0..3_usize, 0..4_usize).prop_map(|(video, attempt)| SessionOp::Attach { video, attempt }),
        1 => any::<bool>().prop_map(|stranger| SessionOp::End { stranger }),
    ]
}

#[derive(Debug, Clone)]
enum UserOp {
    Register,
    Grant(Role),
    Revoke(Role),
    ChangeProfile,
}

fn user_op() -> impl Strategy<Value = UserOp> {
    let role = || select(vec![Role::Admin, Role::User, Role::Unknown]);
    prop_oneof![
        1 => Just(UserOp::Register),
        3 => role().prop_map(UserOp::Grant),
        3 => role().prop_map(UserOp::Revoke),
        1 => Just(UserOp::ChangeProfile),
    ]
}

#[derive(Debug, Clone)]
enum PlaceOp {
    RegisterGym,
    RegisterWall { other_gym: bool },
    AddPhoto(usize),
    DefineRoute { other_wall: bool },
    ConfirmRoute(Option<usize>),
    RequestRoutine { stranger: bool },
    CompleteWorkout { stranger: bool },
}

fn place_op() -> impl Strategy<Value = PlaceOp> {
    prop_oneof![
        Just(PlaceOp::RegisterGym),
        any::<bool>().prop_map(|other_gym| PlaceOp::RegisterWall { other_gym }),
        (0..3_usize).prop_map(PlaceOp::AddPhoto),
        any::<bool>().prop_map(|other_wall| PlaceOp::DefineRoute { other_wall }),
        proptest::option::of(0..3_usize).prop_map(PlaceOp::ConfirmRoute),
        any::<bool>().prop_map(|stranger| PlaceOp::RequestRoutine { stranger }),
        any::<bool>().prop_map(|stranger| PlaceOp::CompleteWorkout { stranger }),
    ]
}

fn ids(count: usize) -> Vec<Uuid> {
    (0..count).map(|_| Uuid::now_v7()).collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_sessions_events_fold_into_its_state(ops in vec(session_op(), 0..40)) {
        let (owner, stranger) = (Uuid::now_v7(), Uuid::now_v7());
        let (attempts, videos) = (ids(4), ids(3));
        let who = |is_stranger: bool| if is_stranger { stranger } else { owner };
        let mut state = None;
        let mut log = Vec::new();
        for op in ops {
            let decision = |current| match op {
                SessionOp::Start { stranger } => sessions::start(current, &cruxlog_schemas::events::SessionStarted {
                    user_id: who(stranger),
                    ..sample!(SessionStarted)
                }),
                SessionOp::Log(attempt) => sessions::log_attempt(current, &cruxlog_schemas::events::AttemptLogged {
                    user_id: owner,
                    attempt_id: attempts[attempt],
                    ..sample!(AttemptLogged)
                }),
                SessionOp::Correct(attempt) => sessions::correct_attempt(current, &cruxlog_schemas::events::AttemptCorrected {
                    user_id: owner,
                    attempt_id: attempts[attempt],
                    ..sample!(AttemptCorrected)
                }),
                SessionOp::Delete(attempt) => sessions::delete_attempt(current, &cruxlog_schemas::events::AttemptDeleted {
                    user_id: owner,
                    attempt_id: attempts[attempt],
                    ..sample!(AttemptDeleted)
                }),
                SessionOp::Attach { video, attempt } => sessions::attach_video(current, &cruxlog_schemas::events::VideoAttached {
                    user_id: owner,
                    attempt_id: attempts[attempt],
                    video_id: videos[video],
                    ..sample!(VideoAttached)
                }),
                SessionOp::End { stranger } => sessions::end(current, &cruxlog_schemas::events::SessionEnded {
                    user_id: who(stranger),
                    ..sample!(SessionEnded)
                }),
            };
            step(&mut state, &mut log, decision);
        }
        assert_folds(state, &log);
    }

    #[test]
    fn a_users_events_fold_into_its_state(ops in vec(user_op(), 0..30)) {
        let user_id = Uuid::now_v7();
        let mut state = None;
        let mut log = Vec::new();
        for op in ops {
            let decision = |current| match op {
                UserOp::Register => users::register(current, &cruxlog_schemas::events::UserRegistered {
                    user_id,
                    ..sample!(UserRegistered)
                }),
                UserOp::Grant(role) => users::grant(current, &cruxlog_schemas::events::RoleGranted { user_id, role }),
                UserOp::Revoke(role) => users::revoke(current, &cruxlog_schemas::events::RoleRevoked { user_id, role }),
                UserOp::ChangeProfile => users::change_profile(current, &cruxlog_schemas::events::ProfileChanged {
                    user_id,
                    ..sample!(ProfileChanged)
                }),
            };
            step(&mut state, &mut log, decision);
        }
        assert_folds(state, &log);
    }

    /// Gyms, walls, routes and routines, each its own aggregate, driven by one sequence.
    #[test]
    fn places_and_routines_fold_into_their_states(ops in vec(place_op(), 0..40)) {
        let (gyms, walls_, photos, owners) = (ids(2), ids(2), ids(3), ids(2));
        let grades: Vec<Grade> = ["6a", "6b", "7a"]
            .into_iter()
            .map(|label| Grade::parse(GradeSystem::Fontainebleau, label).expect("a grade"))
            .collect();
        let route_id = Uuid::now_v7();
        let (mut gym, mut wall, mut route, mut routine) = (None, None, None, None);
        let (mut gym_log, mut wall_log, mut route_log, mut routine_log) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for op in ops {
            match op {
                PlaceOp::RegisterGym => {
                    let event = cruxlog_schemas::events::GymRegistered { gym_id: gyms[0], ..sample!(GymRegistered) };
                    step(&mut gym, &mut gym_log, |current| walls::register_gym(current, &event));
                }
                PlaceOp::RegisterWall { other_gym } => {
                    let event = cruxlog_schemas::events::WallRegistered {
                        gym_id: gyms[usize::from(other_gym)],
                        ..sample!(WallRegistered)
                    };
                    step(&mut wall, &mut wall_log, |current| walls::register_wall(current, &event));
                }
                PlaceOp::AddPhoto(photo) => {
                    let event = cruxlog_schemas::events::WallPhotoUploaded {
                        photo_id: photos[photo],
                        ..sample!(WallPhotoUploaded)
                    };
                    step(&mut wall, &mut wall_log, |current| walls::add_photo(current, &event));
                }
                PlaceOp::DefineRoute { other_wall } => {
                    let event = cruxlog_schemas::events::RouteDefined {
                        route_id,
                        wall_id: walls_[usize::from(other_wall)],
                        ..sample!(RouteDefined)
                    };
                    step(&mut route, &mut route_log, |current| walls::define_route(current, &event));
                }
                PlaceOp::ConfirmRoute(grade) => {
                    let grade = grade.map(|index| &grades[index]);
                    step(&mut route, &mut route_log, |current| walls::confirm_route(current, route_id, grade));
                }
                PlaceOp::RequestRoutine { stranger } => {
                    let event = cruxlog_schemas::events::RoutineRequested {
                        user_id: owners[usize::from(stranger)],
                        ..sample!(RoutineRequested)
                    };
                    step(&mut routine, &mut routine_log, |current| coaching::request(current, &event));
                }
                PlaceOp::CompleteWorkout { stranger } => {
                    let event = cruxlog_schemas::events::WorkoutCompleted {
                        user_id: owners[usize::from(stranger)],
                        ..sample!(WorkoutCompleted)
                    };
                    step(&mut routine, &mut routine_log, |current| coaching::complete_workout(current, &event));
                }
            }
        }
        assert_folds(gym, &gym_log);
        assert_folds(wall, &wall_log);
        assert_folds(route, &route_log);
        assert_folds(routine, &routine_log);
    }
}

/// Refusals: an event before its aggregate, a second creation, another aggregate's event.
#[test]
fn events_that_cannot_belong_are_refused() {
    let logged = DomainEvent::AttemptLogged(sample!(AttemptLogged));
    let started = DomainEvent::SessionStarted(sample!(SessionStarted));
    let granted = DomainEvent::RoleGranted(sample!(RoleGranted));
    assert!(matches!(
        sessions::SessionState::evolve(None, Uuid::nil(), &logged),
        Err(fold::Unfoldable::NotCreated { .. })
    ));
    let state = sessions::SessionState::evolve(None, Uuid::nil(), &started).expect("starts");
    assert!(matches!(
        sessions::SessionState::evolve(Some(state.clone()), Uuid::nil(), &started),
        Err(fold::Unfoldable::CreatedTwice { .. })
    ));
    assert!(matches!(
        sessions::SessionState::evolve(Some(state), Uuid::nil(), &granted),
        Err(fold::Unfoldable::Foreign { .. })
    ));
}

/// A session head written before videos kept their media sealed still decodes, its media
/// sealed again under the owner's key id, and opens to what it held.
#[test]
fn a_session_head_of_the_earlier_format_decodes() {
    let (owner, video, attempt, event) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let stored = serde_json::json!({
        "owner": owner,
        "ended": false,
        "attempts": { attempt.to_string(): false },
        "videos": { video.to_string(): {
            "event_id": event, "attempt_id": attempt,
            "object_key": "videos/sha256/ab/abcd", "sha256": "abcd",
        }},
    });
    let state: sessions::SessionState = serde_json::from_value(stored).expect("decodes");
    let media = &state.videos[&video].media;
    assert_eq!(media.key_id, format!("user:{owner}"));
    let opened: cruxlog_schemas::events::sealed::MediaRef = media.open_dev().expect("opens");
    assert_eq!(opened.object_key, "videos/sha256/ab/abcd");
    assert_eq!(opened.sha256, "abcd");
    // And the current format round-trips.
    let again: sessions::SessionState =
        serde_json::from_value(serde_json::to_value(&state).expect("encodes")).expect("decodes");
    assert_eq!(again, state);
    // A video with neither form is refused, not decoded as empty.
    let broken = serde_json::json!({
        "owner": owner, "ended": false, "attempts": {},
        "videos": { video.to_string(): { "event_id": event, "attempt_id": attempt } },
    });
    assert!(serde_json::from_value::<sessions::SessionState>(broken).is_err());
}
