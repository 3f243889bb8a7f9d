//! Embeds every schema file under `avro/<full.name>/v<N>.avsc` into the crate, so a new
//! version is registered (and decodable) by adding its file, with no code to edit.

use std::{env, fmt::Write as _, fs, path::Path};

fn main() {
    // Read at run time: a build script binary reused from another checkout of the same
    // crate (a shared target directory) must not read that checkout's schemas.
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("avro");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut entries = Vec::new();
    let mut names: Vec<_> = fs::read_dir(&root)
        .expect("schemas/avro must exist")
        .map(|entry| entry.expect("readable schemas/avro entry").path())
        .filter(|path| path.is_dir())
        .collect();
    names.sort();
    for dir in names {
        println!("cargo:rerun-if-changed={}", dir.display());
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 schema name")
            .to_owned();
        for file in fs::read_dir(&dir).expect("readable schema folder") {
            let path = file.expect("readable schema file").path();
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let Some(version) = stem.strip_prefix('v').and_then(|v| v.parse::<u32>().ok()) else {
                panic!("schema file {} must be named v<N>.avsc", path.display());
            };
            entries.push((name.clone(), version, path));
        }
    }
    entries.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut out = String::from("/// Every schema file: (full name, version, JSON text).\n");
    out.push_str("pub(crate) static SCHEMA_FILES: &[(&str, u32, &str)] = &[\n");
    for (name, version, path) in entries {
        writeln!(
            out,
            "    ({name:?}, {version}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("write to string");
    }
    out.push_str("];\n");
    let dest = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("schema_files.rs");
    fs::write(dest, out).expect("write schema_files.rs");
}
