//! A broker crash mid-job (A1, A3). The shared local broker must not be restarted (other
//! tests use it), so this test starts a private single-node broker from the local stack's jars
//! (`infra/local/stack.sh` with its own data directory and ports), SIGKILLs it while a job
//! runs, and starts it again: the job's transaction waits for the broker and commits once.

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use serde_json::json;
use support::{Harness, results_for};

struct PrivateBroker {
    dir: tempfile::TempDir,
    port: u16,
    controller_port: u16,
}

impl PrivateBroker {
    fn start() -> Self {
        let local = std::env::var("CRUXLOG_LOCAL_DIR").map_or_else(
            |_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.local")),
            PathBuf::from,
        );
        let libs = local.join("kafka/libs");
        assert!(
            libs.is_dir(),
            "no Kafka jars in {}: run `make stack`",
            libs.display()
        );
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(dir.path().join("stamps")).expect("stamps");
        std::fs::create_dir_all(dir.path().join("kafka")).expect("kafka");
        std::fs::copy(local.join("stamps/kafka"), dir.path().join("stamps/kafka")).expect("stamp");
        std::os::unix::fs::symlink(&libs, dir.path().join("kafka/libs")).expect("libs");
        let broker = Self {
            dir,
            port: free_port(),
            controller_port: free_port(),
        };
        broker.stack("start");
        broker
    }

    fn stack(&self, action: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/local/stack.sh");
        let status = Command::new("bash")
            .args([script, action, "kafka"])
            .env("CRUXLOG_LOCAL_DIR", self.dir.path())
            .env("CRUXLOG_KAFKA_PORT", self.port.to_string())
            .env(
                "CRUXLOG_KAFKA_CONTROLLER_PORT",
                self.controller_port.to_string(),
            )
            .status()
            .expect("stack.sh runs");
        assert!(status.success(), "stack.sh {action} kafka failed");
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn crash(&self) {
        let pid = std::fs::read_to_string(self.pid_file()).expect("pid file");
        let killed = Command::new("kill").args(["-KILL", pid.trim()]).status();
        assert!(killed.is_ok_and(|s| s.success()), "broker SIGKILLed");
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("kafka/kafka.pid")
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if Path::new(&self.pid_file()).exists() {
            self.stack("stop");
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn a_broker_crash_mid_job_delays_the_result_and_it_lands_once() {
    let broker = tokio::task::spawn_blocking(PrivateBroker::start)
        .await
        .expect("broker");
    let mut harness = Harness::new_on(Some(broker.brokers())).await;
    harness.config.kafka.replication_factor = 1;
    let slow = harness.script(json!({"sleep": 4.0})).await;
    harness.append(&slow).await;
    let running = harness.start(harness.config.clone()).await;
    while running.pool.busy_pids().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    broker.crash();
    // The job ends while the broker is down; its transaction has to wait.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let restart = tokio::task::spawn_blocking(move || {
        broker.stack("start");
        broker
    });
    let broker = restart.await.expect("broker restarted");
    let after = harness.script(json!({"sleep": 0.1})).await;
    harness.append(&after).await;
    let events = harness
        .wait_for(Duration::from_secs(90), |events| {
            !results_for(events, slow.analysis_id).is_empty()
                && !results_for(events, after.analysis_id).is_empty()
        })
        .await;
    assert_eq!(
        results_for(&events, slow.analysis_id).len(),
        1,
        "exactly one result"
    );
    assert!(
        !running.task.is_finished(),
        "the analyzer rode out the outage without a restart"
    );
    running.stop().await;
    drop(broker);
}
