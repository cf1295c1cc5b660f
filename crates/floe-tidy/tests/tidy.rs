//! The workspace keeps its rules: see `floe_tidy`'s module docs. Each failure names the file
//! or crate and says what to do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use floe_tidy::{
    ACYCLIC_CRATES, LONG_FUNCTION_LINES, LONG_TEST_LINES, MAX_FILE_LINES, Manifest,
    dependency_violations, functions, module_cycle, module_refs, parse_manifest,
};

/// Functions over `LONG_FUNCTION_LINES` lines in non-test code. A ratchet: it may only go
/// down. When you shorten one, lower this number to what the test prints.
const LONG_FUNCTIONS: usize = 44;

/// Test files allowed over `MAX_FILE_LINES` (as long as they are today, no longer); split
/// them into scenario files when you touch them.
/// (Empty since the fault suite and the ledger API tests became a file per scenario.)
const LONG_TEST_FILES: &[(&str, usize)] = &[];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn members() -> Vec<PathBuf> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).expect("the root manifest");
    let table: toml::Table = text.parse().expect("the root manifest is TOML");
    table["workspace"]["members"]
        .as_array()
        .expect("workspace.members is a list")
        .iter()
        .filter_map(|m| m.as_str())
        .map(|m| root().join(m))
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn relative(path: &Path) -> String {
    let root = root().canonicalize().expect("the workspace root exists");
    let path = path.canonicalize().expect("a file just listed exists");
    path.strip_prefix(&root)
        .map_or_else(|_| path.display().to_string(), |p| p.display().to_string())
}

#[test]
fn dependencies_point_down_the_layers_and_every_crate_takes_the_workspace_lints() {
    let manifests: Vec<Manifest> = members()
        .iter()
        .map(|dir| {
            let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            parse_manifest(&text).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        })
        .collect();
    let violations = dependency_violations(&manifests);
    assert!(
        violations.is_empty(),
        "dependency rules broken:\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn source_files_stay_short() {
    let mut too_long = Vec::new();
    for dir in members() {
        for sub in ["src", "tests", "benches"] {
            let mut files = Vec::new();
            rust_files(&dir.join(sub), &mut files);
            for file in files {
                let lines = std::fs::read_to_string(&file).unwrap().lines().count();
                let name = relative(&file);
                let allowed = LONG_TEST_FILES
                    .iter()
                    .find(|(f, _)| *f == name)
                    .map_or(MAX_FILE_LINES, |(_, n)| *n);
                if lines > allowed {
                    too_long.push(format!("{name}: {lines} lines (at most {allowed})"));
                }
            }
        }
    }
    assert!(
        too_long.is_empty(),
        "split these files by concern:\n  {}",
        too_long.join("\n  ")
    );
}

/// Every function of `files` over `limit` lines, as `path:line name (N lines)`.
fn longer_than(files: &[PathBuf], limit: usize) -> Vec<String> {
    let mut long = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(file).unwrap();
        for f in functions(&source) {
            if f.lines > limit {
                long.push(format!(
                    "{}:{} {} ({} lines)",
                    relative(file),
                    f.line,
                    f.name,
                    f.lines
                ));
            }
        }
    }
    long
}

#[test]
fn long_functions_only_get_fewer() {
    let mut long = Vec::new();
    for dir in members() {
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        // Test modules kept in files of their own are tests too.
        let src = dir.join("src");
        files.retain(|f| {
            let inner = f.strip_prefix(&src).unwrap_or(f);
            !(inner.components().any(|c| c.as_os_str() == "tests") || f.ends_with("tests.rs"))
        });
        long.extend(longer_than(&files, LONG_FUNCTION_LINES));
    }
    println!(
        "functions over {LONG_FUNCTION_LINES} lines ({}):\n  {}",
        long.len(),
        long.join("\n  ")
    );
    assert!(
        long.len() <= LONG_FUNCTIONS,
        "{} functions over {LONG_FUNCTION_LINES} lines, the ratchet allows {LONG_FUNCTIONS}: \
         split the new ones (listed above)",
        long.len()
    );
    assert!(
        long.len() == LONG_FUNCTIONS,
        "only {} functions over {LONG_FUNCTION_LINES} lines now: lower LONG_FUNCTIONS in \
         {} to {} so the ratchet holds the gain",
        long.len(),
        file!(),
        long.len()
    );
}

#[test]
fn no_test_function_is_long() {
    let mut long = Vec::new();
    for dir in members() {
        let mut files = Vec::new();
        rust_files(&dir.join("tests"), &mut files);
        long.extend(longer_than(&files, LONG_TEST_LINES));
    }
    assert!(
        long.is_empty(),
        "{} test functions over {LONG_TEST_LINES} lines: split each into a short list of \
         named steps (see crates/floe-cli/tests/client_cli.rs):\n  {}",
        long.len(),
        long.join("\n  ")
    );
}

#[test]
fn modules_within_a_crate_refer_to_each_other_without_a_circle() {
    for name in ACYCLIC_CRATES {
        let src = root().join("crates").join(name).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in files {
            let inner = file.strip_prefix(&src).unwrap();
            let first = inner
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "lib" || module == "main" {
                continue;
            }
            let source = std::fs::read_to_string(&file).unwrap();
            graph
                .entry(module)
                .or_default()
                .extend(module_refs(&source));
        }
        if let Some(cycle) = module_cycle(&graph) {
            panic!(
                "{name}: its modules refer to each other in a circle: {} (move the shared \
                 part into a lower module)",
                cycle.join(" -> ")
            );
        }
    }
}
