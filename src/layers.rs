//! The layer map in `lib.rs`'s documentation, checked: every `crate::` path
//! in `src/` leads to the module's own layer or one below it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Modules that may name a layer above them, and why.
const EXCEPTIONS: &[(&str, &str, &str)] =
    &[("error", "state", "the one Error type wraps StateError")];

/// Files compiled only for tests (they drive whole layers from outside).
const TEST_FILES: &[&str] = &["tests.rs", "golden.rs", "layers.rs"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The text of a file without its `//` comments.
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Module name -> layer, from the table rows `//! | N | [`a`], [`b`] | ...`.
fn layer_table(lib: &str) -> HashMap<String, u32> {
    let mut map = HashMap::new();
    for row in lib.lines().filter_map(|l| l.strip_prefix("//! | ")) {
        let mut cells = row.split(" | ");
        let (Some(n), Some(modules)) = (cells.next(), cells.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u32>() else { continue };
        for m in modules.split("[`").skip(1) {
            map.insert(m.split('`').next().unwrap().to_string(), n);
        }
    }
    map
}

/// What `lib.rs` re-exports at the crate root: name -> module.
fn reexports(lib: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for l in lib.lines().filter_map(|l| l.strip_prefix("pub use ")) {
        let (module, names) = l.trim_end_matches(';').split_once("::").unwrap();
        for n in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            map.insert(n.trim().to_string(), module.to_string());
        }
    }
    map
}

/// The first segment of each path named after `crate::` in `code`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for rest in code.split("crate::").skip(1) {
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, C, d::{e, f}}`: the top-level items.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => out.push(std::mem::take(&mut item)),
                    _ if depth == 0 => item.push(c),
                    _ => {}
                }
            }
            out.push(item);
        } else {
            out.push(rest.to_string());
        }
    }
    out.iter()
        .map(|p| {
            let p = p.trim_start();
            let end = p
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(p.len());
            p[..end].to_string()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn layers() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let layer = layer_table(&lib);
    let reexported = reexports(&lib);
    // Every module is in the table.
    for l in lib.lines() {
        if let Some(m) = l.strip_prefix("pub mod ") {
            let m = m.trim_end_matches(';');
            assert!(
                layer.contains_key(m),
                "module {m} is in no layer of lib.rs's table"
            );
        }
    }
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    for f in files {
        let rel = f.strip_prefix(src()).unwrap();
        let name = rel.file_name().unwrap().to_string_lossy();
        if TEST_FILES.contains(&name.as_ref()) || rel == Path::new("lib.rs") {
            continue;
        }
        if rel == Path::new("main.rs") {
            // The top: the CLI may use anything.
            continue;
        }
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = module.trim_end_matches(".rs");
        let own = layer[module];
        for first in crate_paths(&code(&f)) {
            let used = match reexported.get(&first) {
                Some(m) => m.clone(),
                None => first,
            };
            let Some(&theirs) = layer.get(&used) else {
                continue;
            };
            let excepted = EXCEPTIONS
                .iter()
                .any(|(from, to, _)| *from == module && *to == used);
            if theirs > own && !excepted {
                wrong.push(format!(
                    "{} (layer {own}) uses {used} (layer {theirs})",
                    rel.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_grouped_and_reexported_paths() {
    let paths = crate_paths(
        "use crate::state::{self, Holder};\nuse crate::{tree::{A, B}, Config,\n Controller};\nx = crate::clock::now_ms();",
    );
    assert_eq!(paths, ["state", "tree", "Config", "Controller", "clock"]);
    let lib = "//! | 2 | [`kernel`] | x |\n//! | 1 | the `netlink` crate | y |\npub use controller::{Controller, HoldId};\n";
    assert_eq!(layer_table(lib).get("kernel"), Some(&2));
    assert_eq!(layer_table(lib).len(), 1);
    assert_eq!(reexports(lib)["HoldId"], "controller");
}
