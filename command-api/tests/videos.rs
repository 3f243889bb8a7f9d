//! A climbing video through the whole system: uploaded to the API, stored by content hash,
//! analysed by the movement analyzer and its Python worker, projected, and read back as
//! metrics, findings and a playable annotated video. Plus the refusals around uploads.

mod helpers;

use std::time::{Duration, Instant};

use helpers::TestApp;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// A short H.264 clip of a person over a textured wall, made by the vision package.
fn test_video(dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join("climb.mp4");
    let cli = helpers::python().replace("/bin/python", "/bin/cruxlog-vision");
    let status = std::process::Command::new(cli)
        .args([
            "make-test-video",
            "--seconds",
            "4",
            "--width",
            "640",
            "--height",
            "360",
        ])
        .arg(&path)
        .status()
        .expect("cruxlog-vision runs");
    assert!(status.success());
    std::fs::read(&path).expect("video")
}

async fn session_with_attempt(app: &TestApp, token: &str) -> (String, String) {
    let started: Value = app
        .post_session(token, r#"{"discipline":"boulder","indoor":true}"#)
        .await
        .json()
        .await
        .expect("json");
    let session = started["session_id"].as_str().expect("id").to_owned();
    let logged: Value = app
        .post_json(
            &format!("/v1/sessions/{session}/attempts"),
            Some(token),
            &[],
            r#"{"style":"boulder","result":"redpoint"}"#,
        )
        .await
        .json()
        .await
        .expect("json");
    (
        session,
        logged["attempt_id"].as_str().expect("id").to_owned(),
    )
}

async fn upload(
    app: &TestApp,
    token: &str,
    path: &str,
    bytes: Vec<u8>,
    content_type: &str,
) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_uploaded_video_comes_back_analysed_with_a_playable_annotated_video() {
    let app = TestApp::full_stack_with_movement().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = test_video(dir.path());
    let user = Uuid::now_v7();
    let token = app.token(user);
    let (session, attempt) = session_with_attempt(&app, &token).await;

    let path = format!("/v1/sessions/{session}/attempts/{attempt}/videos");
    let stored = upload(&app, &token, &path, bytes.clone(), "video/mp4").await;
    assert_eq!(stored.status(), 201, "{:?}", stored.text().await);
    let stored: Value = stored.json().await.expect("json");
    let sha256: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(stored["sha256"], sha256);
    assert!((3_900..=4_100).contains(&stored["duration_ms"].as_i64().expect("ms")));
    let analysis_id = stored["analysis_id"]
        .as_str()
        .expect("analysis requested")
        .to_owned();

    // The analysis runs in the background; poll its read model.
    let deadline = Instant::now() + Duration::from_secs(180);
    let analysis = loop {
        let response = app
            .get(&format!("/v1/analyses/{analysis_id}"), &token)
            .await;
        if response.status() == 200 {
            let analysis: Value = response.json().await.expect("json");
            if analysis["status"] != "requested" {
                break analysis;
            }
        }
        assert!(Instant::now() < deadline, "analysis never finished");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(analysis["status"], "completed", "{analysis}");
    assert_eq!(analysis["analyzer"]["name"], "movement");
    assert!(
        analysis["metrics"]
            .as_object()
            .is_some_and(|m| !m.is_empty()),
        "{analysis}"
    );
    assert!(analysis["findings"].is_array());
    let links = analysis["media"].as_array().expect("media");
    assert!(
        links.iter().any(|l| l["name"] == "annotated_video"),
        "{analysis}"
    );

    let video = app
        .get(
            &format!("/v1/analyses/{analysis_id}/media/annotated_video"),
            &token,
        )
        .await;
    assert_eq!(video.status(), 200);
    assert_eq!(video.headers()["content-type"], "video/mp4");
    let annotated = video.bytes().await.expect("bytes");
    assert_eq!(&annotated[4..8], b"ftyp", "an MP4 file");

    // The session lists the video and its analysis; nobody else can fetch the media.
    let view: Value = app
        .get(&format!("/v1/sessions/{session}"), &token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        view["attempts"][0]["videos"][0]["video_id"],
        stored["video_id"]
    );
    assert_eq!(view["analyses"][0]["analysis_id"], analysis_id.as_str());
    let stranger = app.token(Uuid::now_v7());
    let theirs = app
        .get(
            &format!("/v1/analyses/{analysis_id}/media/annotated_video"),
            &stranger,
        )
        .await;
    assert_eq!(theirs.status(), 404);

    // Asking again for the same video and version is the same analysis (A1).
    let again: Value = app
        .post_json(
            &format!(
                "/v1/sessions/{session}/videos/{}/analyses",
                stored["video_id"].as_str().expect("id")
            ),
            Some(&token),
            &[],
            "{}",
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["analysis_id"], analysis_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_are_not_videos_or_not_yours_are_refused_and_nothing_is_appended() {
    let app = TestApp::api_only().await;
    let token = app.token(Uuid::now_v7());
    let (session, attempt) = session_with_attempt(&app, &token).await;
    let path = format!("/v1/sessions/{session}/attempts/{attempt}/videos");
    let topic = app.env.kafka.topics().for_aggregate("climbing_session");
    let before = app.env.records_in(&topic);

    let text = upload(
        &app,
        &token,
        &path,
        b"just some text, not a video".repeat(100),
        "video/mp4",
    )
    .await;
    assert_eq!(text.status(), 415);
    assert_eq!(text.headers()["content-type"], "application/problem+json");

    let stranger = app.token(Uuid::now_v7());
    let theirs = upload(&app, &stranger, &path, vec![0; 1024], "video/mp4").await;
    assert_eq!(theirs.status(), 404);
    let unknown = format!("/v1/sessions/{session}/attempts/{}/videos", Uuid::now_v7());
    assert_eq!(
        upload(&app, &token, &unknown, vec![0; 1024], "video/mp4")
            .await
            .status(),
        404
    );

    assert_eq!(app.env.records_in(&topic), before, "nothing appended");
    let stored = walkdir(std::path::Path::new(&helpers::blob_dir(&app.env)));
    assert!(
        stored.iter().all(|p| !p.contains("/sha256/")),
        "nothing stored: {stored:?}"
    );
}

fn walkdir(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walkdir(&path)
            } else {
                vec![path.to_string_lossy().into_owned()]
            }
        })
        .collect()
}
