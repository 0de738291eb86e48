//! Architecture invariants, checked on the source text (as rust-analyzer's
//! tidy tests do). Each rule is one line in ARCHITECTURE.md; this is what
//! keeps them true.
//!
//! - Only `faztd/src/store/` names redb.
//! - No module below `http` imports it (http is the outermost serving layer).
//! - `control` is an edge adapter: only the daemon's lifecycle imports it.
//! - faztd's top-level modules import each other without cycles.
//! - `proto` depends on neither binary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the repository")
        .to_path_buf()
}

/// Every `.rs` file under `dir`, with its text.
fn rust_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no Rust files under {}", dir.display());
    out
}

/// The code of a file without its comments (so prose may name anything).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(n, line)| {
        let code = line.split("//").next().unwrap_or("");
        (!code.trim().is_empty()).then_some((n + 1, code))
    })
}

/// faztd's top-level module a file belongs to (`http/catalog.rs` → `http`).
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules a line refers to with `crate::NAME`.
fn crate_refs(code: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `fazt_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            for part in inner.split(',') {
                let name = part.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() {
                    refs.push(name.to_string());
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                refs.push(name);
            }
        }
    }
    refs
}

#[test]
fn only_the_store_names_redb() {
    let src = repo().join("faztd/src");
    let mut offenders = Vec::new();
    for (file, text) in rust_files(&src) {
        if file.starts_with(src.join("store")) {
            continue;
        }
        for (n, code) in code_lines(&text) {
            if code.contains("redb::") || code.trim_start().starts_with("use redb") {
                offenders.push(format!("{}:{n}: {}", file.display(), code.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "redb is named outside faztd/src/store/ (go through Store):\n{}",
        offenders.join("\n")
    );
    // The other crates do not even depend on it.
    for manifest in ["proto/Cargo.toml", "faztctl/Cargo.toml"] {
        let text = std::fs::read_to_string(repo().join(manifest)).unwrap();
        assert!(!text.contains("redb"), "{manifest} depends on redb");
    }
}

/// The import graph between faztd's top-level modules.
fn module_graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = repo().join("faztd/src");
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (file, text) in rust_files(&src) {
        let from = top_module(&src, &file);
        for (n, code) in code_lines(&text) {
            for to in crate_refs(code) {
                if to != from {
                    let at = format!("{}:{n}", file.strip_prefix(&src).unwrap().display());
                    graph
                        .entry(from.clone())
                        .or_default()
                        .entry(to)
                        .or_insert(at);
                }
            }
        }
    }
    graph
}

/// The edges of the daemon: they may import anything below them.
const EDGES: &[&str] = &["main", "lib", "daemon", "instance", "control", "http"];

#[test]
fn nothing_below_http_imports_it_and_only_the_lifecycle_imports_control() {
    let graph = module_graph();
    let mut offenders = Vec::new();
    for (from, tos) in &graph {
        for (to, at) in tos {
            let below_http = !EDGES.contains(&from.as_str());
            if to == "http" && below_http {
                offenders.push(format!("{from} imports http ({at})"));
            }
            if to == "control" && !["main", "lib", "daemon"].contains(&from.as_str()) {
                offenders.push(format!("{from} imports control ({at})"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "layering broken:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn faztd_modules_import_each_other_without_cycles() {
    let graph = module_graph();
    // A cycle exists iff some module reaches itself.
    let reach = |start: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.to_string()];
        while let Some(m) = stack.pop() {
            for next in graph.get(&m).into_iter().flat_map(|t| t.keys()) {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let mut cycles = Vec::new();
    for (from, tos) in &graph {
        for (to, at) in tos {
            if reach(to).contains(from) {
                cycles.push(format!(
                    "{from} -> {to} ({at}), and {to} leads back to {from}"
                ));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "faztd's modules import each other in a cycle:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn proto_depends_on_neither_binary() {
    let manifest = std::fs::read_to_string(repo().join("proto/Cargo.toml")).unwrap();
    for crate_name in ["faztd", "faztctl", "fazt-e2e", "warp", "rquickjs", "zbus"] {
        let dependency = manifest.lines().any(|l| {
            l.trim_start().starts_with(&format!("{crate_name} "))
                || l.trim_start().starts_with(&format!("{crate_name}="))
        });
        assert!(!dependency, "proto/Cargo.toml depends on {crate_name}");
    }
    for (file, text) in rust_files(&repo().join("proto/src")) {
        for (n, code) in code_lines(&text) {
            assert!(
                !code.contains("faztd::") && !code.contains("faztctl::"),
                "{}:{n} names a binary crate",
                file.display()
            );
        }
    }
}

#[test]
fn the_scanner_sees_imports() {
    assert_eq!(crate_refs("use crate::http::catalog::X;"), ["http"]);
    assert_eq!(
        crate_refs("use crate::{store, sites::SiteName};"),
        ["store", "sites"]
    );
    assert_eq!(
        crate_refs("let x = crate::realtime::f(crate::store::g());"),
        ["realtime", "store"]
    );
    assert!(crate_refs("fazt_crate::x").is_empty());
    let graph = module_graph();
    assert!(graph["daemon"].contains_key("store"), "{graph:?}");
}
