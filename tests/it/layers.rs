//! The crate's architecture, checked: folders are layers, imports only point
//! down, no two modules depend on each other (directly or through others),
//! references to other modules are `use` lines, git command lines are built
//! only under `src/git/`, and only `src/cli/` reads the environment. docs/architecture.md explains the layers.
//!
//! `cargo test --test it layers -- --nocapture` prints the module graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers from the top; a module may use modules of its own folder (without
/// cycles) and of any folder of a lower rank. Folders of equal rank are
/// peers and use nothing of each other.
const LAYERS: &[(&str, u8)] =
    &[("cli", 7), ("action", 6), ("service", 6), ("flow", 5), ("engine", 4), ("github", 3), ("git", 3), ("core", 1)];

fn rank(module: &str) -> Option<u8> {
    let top = module.split("::").next()?;
    LAYERS.iter().find(|(name, _)| *name == top).map(|(_, rank)| *rank)
}

/// Every source file of the library as its module path (`engine::stack`;
/// a folder's `mod.rs` is the folder), leaving out `lib.rs`, `main.rs` and
/// `*_tests.rs` files (test code is not architecture).
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let rel = rel.to_string_lossy().replace('/', "::");
            if path.extension().is_none_or(|ext| ext != "rs")
                || rel == "lib"
                || rel == "main"
                || rel.ends_with("_tests")
            {
                continue;
            }
            found.insert(rel.strip_suffix("::mod").unwrap_or(&rel).to_string(), path);
        }
    }
    found
}

/// The code of a file without its tests, comments and string contents.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(cut) => &text[..cut],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if in_string => {
                    chars.next();
                }
                '"' => {
                    in_string = !in_string;
                    out.push('"');
                }
                '/' if !in_string && chars.peek() == Some(&'/') => break,
                _ if in_string => {}
                _ => out.push(c),
            }
        }
        out.push('\n');
    }
    out
}

/// Paths after `crate::` or `super::` in `text`, as segment lists, with
/// `use` groups (`super::{a, b::c}`) expanded.
fn paths(text: &str, root: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let needle = format!("{root}::");
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let boundary = rest[..at].chars().last().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        rest = &rest[at + needle.len()..];
        if !boundary {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find("};").unwrap_or(group.len());
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(segments(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
        } else {
            found.push(segments(rest));
        }
    }
    found.retain(|segs| !segs.is_empty());
    found
}

fn segments(text: &str) -> Vec<String> {
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let path: String = text.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
    path.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// The longest known module that `segs` starts with.
fn target(known: &BTreeMap<String, PathBuf>, segs: &[String]) -> Option<String> {
    (1..=segs.len()).rev().map(|n| segs[..n].join("::")).find(|name| known.contains_key(name))
}

struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
    /// `file: path` for each `crate::` path outside a `use` line.
    inline: Vec<String>,
    /// `file: line` for each git command line built outside `src/git/`.
    git_lines: Vec<String>,
    /// `file: line` for each read of the environment outside `src/cli/`
    /// (`std::env`, or the captured `core::env::Env` passed below the CLI).
    env_reads: Vec<String>,
}

fn graph(src: &Path) -> Graph {
    let known = modules(src);
    let mut graph = Graph { edges: BTreeMap::new(), inline: Vec::new(), git_lines: Vec::new(), env_reads: Vec::new() };
    for (module, path) in &known {
        let text = std::fs::read_to_string(path).unwrap();
        let code = code(&text);
        // `super` of `engine/stack.rs` and of `engine/mod.rs` alike: one up from the module.
        let own: Vec<String> = module.split("::").map(str::to_string).collect();
        let parent = own[..own.len() - 1].to_vec();
        let mut outside_use = String::new();
        let mut in_use = false;
        for line in code.lines() {
            let trimmed = line.trim_start();
            let starts_use =
                ["use ", "pub use ", "pub(crate) use ", "pub(super) use "].iter().any(|p| trimmed.starts_with(p));
            if starts_use || in_use {
                in_use = !trimmed.trim_end().ends_with(';');
                continue;
            }
            outside_use.push_str(line);
            outside_use.push('\n');
        }
        let mut targets: Vec<Vec<String>> = paths(&code, "crate");
        for segs in paths(&code, "super") {
            targets.push(parent.iter().cloned().chain(segs).collect());
        }
        for segs in paths(&outside_use, "crate") {
            graph.inline.push(format!("{}: crate::{}", path.display(), segs.join("::")));
        }
        for segs in targets {
            if let Some(to) = target(&known, &segs) {
                if to != *module && !to.starts_with(&format!("{module}::")) {
                    graph.edges.entry(module.clone()).or_default().insert(to);
                }
            }
        }
        if !module.starts_with("cli") && !module.starts_with("core::env") {
            for (n, line) in code.lines().enumerate() {
                if ["std::env::", "use std::env", "core::env::Env"].iter().any(|needle| line.contains(needle)) {
                    graph.env_reads.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
        if !module.starts_with("git") {
            for (n, line) in text.lines().enumerate() {
                if ["Command::new(\"git\")", ".run(&[", ".run_bytes(&["].iter().any(|needle| line.contains(needle)) {
                    graph.git_lines.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(walk: &mut Walk<'a>, node: &'a str) {
        let n = walk.index.len();
        walk.index.insert(node, n);
        walk.low.insert(node, n);
        walk.stack.push(node);
        for next in walk.edges.get(node).into_iter().flatten() {
            if !walk.index.contains_key(next.as_str()) {
                visit(walk, next);
                let low = walk.low[node].min(walk.low[next.as_str()]);
                walk.low.insert(node, low);
            } else if walk.stack.contains(&next.as_str()) {
                let low = walk.low[node].min(walk.index[next.as_str()]);
                walk.low.insert(node, low);
            }
        }
        if walk.low[node] == walk.index[node] {
            let at = walk.stack.iter().rposition(|m| *m == node).unwrap();
            let component: Vec<String> = walk.stack.drain(at..).map(str::to_string).collect();
            if component.len() > 1 {
                walk.found.push(component);
            }
        }
    }
    let mut walk = Walk { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for node in edges.keys() {
        if !walk.index.contains_key(node.as_str()) {
            visit(&mut walk, node);
        }
    }
    walk.found
}

#[test]
fn imports_point_down_and_never_in_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    let mut problems = Vec::new();
    for (from, tos) in &graph.edges {
        println!("{from} -> {}", tos.iter().cloned().collect::<Vec<_>>().join(", "));
        for to in tos {
            let same_folder = from.split("::").next() == to.split("::").next();
            match (rank(from), rank(to)) {
                (Some(a), Some(b)) if same_folder || a > b => {}
                (None, _) | (_, None) => problems.push(format!("{from} -> {to}: a module outside the layers")),
                _ => problems.push(format!("{from} -> {to}: points up or across to a peer layer")),
            }
        }
    }
    for cycle in cycles(&graph.edges) {
        problems.push(format!("cycle: {}", cycle.join(" -> ")));
    }
    problems.extend(graph.inline.iter().map(|place| format!("inline path, not a use line: {place}")));
    problems.extend(graph.git_lines.iter().map(|place| format!("git command line outside src/git: {place}")));
    problems.extend(graph.env_reads.iter().map(|place| format!("the environment read outside src/cli: {place}")));
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_checker_finds_cycles_upward_edges_and_inline_paths() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    for folder in ["engine", "flow", "core"] {
        std::fs::create_dir_all(src.join(folder)).unwrap();
    }
    let write = |path: &str, text: &str| std::fs::write(src.join(path), text).unwrap();
    write("engine/mod.rs", "pub mod a;\npub mod b;\n");
    write("engine/a.rs", "use crate::engine::b::B;\nuse crate::flow::x::X;\npub struct A;\n");
    write("engine/b.rs", "use super::a::A;\npub struct B;\nfn f() { crate::core::y::g(); }\n");
    write("flow/mod.rs", "pub mod x;\n");
    write("flow/x.rs", "pub struct X;\nfn run() { std::process::Command::new(\"git\"); std::env::var(\"HOME\"); }\n");
    write("core/mod.rs", "pub mod y;\n");
    write(
        "core/y.rs",
        "// use crate::flow::x::X; (a comment)\npub fn g() {}\n#[cfg(test)]\nmod tests { use crate::flow::x::X; }\n",
    );
    let graph = graph(src);
    assert!(graph.edges["engine::a"].contains("flow::x"));
    assert!(!graph.edges.contains_key("core::y"), "comments and tests are not edges: {:?}", graph.edges);
    let found = cycles(&graph.edges);
    assert_eq!(found.len(), 1);
    let mut cycle = found[0].clone();
    cycle.sort();
    assert_eq!(cycle, ["engine::a", "engine::b"]);
    assert_eq!(graph.inline.len(), 1);
    assert!(graph.inline[0].ends_with("crate::core::y::g"), "{:?}", graph.inline);
    assert_eq!(graph.git_lines.len(), 1);
    assert_eq!(graph.env_reads.len(), 1, "{:?}", graph.env_reads);
}
