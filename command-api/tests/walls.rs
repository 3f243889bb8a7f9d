//! Gyms, walls, wall photos and routes through the API and the projector: registered by
//! admins, photographed and routed by climbers, confirmed by an admin and read back; every
//! broken field named with nothing appended; admin-only commands 403 for climbers.

mod catalogue;
mod helpers;

use catalogue::{admin_token, append, fields, get, post, post_with, records};
use cruxlog_schemas::{
    DomainEvent,
    events::{
        AnalyzerInfo, BoundingBox, DetectedHold, HoldColour, HoldKind, HoldsDetected, Point, Rgb,
    },
};
use helpers::TestApp;
use serde_json::{Value, json};
use uuid::Uuid;

async fn gym_and_wall(app: &TestApp, admin: &str, wall: Value) -> (String, String) {
    let gym = json!({"name": "Arkose", "city": "Paris", "country_code": "fr",
        "latitude": 48.85, "longitude": 2.35, "timezone": "Europe/Paris"});
    let (status, gym) = post(app, "/v1/gyms", admin, &gym).await;
    assert_eq!(status, 201, "{gym}");
    let gym_id = gym["gym_id"].as_str().expect("id").to_owned();
    let (status, wall) = post(app, &format!("/v1/gyms/{gym_id}/walls"), admin, &wall).await;
    assert_eq!(status, 201, "{wall}");
    (gym_id, wall["wall_id"].as_str().expect("id").to_owned())
}

async fn upload(app: &TestApp, token: &str, wall: &str, bytes: Vec<u8>) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/walls/{wall}/photos", app.base))
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(bytes)
        .send()
        .await
        .expect("request")
}

/// What the hold detector would append for a photo: three holds.
fn holds_of(wall_id: Uuid, photo_id: Uuid) -> HoldsDetected {
    let hold = |id: &str, x: f64| DetectedHold {
        hold_id: id.into(),
        polygon: vec![Point { x, y: 0.5 }],
        bbox: BoundingBox {
            min_x: x - 0.01,
            min_y: 0.49,
            max_x: x + 0.01,
            max_y: 0.51,
        },
        center: Point { x, y: 0.5 },
        area: 0.001,
        colour: HoldColour::Blue,
        rgb: Rgb { r: 0, g: 0, b: 255 },
        kind: HoldKind::Crimp,
        confidence: 0.9,
    };
    HoldsDetected {
        analysis_id: Uuid::now_v7(),
        user_id: Uuid::now_v7(),
        input_event_id: Uuid::now_v7(),
        wall_id,
        photo_id,
        analyzer: AnalyzerInfo {
            name: "holds".into(),
            version: 1,
            model_id: "test".into(),
        },
        image_width_px: 640,
        image_height_px: 480,
        holds: vec![hold("h1", 0.2), hold("h2", 0.5), hold("h3", 0.8)],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_gets_a_photo_holds_and_a_route_that_an_admin_confirms() {
    let app = catalogue::with_projector().await;
    let admin = admin_token(&app);
    let climber = app.token(Uuid::now_v7());
    let wall_body = json!({"name": "The Cave", "kind": "boulder", "angle_degrees": 30.0});
    let (gym, wall) = gym_and_wall(&app, &admin, wall_body).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let stored = upload(&app, &climber, &wall, catalogue::png(dir.path())).await;
    assert_eq!(stored.status(), 201, "{:?}", stored.text().await);
    assert_eq!(stored.headers()["etag"], "\"2\"");
    let stored: Value = stored.json().await.expect("json");
    assert_eq!(
        (stored["width_px"].as_i64(), stored["height_px"].as_i64()),
        (Some(640), Some(480))
    );
    let photo = stored["photo_id"].as_str().expect("id").to_owned();

    let detected = holds_of(wall.parse().expect("uuid"), photo.parse().expect("uuid"));
    let analysis = detected.analysis_id;
    let at = append(&app, analysis, 2, DomainEvent::HoldsDetected(detected)).await;
    let (status, _, shown) = get(&app, &format!("/v1/walls/{wall}?after={at}"), &climber).await;
    assert_eq!(
        (status, shown["holds"].as_array().map(Vec::len)),
        (200, Some(3)),
        "{shown}"
    );

    let route = json!({"holds_analysis_id": analysis, "photo_id": photo, "colour": "blue",
        "holds": [{"hold_id": "h1", "role": "start"}, {"hold_id": "h9", "role": "hand"}],
        "grade_system": "fontainebleau", "grade": "6b+", "style_tags": ["crimps", "overhang"]});
    let path = format!("/v1/walls/{wall}/routes");
    let routes_before = records(&app, "route");
    let response = app
        .post_json(&path, Some(&climber), &[], &route.to_string())
        .await;
    assert_eq!(fields(response).await, ["holds[1].hold_id"]);
    assert_eq!(records(&app, "route"), routes_before, "nothing appended");

    let mut route = route;
    route["holds"][1]["hold_id"] = json!("h2");
    let (status, defined) = post(&app, &path, &climber, &route).await;
    assert_eq!(
        (status, defined["version"].as_i64()),
        (201, Some(1)),
        "{defined}"
    );
    let route_id = defined["route_id"].as_str().expect("id").to_owned();

    let confirm = format!("/v1/routes/{route_id}/confirm");
    let regrade = json!({"grade_system": "fontainebleau", "grade": "6c"});
    let (status, _) = post(&app, &confirm, &climber, &regrade).await;
    assert_eq!(status, 403, "climbers do not confirm routes");
    let (status, confirmed) =
        post_with(&app, &confirm, &admin, &[("if-match", "\"1\"")], &regrade).await;
    assert_eq!(
        (status, confirmed["version"].as_i64()),
        (200, Some(2)),
        "{confirmed}"
    );
    let (status, _) = post_with(&app, &confirm, &admin, &[("if-match", "\"1\"")], &json!({})).await;
    assert_eq!(status, 409, "a stale If-Match");

    let at = confirmed["position"].as_str().expect("position");
    let (status, etag, shown) =
        get(&app, &format!("/v1/routes/{route_id}?after={at}"), &climber).await;
    assert_eq!((status, etag.as_deref()), (200, Some("\"2\"")));
    assert_eq!(shown["status"], "confirmed");
    assert_eq!(shown["grade_label"], "6C");
    assert_eq!(shown["gym_id"], gym.as_str());
    assert_eq!(
        shown["wall_angle_degrees"], 30.0,
        "the wall's angle by default"
    );
    assert_eq!(shown["style_tags"], json!(["crimps", "overhang"]));

    let (status, etag, shown) = get(&app, &format!("/v1/walls/{wall}"), &climber).await;
    assert_eq!((status, etag.as_deref()), (200, Some("\"2\"")));
    assert_eq!(shown["photos"][0]["photo_id"], photo.as_str());
    assert_eq!(shown["routes"][0]["route_id"], route_id.as_str());
    assert!(shown["photos"][0].get("uploaded_by").is_none(), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_gyms_walls_routes_and_photos_are_refused_by_field_with_nothing_appended() {
    let app = TestApp::api_only().await;
    let admin = admin_token(&app);
    let climber = app.token(Uuid::now_v7());

    let gym = json!({"name": " ", "country_code": "FRA", "latitude": 100.0, "timezone": "Paris"});
    let response = app
        .post_json("/v1/gyms", Some(&admin), &[], &gym.to_string())
        .await;
    assert_eq!(
        fields(response).await,
        ["country_code", "latitude", "longitude", "name", "timezone"]
    );
    assert_eq!(records(&app, "gym"), 0);

    let (gym, wall) = gym_and_wall(&app, &admin, json!({"name": "Slab", "kind": "boulder"})).await;
    let broken = json!({"name": "x", "kind": "cave", "angle_degrees": 120.0, "height_m": -1.0});
    let path = format!("/v1/gyms/{gym}/walls");
    let response = app
        .post_json(&path, Some(&admin), &[], &broken.to_string())
        .await;
    assert_eq!(
        fields(response).await,
        ["angle_degrees", "height_m", "kind"]
    );
    let unknown_gym = format!("/v1/gyms/{}/walls", Uuid::now_v7());
    let (status, _) = post(
        &app,
        &unknown_gym,
        &admin,
        &json!({"name": "x", "kind": "lead"}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(records(&app, "wall"), 1, "only the first wall");

    let future = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let route = json!({"holds": [{"hold_id": "a", "role": "elbow"}, {"hold_id": "a", "role": "hand"}],
        "colour": "teal", "grade_system": "french", "grade": "12z", "style_tags": ["fluffy"],
        "photo_id": Uuid::now_v7(), "set_at": future});
    let path = format!("/v1/walls/{wall}/routes");
    let response = app
        .post_json(&path, Some(&climber), &[], &route.to_string())
        .await;
    assert_eq!(
        fields(response).await,
        [
            "colour",
            "grade",
            "holds[0].role",
            "holds[1].hold_id",
            "photo_id",
            "set_at",
            "style_tags[0]",
            "wall_angle_degrees"
        ]
    );
    let unknown_wall = format!("/v1/walls/{}/routes", Uuid::now_v7());
    let route =
        json!({"colour": "red", "grade_system": "v_scale", "grade": "V4", "wall_angle_degrees": 0});
    assert_eq!(post(&app, &unknown_wall, &climber, &route).await.0, 404);
    assert_eq!(records(&app, "route"), 0);

    let not_an_image = upload(&app, &climber, &wall, b"hello, not a photo".to_vec()).await;
    assert_eq!(not_an_image.status(), 415);
    let dir = tempfile::tempdir().expect("tempdir");
    let nowhere = upload(
        &app,
        &climber,
        &Uuid::now_v7().to_string(),
        catalogue::png(dir.path()),
    )
    .await;
    assert_eq!(nowhere.status(), 404);
    assert_eq!(records(&app, "wall"), 1, "no photo appended");
    assert_eq!(
        get(&app, &format!("/v1/routes/{}", Uuid::now_v7()), &climber)
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn climbers_may_not_register_gyms_or_walls() {
    let app = TestApp::api_only().await;
    let admin = admin_token(&app);
    let climber = app.token(Uuid::now_v7());
    let (status, problem) = post(&app, "/v1/gyms", &climber, &json!({"name": "Mine"})).await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (403, Some("https://cruxlog.dev/problems/forbidden"))
    );
    let (gym, _) = gym_and_wall(&app, &admin, json!({"name": "Slab", "kind": "boulder"})).await;
    let path = format!("/v1/gyms/{gym}/walls");
    let (status, _) = post(&app, &path, &climber, &json!({"name": "x", "kind": "lead"})).await;
    assert_eq!(status, 403);
    assert_eq!((records(&app, "gym"), records(&app, "wall")), (1, 1));
    assert_eq!(
        app.post_json("/v1/gyms", None, &[], "{}").await.status(),
        401
    );
}
