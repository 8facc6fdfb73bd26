//! Banned APIs in the simulator's sources: floating point, hash maps with random state and
//! the wall clock would make runs depend on something other than the seed. Only the CLI may
//! read the wall clock (to report speed) and format floating-point speeds.

use std::path::{Path, PathBuf};

const BANNED: &[&str] = &[
    "f32",
    "f64",
    "HashMap",
    "HashSet",
    "RandomState",
    "std::time",
    "SystemTime",
    "Instant::now",
    "thread_rng",
];

/// Files allowed to use some banned names, and which (the command line, by path from `src`).
const ALLOWED: &[(&str, &[&str])] = &[
    ("cli.rs", &["f64", "std::time", "Instant::now"]),
    (
        "cli/sweep.rs",
        &["f64", "std::time", "Instant::now", "SystemTime"],
    ),
    ("cli/compare.rs", &[]),
    ("cli/run.rs", &["f64", "std::time", "Instant::now"]),
];

fn code_part(line: &str) -> &str {
    let line = line.trim_start();
    if line.starts_with("//") {
        return "";
    }
    line.split("//").next().unwrap_or("")
}

fn is_word(text: &str, at: usize, len: usize) -> bool {
    let before = text[..at].chars().next_back();
    let after = text[at + len..].chars().next();
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    !ident(before) && !ident(after)
}

/// Every `.rs` file under `dir`, in path order.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn tidy_no_floats_hashmaps_or_wall_clock_in_simulation_paths() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for path in sources(&src) {
        let name = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let allowed = ALLOWED
            .iter()
            .find(|(f, _)| *f == name)
            .map_or(&[][..], |(_, a)| a);
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = code_part(line);
            for banned in BANNED.iter().filter(|b| !allowed.contains(b)) {
                if let Some(at) = code.find(banned)
                    && is_word(code, at, banned.len())
                {
                    found.push(format!("{name}:{}: `{banned}` in `{}`", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "banned APIs:\n{}", found.join("\n"));
}
