//! DESIGN.md Security: the projectors' role writes the read models; the API's role
//! (`cruxlog_api`) can read the `read` views and nothing else.

mod common;

use common::Harness;
use sqlx::{Connection as _, PgConnection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_role_reads_the_views_and_cannot_write_or_reach_the_tables() {
    let harness = Harness::new().await;
    cruxlog_projectors::service::ensure_live(&harness.db)
        .await
        .expect("read models");
    let live = cruxlog_projectors::builds::live(&harness.db, "sessions")
        .await
        .expect("query")
        .expect("live");
    let api_url = harness
        .env
        .database_url
        .replacen("://postgres@", "://cruxlog_api@", 1);
    let mut api = PgConnection::connect(&api_url)
        .await
        .expect("the api role logs in");

    let count: i64 = sqlx::query_scalar("select count(*) from read.sessions")
        .fetch_one(&mut api)
        .await
        .expect("reads");
    assert_eq!(count, 0);
    sqlx::query("select * from read.projection_health")
        .fetch_all(&mut api)
        .await
        .expect("reads health");

    let denied = [
        "insert into read.sessions (session_id) values (gen_random_uuid())".to_owned(),
        "delete from read.sessions".to_owned(),
        format!("select count(*) from {}.sessions", live.schema_name),
        "select count(*) from cruxlog.projection_offsets".to_owned(),
        "create table read.mine (x int)".to_owned(),
    ];
    for sql in denied {
        let error = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut api)
            .await
            .expect_err(&sql);
        let message = error.to_string();
        assert!(
            message.contains("permission denied") || message.contains("cannot"),
            "{sql}: {message}"
        );
    }
}
