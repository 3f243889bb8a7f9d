//! Black-box helpers: the real services, in process, on port 0, against the real broker and
//! database, with a database and topic prefix of their own per test.

// Each test binary uses a subset of the helpers.
#![allow(dead_code)]

use std::time::Duration;

pub(crate) mod events;

use cruxlog_command_api::{Application, config::Config};
use cruxlog_runtime::testkit::TestEnv;
use cruxlog_schemas::ActorRole;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) env: TestEnv,
    pub(crate) client: reqwest::Client,
    pub(crate) shutdown: CancellationToken,
    config: Config,
}

/// The Python interpreter with `cruxlog-vision` installed (`make test` exports it).
pub(crate) fn python() -> String {
    std::env::var("CRUXLOG_PYTHON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.local/venv/bin/python").to_owned()
    })
}

pub(crate) fn api_config(env: &TestEnv) -> Config {
    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".into();
    config.admin.addr = "127.0.0.1:0".into();
    config.kafka = env.kafka.clone();
    // The API's own least-privileged role: it may only read the `read` schema.
    config.database.url = cruxlog_runtime::config::Secret::new(env.database_url.replacen(
        "://postgres@",
        "://cruxlog_api@",
        1,
    ));
    config.auth.allow_dev_secret = true;
    config.blobs.url = blob_dir(env);
    config
}

/// The test's own object store directory, shared by its API and analyzer.
pub(crate) fn blob_dir(env: &TestEnv) -> String {
    std::env::temp_dir()
        .join(format!("cruxlog-blobs-{}", env.name))
        .to_string_lossy()
        .into_owned()
}

impl TestApp {
    /// The API alone (topics and read-model tables created, no projector running).
    pub(crate) async fn api_only() -> Self {
        let env = TestEnv::new().await;
        env.kafka.ensure_event_topics().await.expect("topics");
        Self::start(env.clone(), api_config(&env)).await
    }

    /// API, projector and analyzer: the whole write-project-analyze path.
    pub(crate) async fn full_stack() -> Self {
        Self::with_analyzers(false).await
    }

    /// [`TestApp::full_stack`] with the movement analyzer too (a worker pool and a pipeline
    /// per analysis partition): only tests of videos need it.
    pub(crate) async fn full_stack_with_movement() -> Self {
        Self::with_analyzers(true).await
    }

    async fn with_analyzers(movement: bool) -> Self {
        let app = Self::api_only().await;
        let shutdown = app.shutdown.clone();
        let mut projector_config = cruxlog_projectors::config::Config::default();
        projector_config.admin.addr = "127.0.0.1:0".into();
        projector_config.kafka = app.env.kafka.clone();
        projector_config.database.url =
            cruxlog_runtime::config::Secret::new(app.env.database_url.clone());
        let projector = cruxlog_projectors::Projectors::build(projector_config)
            .await
            .expect("projector builds");
        tokio::spawn(projector.run(shutdown.clone()));

        let mut analyzer_config = cruxlog_analyzers::config::Config::default();
        analyzer_config.admin.addr = "127.0.0.1:0".into();
        analyzer_config.kafka = app.env.kafka.clone();
        analyzer_config.worker.python = python();
        analyzer_config.blobs.url = blob_dir(&app.env);
        analyzer_config.movement.enabled = movement;
        let analyzer = cruxlog_analyzers::Analyzer::build(analyzer_config)
            .await
            .expect("analyzer builds");
        tokio::spawn(analyzer.run(shutdown));
        app
    }

    pub(crate) async fn start(env: TestEnv, config: Config) -> Self {
        cruxlog_runtime::telemetry::init_for_tests();
        // The read models belong to the projectors: create them so queries work.
        let db = sqlx::PgPool::connect(&env.database_url)
            .await
            .expect("test database");
        cruxlog_projectors::service::ensure_live(&db)
            .await
            .expect("read models");
        let application = Application::build(config.clone())
            .await
            .expect("api builds");
        let base = format!("http://{}", application.http_addr().expect("bound"));
        let shutdown = CancellationToken::new();
        tokio::spawn(application.run(shutdown.clone()));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self {
            base,
            env,
            client,
            shutdown,
            config,
        }
    }

    pub(crate) fn token(&self, user: Uuid) -> String {
        cruxlog_command_api::auth::TokenKeys::new(&self.config.auth)
            .mint(user, ActorRole::User, 300)
            .expect("token")
    }

    pub(crate) fn sessions_topic(&self) -> String {
        self.env.kafka.topics().for_aggregate("climbing_session")
    }

    /// POSTs a JSON body, with a bearer token and extra headers when given.
    pub(crate) async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub(crate) async fn post_session(&self, token: &str, body: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/sessions", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
