//! Server-Sent Events: the caller's new results arrive in order, only theirs, and a
//! reconnect with `Last-Event-ID` resumes after the last event seen; streams are capped.

mod helpers;

use std::time::Duration;

use futures::StreamExt as _;
use helpers::TestApp;
use uuid::Uuid;

/// A finished analysis as the projector writes it (the `read` views are simple, insertable).
async fn finished(db: &sqlx::PgPool, user: Uuid, status: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into read.analyses (analysis_id, user_id, kind, input_event_id, status, requested_at, finished_at)
         values ($1, $2, 'movement', $3, $4, now(), clock_timestamp())",
    )
    .bind(id)
    .bind(user)
    .bind(Uuid::now_v7())
    .bind(status)
    .execute(db)
    .await
    .expect("insert");
    id
}

/// Reads events from a stream until `count` `id:` lines were seen (bounded in time).
async fn read_events(response: reqwest::Response, count: usize) -> Vec<(String, String)> {
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let events: Vec<(String, String)> = text
            .split("\n\n")
            .filter(|block| block.contains("id:"))
            .map(|block| {
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                };
                (field("id:"), field("data:"))
            })
            .collect();
        if events.len() >= count {
            return events;
        }
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        match next {
            Ok(Some(Ok(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("stream ended early ({other:?}) after: {text}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_stream_in_order_and_resume_after_the_last_event_id() {
    let app = TestApp::api_only().await;
    let db = sqlx::PgPool::connect(&app.env.database_url)
        .await
        .expect("db");
    let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
    let token = app.token(me);
    let open = |last: Option<String>| {
        let mut request = app
            .client
            .get(format!("{}/v1/events", app.base))
            .bearer_auth(&token);
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        request.send()
    };
    finished(&db, me, "completed").await; // before the stream: not announced
    let stream = open(None).await.expect("request");
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let first = finished(&db, me, "completed").await;
    finished(&db, other, "completed").await; // someone else's
    let second = finished(&db, me, "failed").await;
    let events = read_events(stream, 2).await;
    assert!(events[0].1.contains(&first.to_string()), "{events:?}");
    assert!(events[1].1.contains(&second.to_string()), "{events:?}");
    assert!(events[1].1.contains("\"failed\""));

    // Reconnect after the first: the second comes again, then a new one.
    let resumed = open(Some(events[0].0.clone())).await.expect("request");
    let third = finished(&db, me, "completed").await;
    let events = read_events(resumed, 2).await;
    assert!(events[0].1.contains(&second.to_string()), "{events:?}");
    assert!(events[1].1.contains(&third.to_string()), "{events:?}");

    let bad = open(Some("not-an-id".into())).await.expect("request");
    assert_eq!(bad.status(), 422);
}

/// Streams are capped per user and per instance: past a cap a new one gets 429 with
/// `Retry-After`; a stream the client closed gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_capped_per_user_and_per_instance() {
    let env = cruxlog_runtime::testkit::TestEnv::new().await;
    env.kafka.ensure_event_topics().await.expect("topics");
    let mut config = helpers::api_config(&env);
    config.http.max_event_streams = 3;
    config.http.max_event_streams_per_user = 2;
    let app = TestApp::start(env, config).await;
    let open = |user: Uuid| {
        app.client
            .get(format!("{}/v1/events", app.base))
            .bearer_auth(app.token(user))
            .send()
    };
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let a1 = open(a).await.expect("request");
    let a2 = open(a).await.expect("request");
    assert_eq!((a1.status().as_u16(), a2.status().as_u16()), (200, 200));
    let refused = open(a).await.expect("request");
    assert_eq!(refused.status(), 429, "a third stream of one user");
    assert_eq!(refused.headers()["retry-after"], "10");
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let b1 = open(b).await.expect("request");
    assert_eq!(b1.status(), 200, "another user still gets one");
    assert_eq!(
        open(c).await.expect("request").status(),
        429,
        "the instance is full"
    );
    // The client closes one of a's streams: once the server notices, a may open one again.
    drop(a1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let reopened = loop {
        let response = open(a).await.expect("request");
        if response.status() == 200 {
            break response;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed stream's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    drop((a2, b1, reopened));
}
