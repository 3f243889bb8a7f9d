//! `docs/events.md` is generated from the schemas; this test keeps the committed file in step.

use std::{env, fs, path::Path};

use cruxlog_schemas::doc::events_markdown;

#[test]
fn docs_events_md_matches_the_schemas() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events.md");
    let generated = events_markdown();
    if env::var_os("UPDATE_EVENTS_DOC").is_some_and(|v| v == "1") {
        fs::write(&path, &generated).expect("write docs/events.md");
        return;
    }
    let committed = fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "docs/events.md is out of date with schemas/avro (first difference at line {}).\n\
             Regenerate it with:\n\n    \
             UPDATE_EVENTS_DOC=1 cargo test -p cruxlog-schemas --test events_doc\n",
            line + 1
        );
    }
}
