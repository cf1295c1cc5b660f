//! Policy as code. The rules the team keeps by habit elsewhere are checked here by a test
//! (`tests/tidy.rs`), so a change that breaks one fails CI with a message naming the place:
//!
//! * **Dependency direction.** Every workspace crate sits in a layer ([`LAYERS`]); a crate
//!   depends only on crates of its own or lower layers, and the pure core (encoding, crypto, the
//!   ledger's state machine) depends on no runtime, network client or storage engine
//!   ([`FORBIDDEN_IN_CORE`]).
//! * **Size.** No source file over [`MAX_FILE_LINES`] lines; functions over
//!   [`LONG_FUNCTION_LINES`] lines are counted against a ratchet that may only go down; no
//!   integration-test function is over [`LONG_TEST_LINES`] (a long scenario reads as a short
//!   list of named steps instead).
//! * **Lints.** Every crate opts into the workspace's `[workspace.lints]`.
//! * **No circles inside a crate.** The top-level modules of each crate named in
//!   [`ACYCLIC_CRATES`] refer to each other (`crate::module`) without a cycle, so the crate
//!   reads bottom-up ([`module_cycle`]).
//!
//! The checks are plain functions over text, so they are tested here on small inputs.

use std::collections::BTreeMap;

/// Layers of the workspace, lowest first. A crate may depend on crates of its own layer or
/// lower ones; a new crate must be placed here before the tidy test passes.
pub const LAYERS: &[(&str, &[&str])] = &[
    ("pure core", &["floe-core", "floe-crypto", "floe-ledger"]),
    (
        "I/O libraries",
        &[
            "floe-log",
            "floe-http",
            "floe-node-storage",
            "floe-ledger-client",
            "floe-node-client",
            "floe-ledger-etcd",
            "floe-tls",
        ],
    ),
    (
        "services",
        &[
            "floe-ledger-service",
            "floe-node",
            "floe-client",
            "floe-dashboard",
            "floe-daemon",
        ],
    ),
    ("assembly", &["floe-testbed", "floe-bench"]),
    (
        "binary and tooling",
        &["floe-cli", "floe-tidy", "floe-test-support"],
    ),
];

/// Crates the pure core must not depend on: it does no I/O and runs no tasks.
pub const FORBIDDEN_IN_CORE: &[&str] = &[
    "tokio",
    "reqwest",
    "axum",
    "hyper",
    "fjall",
    "etcd-client",
    "tonic",
];

/// Crates whose top-level modules must not refer to each other in a circle.
pub const ACYCLIC_CRATES: &[&str] = &["floe-node"];

/// The top-level modules that `source` refers to by `crate::name`.
pub fn module_refs(source: &str) -> std::collections::BTreeSet<String> {
    let mut refs = std::collections::BTreeSet::new();
    let mut rest = source;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let before = rest[..i].chars().last();
        // `floe_crate::…` or `$crate::…` is not this crate's path.
        if !name.is_empty()
            && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        {
            refs.insert(name);
        }
        rest = after;
    }
    refs
}

/// A cycle among modules, given each module's references to the others (references to names
/// that are not modules, such as re-exported items, are ignored); `None` if there is none.
pub fn module_cycle(
    graph: &BTreeMap<String, std::collections::BTreeSet<String>>,
) -> Option<Vec<String>> {
    // Depth-first search with colours: 1 = on the stack, 2 = done.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, std::collections::BTreeSet<String>>,
        colour: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        colour.insert(m.to_string(), 1);
        stack.push(m.to_string());
        for next in graph.get(m).into_iter().flatten() {
            if next == m || !graph.contains_key(next) {
                continue;
            }
            match colour.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|s| s == next).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(next, graph, colour, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        colour.insert(m.to_string(), 2);
        None
    }
    let mut colour = BTreeMap::new();
    for m in graph.keys() {
        if colour.get(m).copied().unwrap_or(0) == 0
            && let Some(c) = visit(m, graph, &mut colour, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// The longest a source file may be.
pub const MAX_FILE_LINES: usize = 800;

/// A function longer than this is counted by the ratchet.
pub const LONG_FUNCTION_LINES: usize = 70;

/// The longest an integration-test function (under a crate's `tests/`) may be.
pub const LONG_TEST_LINES: usize = 150;

/// The layer index of workspace crate `name`, if it is placed.
pub fn layer_of(name: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, crates)| crates.contains(&name))
}

/// What one crate's manifest says that the rules look at.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    /// Normal (not dev or build) dependencies, by the name the package has on its registry.
    pub dependencies: Vec<String>,
    /// Whether `[lints] workspace = true` is set.
    pub workspace_lints: bool,
}

/// Parse the parts of a `Cargo.toml` the rules need.
pub fn parse_manifest(text: &str) -> Result<Manifest, String> {
    let value: toml::Table = text.parse().map_err(|e| format!("not TOML: {e}"))?;
    let name = value
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or("no package.name")?
        .to_string();
    let mut dependencies = Vec::new();
    if let Some(deps) = value.get("dependencies").and_then(|d| d.as_table()) {
        for (key, spec) in deps {
            // `foo = { package = "bar" }` depends on bar.
            let package = spec.get("package").and_then(|p| p.as_str()).unwrap_or(key);
            dependencies.push(package.to_string());
        }
    }
    let workspace_lints = value
        .get("lints")
        .and_then(|l| l.get("workspace"))
        .and_then(|w| w.as_bool())
        == Some(true);
    Ok(Manifest {
        name,
        dependencies,
        workspace_lints,
    })
}

/// Every broken rule of dependency direction and lint opt-in among `manifests`, one line each.
pub fn dependency_violations(manifests: &[Manifest]) -> Vec<String> {
    let workspace: BTreeMap<&str, &Manifest> =
        manifests.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut out = Vec::new();
    for m in manifests {
        if !m.workspace_lints {
            out.push(format!(
                "{}: add `[lints]\\nworkspace = true` to its Cargo.toml",
                m.name
            ));
        }
        let Some(layer) = layer_of(&m.name) else {
            out.push(format!(
                "{}: not placed in a layer; add it to floe_tidy::LAYERS",
                m.name
            ));
            continue;
        };
        for dep in &m.dependencies {
            if layer == 0 && FORBIDDEN_IN_CORE.contains(&dep.as_str()) {
                out.push(format!(
                    "{}: the pure core must not depend on {dep} (no I/O, no runtime)",
                    m.name
                ));
            }
            if !workspace.contains_key(dep.as_str()) {
                continue;
            }
            match layer_of(dep) {
                Some(l) if l > layer => out.push(format!(
                    "{} ({}) depends on {dep} ({}): dependencies point down the layers",
                    m.name, LAYERS[layer].0, LAYERS[l].0
                )),
                _ => {}
            }
        }
    }
    out
}

/// A function found in a source file.
#[derive(Debug, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// 1-based line of its `fn`.
    pub line: usize,
    /// Lines from its `fn` to its closing brace.
    pub lines: usize,
}

/// The functions with bodies in rustfmt-formatted `source`, outside `#[cfg(test)]` items at
/// the top level (tests may be as long as their scenario). A body ends at the first line that
/// is a closing brace at the indentation of its `fn` line.
pub fn functions(source: &str) -> Vec<Function> {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim_end() == "#[cfg(test)]" {
            // Skip the test item that follows: up to its closing brace at column 0.
            i += 1;
            while i < lines.len() && lines[i] != "}" {
                i += 1;
            }
            i += 1;
            continue;
        }
        if let Some(name) = fn_name(line) {
            let indent = line.len() - line.trim_start().len();
            if let Some(end) = body_end(&lines, i, indent) {
                out.push(Function {
                    name,
                    line: i + 1,
                    lines: end - i + 1,
                });
            }
        }
        i += 1;
    }
    out
}

/// The name of the function a line declares, if it does.
fn fn_name(line: &str) -> Option<String> {
    let mut rest = line.trim_start();
    if rest.starts_with("//") {
        return None;
    }
    if let Some(r) = rest.strip_prefix("pub") {
        rest = match r.strip_prefix('(') {
            Some(r) => r.split_once(") ")?.1,
            None => r.strip_prefix(' ')?,
        };
    }
    for qualifier in ["const ", "async ", "unsafe ", "extern \"C\" "] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some(rest[..end].to_string())
}

/// Index of the line closing the body of the `fn` at `start`, or `None` for a declaration
/// without a body.
fn body_end(lines: &[&str], start: usize, indent: usize) -> Option<usize> {
    let mut i = start;
    // The signature: up to the line that opens the body (or ends the declaration).
    loop {
        let t = lines.get(i)?.trim_end();
        if t.ends_with(';') && !t.contains('{') {
            return None;
        }
        if t.contains('{') {
            if t.ends_with('}') && i == start {
                return Some(i);
            }
            if t.ends_with('{') || t.ends_with("{}") {
                break;
            }
        }
        i += 1;
    }
    if lines[i].trim_end().ends_with("{}") {
        return Some(i);
    }
    let closing = format!("{}}}", " ".repeat(indent));
    (i + 1..lines.len()).find(|&j| lines[j].trim_end() == closing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_found_with_their_lengths_and_test_modules_are_skipped() {
        let src = "\
pub fn a() {
    let x = 1;
}
pub(crate) async fn b(
    x: u8,
) -> u8 {
    x
}
fn one() -> u8 { 1 }
trait T {
    fn declared(&self);
    fn defaulted(&self) {}
}
// fn commented() {
#[cfg(test)]
mod tests {
    fn long_test() {
    }
}
";
        let found = functions(src);
        let summary: Vec<(&str, usize, usize)> = found
            .iter()
            .map(|f| (f.name.as_str(), f.line, f.lines))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", 1, 3),
                ("b", 4, 5),
                ("one", 9, 1),
                ("defaulted", 12, 1)
            ]
        );
    }

    #[test]
    fn module_references_and_cycles_are_found() {
        let refs = module_refs(
            "use crate::node::X;\nlet y = crate::view::f();\nfloe_crate::z; $crate::w;",
        );
        assert_eq!(
            refs.into_iter().collect::<Vec<_>>(),
            vec!["node".to_string(), "view".to_string()]
        );
        let g =
            |edges: &[(&str, &[&str])]| -> BTreeMap<String, std::collections::BTreeSet<String>> {
                edges
                    .iter()
                    .map(|(m, to)| (m.to_string(), to.iter().map(|t| t.to_string()).collect()))
                    .collect()
            };
        let layered = g(&[
            ("node", &["view", "Item"]),
            ("view", &[]),
            ("api", &["node", "view"]),
        ]);
        assert_eq!(module_cycle(&layered), None);
        let circle = g(&[
            ("node", &["epoch"]),
            ("epoch", &["view", "node"]),
            ("view", &[]),
        ]);
        assert_eq!(
            module_cycle(&circle),
            Some(vec!["epoch".into(), "node".into(), "epoch".into()])
        );
    }

    #[test]
    fn manifests_are_read_and_layers_are_enforced() {
        let core = parse_manifest(
            "[package]\nname = \"floe-core\"\n[dependencies]\ntokio.workspace = true\n\
             [lints]\nworkspace = true\n",
        )
        .unwrap();
        assert_eq!(core.dependencies, vec!["tokio"]);
        assert!(core.workspace_lints);
        let renamed = parse_manifest(
            "[package]\nname = \"floe-crypto\"\n[dependencies]\n\
             n = { package = \"floe-node\", path = \"x\" }\n",
        )
        .unwrap();
        assert_eq!(renamed.dependencies, vec!["floe-node"]);
        let node = Manifest {
            name: "floe-node".into(),
            dependencies: vec!["floe-core".into()],
            workspace_lints: true,
        };
        let stranger = Manifest {
            name: "floe-new".into(),
            dependencies: vec![],
            workspace_lints: true,
        };
        let v = dependency_violations(&[core, renamed, node, stranger]);
        assert_eq!(v.len(), 4, "{v:#?}");
        assert!(v[0].contains("floe-core: the pure core must not depend on tokio"));
        assert!(v[1].contains("floe-crypto: add `[lints]"));
        assert!(v[2].contains("floe-crypto (pure core) depends on floe-node (services)"));
        assert!(v[3].contains("floe-new: not placed in a layer"));
    }
}
