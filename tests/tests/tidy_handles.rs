//! No forged handles: outside tests a handle comes from the runtime (a spawn's result, the
//! isolate's own handle, a message's source, a name). The raw constructors exist only with
//! tina-core's `testing` feature, and no example, scenario, benchmark, driver or document
//! builds a handle from raw parts (unit-test modules at the end of a file excepted).

use std::path::{Path, PathBuf};

/// Split so this file does not match itself.
const FORGERS: [&str; 2] = [
    concat!("Handle::", "new("),
    concat!("Handle::", "from_bits("),
];

/// Where no handle may be forged (from the workspace root).
const CHECKED: &[&str] = &[
    "README.md",
    "docs",
    "examples",
    "bench/src",
    "tina-sim/src",
    "tina-linux/src",
    "tina-baremetal/src",
    "tina-baremetal/tests",
    "tina-baremetal/qemu/src",
    "tests/tests",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .expect("a readable directory")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for e in entries {
            if e.file_name().is_some_and(|n| n != "target") {
                files(&e, out);
            }
        }
    } else if path.extension().is_some_and(|e| e == "rs" || e == "md") {
        out.push(path.to_path_buf());
    }
}

/// The part of a source file before its unit-test module (all of a document).
fn checked_part(path: &Path, text: &str) -> String {
    if path.extension().is_some_and(|e| e == "md") {
        return text.to_string();
    }
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_example_scenario_benchmark_driver_or_document_forges_a_handle() {
    let root = root();
    let mut all = Vec::new();
    for c in CHECKED {
        files(&root.join(c), &mut all);
    }
    assert!(
        all.len() > 50,
        "only {} files found under {root:?}",
        all.len()
    );
    let mut found = Vec::new();
    for f in &all {
        let text = std::fs::read_to_string(f).expect("a readable file");
        let part = checked_part(f, &text);
        for (n, line) in part.lines().enumerate() {
            if FORGERS.iter().any(|p| line.contains(p)) {
                found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "handles built from raw parts (use a name, a spawn result or a message's source):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_raw_handle_constructors_exist_only_with_the_testing_feature() {
    let path = root().join("tina-core/src/model/handle.rs");
    let text = std::fs::read_to_string(&path).expect("handle.rs");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for signature in ["pub const fn new(", "pub const fn from_bits("] {
        let at = lines
            .iter()
            .position(|l| l.starts_with(signature))
            .unwrap_or_else(|| panic!("no `{signature}` in {path:?}"));
        assert_eq!(
            lines[at - 1],
            r#"#[cfg(any(test, feature = "testing"))]"#,
            "`{signature}` must be gated on the testing feature"
        );
    }
}
