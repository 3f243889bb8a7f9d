//! Ghosts, routines and workouts through the API and the projector, with the generators'
//! results appended by a stand-in: requested, planned, done, read back; broken bodies named
//! by field with nothing appended; another climber's routine and analyses stay out of reach.

mod catalogue;
mod helpers;

use catalogue::{admin_token, append, fields, get, post, post_with, records};
use cruxlog_schemas::{
    DomainEvent,
    events::{
        AnalysisInput, AnalysisKind, AnalysisReason, AnalysisRequested, AnalyzerInfo, Exercise,
        InputKind, Intensity, RoutineGenerated, RoutineWeek, TrainingFocus, Workout,
    },
};
use helpers::TestApp;
use serde_json::{Value, json};
use uuid::Uuid;

fn routine_body() -> Value {
    json!({"weeks": 4, "focus": ["strength", "technique"], "equipment": ["hangboard"],
        "availability": {"sessions_per_week": 3, "minutes_per_session": 90,
                         "days": ["monday", "thursday"]},
        "target_grade_system": "fontainebleau", "target_grade": "7a"})
}

/// What the routine generator would append: one week, one workout of two exercises.
fn plan_of(routine_id: Uuid, user_id: Uuid) -> RoutineGenerated {
    let exercise = |id: &str| Exercise {
        exercise_id: id.into(),
        code: "HANGBOARD_MAX_HANG".into(),
        name: "Max hangs".into(),
        sets: 5,
        reps: Some(1),
        work_seconds: Some(10),
        rest_seconds: 180,
        intensity: Intensity {
            rpe: Some(8),
            percent_max: None,
            added_load_kg: None,
            target_grade: None,
        },
        cue: "shoulders engaged".into(),
    };
    RoutineGenerated {
        routine_id,
        user_id,
        input_event_id: Uuid::now_v7(),
        analyzer: AnalyzerInfo {
            name: "routine".into(),
            version: 1,
            model_id: "test".into(),
        },
        weeks: vec![RoutineWeek {
            week: 1,
            theme: "base".into(),
            workouts: vec![Workout {
                workout_id: "w1-s1".into(),
                day: None,
                focus: TrainingFocus::Strength,
                title: "Fingers".into(),
                estimated_minutes: 60,
                exercises: vec![exercise("w1-s1-e1"), exercise("w1-s1-e2")],
            }],
        }],
        adapted_for_injury_ids: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routine_is_requested_planned_and_its_workouts_recorded_for_its_owner_only() {
    let app = catalogue::with_projector().await;
    let user = Uuid::now_v7();
    let token = app.token(user);
    let (status, requested) = post(&app, "/v1/routines", &token, &routine_body()).await;
    assert_eq!(
        (status, requested["version"].as_i64()),
        (202, Some(1)),
        "{requested}"
    );
    let id = requested["routine_id"].as_str().expect("id").to_owned();
    let at = requested["position"].as_str().expect("position");
    let (_, _, listed) = get(&app, &format!("/v1/routines?after={at}"), &token).await;
    assert_eq!(listed["routines"][0]["routine_id"], id.as_str(), "{listed}");
    assert_eq!(listed["routines"][0]["status"], "requested");

    let workouts = format!("/v1/routines/{id}/workouts");
    let done = json!({"workout_id": "w1-s1", "rpe": 7, "notes": "felt strong",
        "exercises": [{"exercise_id": "w1-s1-e1", "sets_done": 5, "reps_done": 1, "added_load_kg": 10.0}]});
    assert_eq!(
        post(&app, &workouts, &token, &done).await.0,
        409,
        "no plan yet"
    );

    let plan = plan_of(id.parse().expect("uuid"), user);
    let at = append(
        &app,
        plan.routine_id,
        2,
        DomainEvent::RoutineGenerated(plan),
    )
    .await;
    let (status, _, shown) = get(&app, &format!("/v1/routines/{id}?after={at}"), &token).await;
    assert_eq!(
        (status, &shown["status"]),
        (200, &json!("generated")),
        "{shown}"
    );

    let before = records(&app, "routine");
    let broken = json!({"workout_id": "w1-s1", "rpe": 11,
        "exercises": [{"exercise_id": "w9-e9", "sets_done": -1}]});
    let response = app
        .post_json(&workouts, Some(&token), &[], &broken.to_string())
        .await;
    assert_eq!(
        fields(response).await,
        ["exercises[0].exercise_id", "exercises[0].sets_done", "rpe"]
    );
    let response = app
        .post_json(
            &workouts,
            Some(&token),
            &[],
            &json!({"workout_id": "w9-s9"}).to_string(),
        )
        .await;
    assert_eq!(fields(response).await, ["workout_id"]);
    assert_eq!(records(&app, "routine"), before, "nothing appended");

    let (status, recorded) =
        post_with(&app, &workouts, &token, &[("if-match", "\"1\"")], &done).await;
    assert_eq!(
        (status, recorded["version"].as_i64()),
        (201, Some(2)),
        "{recorded}"
    );
    let at = recorded["position"].as_str().expect("position");
    let (status, etag, shown) = get(&app, &format!("/v1/routines/{id}?after={at}"), &token).await;
    assert_eq!((status, etag.as_deref()), (200, Some("\"2\"")));
    assert_eq!(shown["workouts"][0]["workout_id"], "w1-s1", "{shown}");
    assert_eq!(shown["workouts"][0]["exercises"][0]["sets_done"], 5);
    assert_eq!(shown["plan"][0]["workouts"][0]["workout_id"], "w1-s1");

    let stranger = app.token(Uuid::now_v7());
    assert_eq!(
        get(&app, &format!("/v1/routines/{id}"), &stranger).await.0,
        404
    );
    assert_eq!(post(&app, &workouts, &stranger, &done).await.0, 404);
    let (_, _, theirs) = get(&app, "/v1/routines", &stranger).await;
    assert_eq!(theirs["routines"], json!([]));
}

/// A route to aim ghosts at: a gym and a wall by an admin, the route by a climber.
async fn route(app: &TestApp, token: &str) -> String {
    let admin = admin_token(app);
    let (_, gym) = post(app, "/v1/gyms", &admin, &json!({"name": "Block'Out"})).await;
    let path = format!("/v1/gyms/{}/walls", gym["gym_id"].as_str().expect("id"));
    let wall = json!({"name": "Board", "kind": "board", "angle_degrees": 40});
    let (_, wall) = post(app, &path, &admin, &wall).await;
    let path = format!("/v1/walls/{}/routes", wall["wall_id"].as_str().expect("id"));
    let body = json!({"colour": "red", "grade_system": "v_scale", "grade": "V5",
        "holds": [{"hold_id": "a1", "role": "start"}, {"hold_id": "k18", "role": "finish"}]});
    let (status, route) = post(app, &path, token, &body).await;
    assert_eq!(status, 201, "{route}");
    route["route_id"].as_str().expect("id").to_owned()
}

/// A movement analysis of `user`, as the video upload would have requested it.
async fn analysis_of(app: &TestApp, user: Uuid) -> Uuid {
    let request = AnalysisRequested {
        analysis_id: Uuid::now_v7(),
        user_id: user,
        kind: AnalysisKind::Movement,
        input_event_id: Uuid::now_v7(),
        inputs: vec![AnalysisInput {
            kind: InputKind::Video,
            id: Uuid::now_v7(),
            media: None,
        }],
        requested_analyzer_version: None,
        reason: AnalysisReason::Automatic,
    };
    let id = request.analysis_id;
    append(app, id, 1, DomainEvent::AnalysisRequested(request)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while get(app, &format!("/v1/analyses/{id}"), &app.token(user))
        .await
        .0
        != 200
    {
        assert!(
            std::time::Instant::now() < deadline,
            "analysis never projected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ghost_is_requested_on_a_route_from_ones_own_climb_only() {
    let app = catalogue::with_projector().await;
    let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
    let token = app.token(me);
    let route_id = route(&app, &token).await;
    let mine = analysis_of(&app, me).await;
    let theirs = analysis_of(&app, other).await;

    let broken = json!({"route_id": Uuid::now_v7(), "reference_analysis_id": theirs,
        "analyzer_version": 0});
    let response = app
        .post_json("/v1/ghosts", Some(&token), &[], &broken.to_string())
        .await;
    assert_eq!(
        fields(response).await,
        ["analyzer_version", "reference_analysis_id", "route_id"]
    );
    assert_eq!(records(&app, "ghost"), 0, "nothing appended");

    let body = json!({"route_id": route_id, "reference_analysis_id": mine});
    let (status, accepted) = post(&app, "/v1/ghosts", &token, &body).await;
    assert_eq!(status, 202, "{accepted}");
    let at = accepted["position"].as_str().expect("position");
    let (status, _, listed) = get(&app, &format!("/v1/ghosts?after={at}"), &token).await;
    assert_eq!(status, 200);
    assert_eq!(
        listed["ghosts"][0]["ghost_id"], accepted["ghost_id"],
        "{listed}"
    );
    assert_eq!(listed["ghosts"][0]["route_id"], route_id.as_str());
    assert_eq!(listed["ghosts"][0]["status"], "requested");

    let (_, _, theirs) = get(&app, "/v1/ghosts", &app.token(other)).await;
    assert_eq!(theirs["ghosts"], json!([]));
    assert_eq!(get(&app, "/v1/ghosts?limit=0", &token).await.0, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_routine_request_names_every_field_and_appends_nothing() {
    let app = TestApp::api_only().await;
    let token = app.token(Uuid::now_v7());
    let broken = json!({"weeks": 0, "focus": [], "equipment": ["trampoline"],
        "availability": {"sessions_per_week": 0, "minutes_per_session": 5, "days": ["someday"]},
        "target_grade": "7a", "goal_id": Uuid::now_v7(), "analyzer_version": 0});
    let response = app
        .post_json("/v1/routines", Some(&token), &[], &broken.to_string())
        .await;
    assert_eq!(
        fields(response).await,
        [
            "analyzer_version",
            "availability.days[0]",
            "availability.minutes_per_session",
            "availability.sessions_per_week",
            "equipment[0]",
            "focus",
            "goal_id",
            "target_grade",
            "weeks"
        ]
    );
    let missing = app
        .post_json("/v1/routines", Some(&token), &[], r#"{"weeks": 4}"#)
        .await;
    assert_eq!(missing.status(), 422);
    assert_eq!(records(&app, "routine"), 0);
    let nowhere = format!("/v1/routines/{}/workouts", Uuid::now_v7());
    assert_eq!(
        post(&app, &nowhere, &token, &json!({"workout_id": "w1"}))
            .await
            .0,
        404
    );
}
