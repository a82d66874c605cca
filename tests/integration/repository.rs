//! The repository stands on its own: no tracked file names a path outside it, so a fresh clone
//! with nothing beside it builds, tests and runs.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// Text that looks like a path climbing out of a folder: a run of `..` and `/` then a name.
fn climbing_paths(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("../") {
        // The whole path: back to the start of the token, forward to its end.
        let before = &rest[..start];
        let token_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "._-/".contains(c)))
            .map_or(0, |i| i + 1);
        let after = &rest[start..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || "._-/".contains(c)))
            .unwrap_or(after.len());
        found.push(&rest[token_start..start + len]);
        rest = &rest[start + len.max(3)..];
    }
    found
}

/// Where `path` leads when read from `folder` (relative to the repository's root); `None` when
/// it leaves the repository.
fn resolve(folder: &Path, path: &str) -> Option<PathBuf> {
    let mut resolved: Vec<Component<'_>> = folder.components().collect();
    for part in Path::new(path).components() {
        match part {
            Component::ParentDir => {
                resolved.pop()?;
            }
            Component::Normal(_) => resolved.push(part),
            _ => {}
        }
    }
    Some(resolved.iter().collect())
}

/// Whether `path`, written in `file`, names something inside the repository. A path may be read
/// from the file's own folder (Rust's `include_str!`, links in Markdown, `path.resolve(HERE, …)`),
/// from the package the file belongs to (unit tests run there) or from the root (scripts and
/// integration tests run there); it is inside if one of those leads to a file or folder of the
/// repository (or to `target/`, which the build makes).
fn names_something_inside(root: &Path, file: &Path, path: &str) -> bool {
    let folder = file.parent().unwrap_or(Path::new(""));
    let package = folder
        .ancestors()
        .find(|dir| root.join(dir).join("Cargo.toml").exists())
        .unwrap_or(Path::new(""));
    [folder, package, Path::new("")].into_iter().any(|base| {
        resolve(base, path)
            .is_some_and(|inside| inside.starts_with("target") || root.join(&inside).exists())
    })
}

/// Hostile inputs that tests send on purpose (path traversal in a station id, a query, an
/// import file): they name nothing csm reads.
const ATTACKS: [&str; 2] = ["../etc/passwd", "../x"];

fn tracked_files(root: &Path) -> Vec<PathBuf> {
    let output = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .expect("git ls-files (the test reads the list of tracked files from git)");
    assert!(output.status.success(), "git ls-files failed");
    output
        .stdout
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
        .collect()
}

/// The repository's root: the folder above this crate's.
fn repository() -> &'static Path {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests.parent().unwrap_or(tests)
}

#[test]
fn no_tracked_file_refers_to_a_path_outside_the_repository() {
    let root = repository();
    let files = tracked_files(root);
    assert!(files.len() > 50, "git lists the repository's files");
    let mut outside = Vec::new();
    let mut read = 0;
    for file in &files {
        // Vendored front-end bundles and lock files are not ours to write paths into.
        let name = file.to_string_lossy();
        if name.contains("/vendor/") || name.ends_with(".lock") || name.ends_with("-lock.json") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue; // not text
        };
        read += 1;
        for (number, line) in text.lines().enumerate() {
            for path in climbing_paths(line) {
                if !ATTACKS.iter().any(|attack| path.ends_with(attack))
                    && !names_something_inside(root, file, path)
                {
                    outside.push(format!("{name}:{}: {path}", number + 1));
                }
            }
        }
    }
    assert!(read > 50, "read {read} tracked text files");
    assert!(
        outside.is_empty(),
        "tracked files refer to paths outside the repository (a fresh clone has nothing beside it; copy what is needed inside):\n{}",
        outside.join("\n")
    );
}

#[test]
fn the_check_recognises_paths_that_leave_the_repository() {
    // Written as `..` + `/` so that this file holds no such path itself.
    let up = |levels: usize, rest: &str| format!("{}{rest}", "../".repeat(levels));
    let line = format!(
        "read(\"{}\") or {}",
        up(1, "shared/fixtures/a.json"),
        up(2, "x")
    );
    assert_eq!(
        climbing_paths(&line),
        [up(1, "shared/fixtures/a.json"), up(2, "x")]
    );
    let root = repository();
    let test = Path::new("tests/integration/repository.rs");
    for outside in [
        up(1, "shared/fixtures/vendors"),
        up(3, "shared"),
        up(1, "fixtures/nothing.json"),
    ] {
        assert!(!names_something_inside(root, test, &outside), "{outside}");
    }
    for inside in [
        "../fixtures/vendors/README.md",
        "../../README.md",
        "../../target/e2e",
    ] {
        assert!(names_something_inside(root, test, inside), "{inside}");
    }
    assert_eq!(resolve(Path::new("a"), &up(2, "b")), None);
}
