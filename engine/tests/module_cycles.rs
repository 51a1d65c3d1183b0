//! The engine's modules import each other one way only: no file of `engine/src` reaches,
//! through `crate::` and `super::` paths outside `#[cfg(test)]`, back to itself. Read from
//! the sources at file level (comments and test modules left out), so a new arrow that
//! closes a loop fails here with the loop's files named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path (`["desk", "venue"]`) for each source file of the library.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(src).unwrap();
            if rel.starts_with("bin") {
                continue; // the binary is its own crate
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let mut segments: Vec<String> =
                rel.with_extension("").iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
                segments.pop();
            }
            out.insert(segments, path);
        }
    }
    out
}

/// The text without comments, string literals' contents or `#[cfg(test)]` items.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut pending_test = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        let line = line.split(" //").next().unwrap_or("");
        if trimmed.starts_with("#[cfg(test)]") {
            pending_test = true;
            continue;
        }
        if pending_test && skip_depth.is_none() && line.contains('{') {
            skip_depth = Some(depth);
        } else if pending_test && skip_depth.is_none() && line.trim_end().ends_with(';') {
            pending_test = false; // a one-line item (`use …;`)
            continue;
        }
        for c in line.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if let Some(at) = skip_depth {
            if depth <= at {
                skip_depth = None;
                pending_test = false;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every path a `crate::…`, `super::…` or `self::…` expression names, braces expanded; a
/// path that starts with a bare name (`plan::x`, `use port::{…}`) is kept as `self::…`:
/// it names a child module when one of that name exists.
fn paths(code: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = code[at..].find("::") {
        let end = at + i;
        at = end + 2;
        let start = code[..end].rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |j| j + 1);
        let before = start.checked_sub(1).map(|j| bytes[j] as char);
        if start == end || before == Some(':') {
            continue; // not the start of a path (`a::b::c` is read from `a`)
        }
        let first = &code[start..end];
        let mut prefix = match first {
            "crate" | "super" | "self" => vec![first.to_string()],
            _ if first.starts_with(|c: char| c.is_ascii_lowercase()) => vec!["self".to_string()],
            _ => continue,
        };
        let mut rest = if prefix[0] == "self" && first != "self" { &code[start..] } else { &code[at..] };
        while let Some(r) = rest.strip_prefix("super::") {
            prefix.push("super".into());
            rest = r;
        }
        for tail in expand(rest) {
            let mut full = prefix.clone();
            full.extend(tail);
            out.push(full);
        }
    }
    out
}

/// The paths at the start of `text` (`a::b`, `a::{b, c::d}`), as segment lists.
fn expand(text: &str) -> Vec<Vec<String>> {
    let ident: String = text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if text.starts_with('{') {
        let mut depth = 0;
        let mut end = 0;
        for (i, c) in text.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let inner = &text[1..end];
        let mut items = Vec::new();
        let (mut d, mut last) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => d += 1,
                '}' => d -= 1,
                ',' if d == 0 => {
                    items.push(&inner[last..i]);
                    last = i + 1;
                }
                _ => {}
            }
        }
        items.push(&inner[last..]);
        return items.into_iter().flat_map(|item| expand(item.trim())).collect();
    }
    if ident.is_empty() {
        return vec![Vec::new()];
    }
    let after = &text[ident.len()..];
    match after.strip_prefix("::") {
        Some(rest) => expand(rest)
            .into_iter()
            .map(|mut t| {
                t.insert(0, ident.clone());
                t
            })
            .collect(),
        None => vec![vec![ident]],
    }
}

/// The module a path lands in: its longest prefix that is a module of the crate.
fn resolve(own: &[String], path: &[String], known: &BTreeMap<Vec<String>, PathBuf>) -> Option<Vec<String>> {
    let mut segments = path.iter().peekable();
    let mut current: Vec<String> = match segments.next().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("self") => own.to_vec(),
        // `super` of module a::b (`a/b.rs` or `a/b/mod.rs`) is `a`.
        Some("super") => own[..own.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    while segments.peek().is_some_and(|s| *s == "super") {
        segments.next();
        current.pop();
    }
    let mut best = (!current.is_empty() && known.contains_key(&current)).then(|| current.clone());
    for s in segments {
        current.push(s.clone());
        if known.contains_key(&current) {
            best = Some(current.clone());
        }
    }
    best
}

/// The strongly connected components of more than one file (Tarjan).
fn cycles(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        graph: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        next: usize,
        found: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Vec<String>) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let Some((w, _)) = s.graph.get_key_value(w) else { continue };
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[w].min(s.low[v]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.index[w].min(s.low[v]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

/// The import graph of the library's files: module → modules it names.
fn graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let known = modules(src);
    let mut graph = BTreeMap::new();
    for (module, file) in &known {
        let text = std::fs::read_to_string(file).unwrap();
        let targets: BTreeSet<Vec<String>> = paths(&code(&text))
            .into_iter()
            .filter_map(|p| resolve(module, &p, &known))
            .filter(|t| t != module)
            .collect();
        graph.insert(module.clone(), targets);
    }
    graph
}

#[test]
fn no_engine_module_imports_itself_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(graph.len() > 40, "read {} modules: is the source walk broken?", graph.len());
    let found = cycles(&graph);
    let names: Vec<String> =
        found.iter().map(|c| c.iter().map(|m| m.join("::")).collect::<Vec<_>>().join(" → ")).collect();
    assert!(found.is_empty(), "import cycles between engine modules:\n{}", names.join("\n"));
}

#[test]
fn the_reader_sees_a_cycle_when_there_is_one() {
    // Two files that import each other, one through a brace group, one through `super`,
    // plus a test module whose import must not count.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod c;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "pub mod b;\nuse crate::{c::Thing, a::b};\n").unwrap();
    std::fs::write(src.join("a/b.rs"), "// crate::c in a comment\nfn f() {}\n").unwrap();
    std::fs::write(
        src.join("c.rs"),
        "pub struct Thing;\nfn g() { let _ = crate::a::b::f; }\n#[cfg(test)]\nmod tests {\n    use crate::a::b;\n}\n",
    )
    .unwrap();
    let g = graph(src);
    let (a, b, c) = (vec!["a".to_string()], vec!["a".to_string(), "b".to_string()], vec!["c".to_string()]);
    assert!(g[&a].contains(&c) && g[&a].contains(&b), "{g:?}");
    assert!(g[&c].contains(&b) && !g[&c].contains(&a), "{g:?}");
    assert!(g[&b].is_empty(), "a comment is not an import: {g:?}");
    assert!(cycles(&g).is_empty());
    std::fs::write(src.join("a/b.rs"), "fn f() { super::super::c::Thing; }\n").unwrap();
    let found = cycles(&graph(src));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].len(), 2, "b → c → b: {found:?}");
    // A parent that calls into its child by the child's bare name, and a child that reaches
    // back up with `super::`, make a cycle too.
    std::fs::write(src.join("a/b.rs"), "fn f() {}\n").unwrap();
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod c;\npub mod d;\n").unwrap();
    std::fs::write(src.join("d/mod.rs"), "pub mod e;\nfn f() { e::g(); std::mem::drop(1); }\n").unwrap();
    std::fs::write(src.join("d/e.rs"), "pub fn g() {}\nfn h() { super::f(); }\n").unwrap();
    let found = cycles(&graph(src));
    let d = |rest: &[&str]| {
        std::iter::once("d").chain(rest.iter().copied()).map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains(&d(&[])) && found[0].contains(&d(&["e"])), "{found:?}");
}
