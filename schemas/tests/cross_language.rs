//! The wire format against the Python implementation (`cruxlog_vision.events`): every sample
//! event written here is decoded and re-encoded by Python and must come back equal (and, for
//! events without maps, byte for byte); random events Python generates from the schemas must
//! decode here.
//!
//! Needs a Python with the `cruxlog-vision` package's dependencies: `$CRUXLOG_PYTHON`, default
//! `<workspace>/.local/venv/bin/python` (`bash infra/local/stack.sh install python`). The package
//! is imported from the working tree (`analyzers/python/src`), the schemas from `schemas/avro`.

use std::{
    collections::HashMap,
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use cruxlog_schemas::{
    Actor, DecodedEvent, DomainEvent, EventMeta, catalogue::catalogue, decode, events::samples,
};
use uuid::Uuid;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the schemas crate lives in the workspace")
        .to_path_buf()
}

fn python() -> PathBuf {
    std::env::var_os("CRUXLOG_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".local/venv/bin/python"))
}

/// Runs `python -m cruxlog_vision events <args>`, failing with Python's output; returns stdout.
fn cruxlog_vision(args: &[&OsStr]) -> String {
    let python = python();
    assert!(
        python.exists(),
        "no Python at {}: run `bash infra/local/stack.sh install python` or set CRUXLOG_PYTHON",
        python.display()
    );
    let src = workspace().join("analyzers/python/src");
    let pythonpath = match std::env::var_os("PYTHONPATH") {
        Some(existing) if !existing.is_empty() => {
            std::env::join_paths([src.into_os_string(), existing]).expect("valid PYTHONPATH")
        }
        _ => src.into_os_string(),
    };
    let output = Command::new(&python)
        .args(["-m", "cruxlog_vision", "events"].map(OsStr::new))
        .args(args)
        .env("CRUXLOG_SCHEMAS_DIR", workspace().join("schemas/avro"))
        .env("PYTHONPATH", pythonpath)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.display()));
    assert!(
        output.status.success(),
        "`cruxlog-vision events {}` failed ({}):\nstdout: {}\nstderr: {}",
        args.iter()
            .map(|arg| arg.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    String::from_utf8(output.stdout).expect("Python prints UTF-8")
}

/// A fresh folder under the system temp dir, removed when the test passes.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("cruxlog-cross-language-{}", Uuid::now_v7()));
        fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Whether the newest schema of `name` has a map anywhere: Python writes map entries in its own
/// order, so only the decoded values can be compared.
fn has_map(name: &str) -> bool {
    let schema = catalogue()
        .and_then(|catalogue| catalogue.latest(name))
        .expect("every event has a schema");
    schema.schema.canonical_form().contains(r#""type":"map""#)
}

fn decode_file(path: &Path) -> DecodedEvent {
    let bytes = fs::read(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    decode(&bytes).unwrap_or_else(|error| panic!("{} does not decode: {error}", path.display()))
}

/// Both sides must hash the same canonical form the same way, or neither can read the other.
#[test]
fn fingerprints_agree_with_python() {
    let listing = cruxlog_vision(&[OsStr::new("fingerprints")]);
    let mut python: HashMap<(&str, u32), (u64, &str)> = HashMap::new();
    for line in listing.lines() {
        let fields: Vec<_> = line.splitn(4, '\t').collect();
        let [name, version, fingerprint, canonical] = fields[..] else {
            panic!("unexpected line from `events fingerprints`: {line}");
        };
        let version = version.parse().expect("numeric version");
        let fingerprint =
            u64::from_str_radix(fingerprint.trim_start_matches("0x"), 16).expect("hex fingerprint");
        python.insert((name, version), (fingerprint, canonical));
    }
    let catalogue = catalogue().expect("catalogue parses");
    let mut problems = Vec::new();
    for version in catalogue.versions() {
        let key = (version.name, version.version);
        match python.remove(&key) {
            None => problems.push(format!("{} v{}: unknown to Python", key.0, key.1)),
            Some((fingerprint, canonical)) if fingerprint != version.fingerprint => {
                problems.push(format!(
                    "{} v{}: Rust {:#018x}, Python {fingerprint:#018x}\n  apache-avro canonical \
                     form: {}\n  fastavro canonical form:    {canonical}",
                    key.0,
                    key.1,
                    version.fingerprint,
                    version.schema.canonical_form(),
                ));
            }
            Some(_) => {}
        }
    }
    problems.extend(
        python
            .keys()
            .map(|(name, version)| format!("{name} v{version}: unknown to Rust")),
    );
    let count = problems.len();
    problems.truncate(2);
    assert!(
        count == 0,
        "{count} schema versions differ between Rust and Python, first ones:\n{}",
        problems.join("\n")
    );
}

#[test]
fn rust_samples_survive_a_python_round_trip() {
    let dir = TempDir::new();
    let (rust, py) = (dir.0.join("rust"), dir.0.join("py"));
    fs::create_dir_all(&rust).expect("create rust dir");
    let samples = samples::all();
    assert!(!samples.is_empty(), "no samples");
    let mut originals = Vec::new();
    for (i, sample) in samples.iter().enumerate() {
        let meta = EventMeta::new(Uuid::now_v7(), i64::try_from(i).unwrap_or(0) + 1, {
            if i % 2 == 0 {
                Actor::user(Uuid::now_v7())
            } else {
                Actor::system()
            }
        })
        .with_command(Uuid::now_v7())
        .with_traceparent(Some(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        ));
        let bytes = sample
            .encode(&meta)
            .unwrap_or_else(|error| panic!("{} does not encode: {error}", sample.name()));
        fs::write(rust.join(format!("{i}.bin")), &bytes).expect("write sample");
        originals.push((sample, meta, bytes));
    }

    let summary = cruxlog_vision(&[OsStr::new("roundtrip"), rust.as_os_str(), py.as_os_str()]);
    assert!(
        summary.starts_with(&format!("roundtrip: {} messages", samples.len())),
        "{summary}"
    );

    for (i, (sample, meta, bytes)) in originals.iter().enumerate() {
        let name = sample.name();
        let decoded = decode_file(&py.join(format!("{i}.bin")));
        assert_eq!(
            &decoded.event, *sample,
            "{name}: the event changed in Python"
        );
        let envelope = &decoded.envelope;
        assert_eq!(envelope.event_id, meta.event_id, "{name}: event_id");
        assert_eq!(envelope.event_type, name, "{name}: event_type");
        assert_eq!(envelope.aggregate_type, sample.aggregate_type(), "{name}");
        assert_eq!(envelope.aggregate_id, meta.aggregate_id, "{name}");
        assert_eq!(envelope.aggregate_version, meta.aggregate_version, "{name}");
        assert_eq!(
            envelope.occurred_at, meta.occurred_at,
            "{name}: occurred_at"
        );
        assert_eq!(envelope.command_id, meta.command_id, "{name}");
        assert_eq!(envelope.correlation_id, meta.correlation_id, "{name}");
        assert_eq!(envelope.causation_id, meta.causation_id, "{name}");
        assert_eq!(envelope.actor, meta.actor, "{name}: actor");
        assert_eq!(envelope.traceparent, meta.traceparent, "{name}");
        let original = decode(bytes).expect("the Rust bytes decode");
        if has_map(name) {
            let mut without_payload = original.envelope.clone();
            without_payload.payload.clone_from(&envelope.payload);
            assert_eq!(*envelope, without_payload, "{name}: the envelope changed");
        } else {
            assert_eq!(decoded, original, "{name}: the envelope changed");
            let again = fs::read(py.join(format!("{i}.bin"))).expect("read python output");
            assert!(
                again == *bytes,
                "{name}: Python wrote different bytes\nrust:   {bytes:02x?}\npython: {again:02x?}"
            );
        }
    }
}

#[test]
fn python_generated_events_decode() {
    let dir = TempDir::new();
    let generated = dir.0.join("gen");
    cruxlog_vision(&[
        OsStr::new("generate"),
        generated.as_os_str(),
        OsStr::new("--seed"),
        OsStr::new("20260504"),
    ]);
    let mut names = Vec::new();
    let mut files: Vec<_> = fs::read_dir(&generated)
        .expect("python wrote the gen dir")
        .map(|entry| entry.expect("readable entry").path())
        .collect();
    files.sort();
    for path in files {
        let decoded = decode_file(&path);
        let name = decoded.event.name();
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some(format!("gen-{name}.bin").as_str()),
            "file name and event type differ"
        );
        assert_eq!(decoded.envelope.event_type, name);
        let newest = catalogue()
            .and_then(|catalogue| catalogue.latest(name))
            .expect("schema");
        assert_eq!(
            decoded.envelope.schema_version,
            i32::try_from(newest.version).expect("small version")
        );
        names.push(name);
    }
    names.sort_unstable();
    let mut expected = DomainEvent::NAMES.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "one generated event per event schema");
}
