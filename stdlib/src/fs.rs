//! File tools: a drop-in for the official MCP filesystem server
//! (`@modelcontextprotocol/server-filesystem`) — the same tool names, argument names and output
//! text — plus `delete_file`, `copy_file`, `append_file` and `search_file_contents`.
//!
//! Every file is reached through the engine's sandbox ([`aifirst::Ctx::fs`]), never through
//! `std::fs` with a path a model gave: paths are resolved beneath the allowed roots' directory
//! handles, so no `..` and no symbolic link (dangling, absolute, or swapped in meanwhile) leads
//! outside. Files are opened without blocking and only when they are regular files: a FIFO,
//! socket or device is refused. Directory walks list directories through the sandbox too, never
//! follow links, and read `.gitignore` files the same way.
//!
//! Tools that change files declare a file-snapshot undo (`undo = file_snapshot(paths = [...])`):
//! the engine records the named paths before the call and puts them back byte for byte on undo,
//! so the handlers here record nothing themselves.
//!
//! Paths may be absolute (inside an allowed directory) or relative to the first allowed
//! directory. Messages show paths as the sandbox shows them: the allowed directory as configured
//! joined with the rest.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{check_path, failed, invalid};
use aifirst::fs::{DirEntryInfo, EntryKind, File, Fs};
use aifirst::{capability, Ctx, ToolError};
use base64::Engine as _;
use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use grep_regex::RegexMatcherBuilder;
use grep_searcher::sinks::Lossy;
use grep_searcher::{BinaryDetection, SearcherBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A text file is read whole up to this size; beyond it, only with `head` or `tail`.
const MAX_TEXT_BYTES: u64 = 16 * MIB;
/// read_media_file returns files up to this size.
const MAX_MEDIA_BYTES: u64 = 16 * MIB;
/// read_multiple_files returns at most this much text in all.
const MAX_MULTI_BYTES: u64 = 64 * MIB;
const MIB: u64 = 1024 * 1024;
/// directory_tree refuses trees with more entries, or deeper ones.
const MAX_TREE_ENTRIES: usize = 100_000;
const MAX_TREE_DEPTH: usize = 128;
/// A search stops after looking at this many entries.
const MAX_WALK_ENTRIES: usize = 500_000;
/// search_files lists at most this many paths; search_file_contents's `max_results` at most this.
const MAX_SEARCH_RESULTS: usize = 10_000;
/// `.gitignore` and `.ignore` files are read up to this size.
const MAX_IGNORE_FILE: u64 = MIB;
/// A matching line is shown up to this many characters.
const MAX_LINE_CHARS: usize = 500;

// ---------------------------------------------------------------------------------------------
// Arguments and results

/// One replacement of edit_file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EditOperation {
    /// Text to search for: must match exactly once (whitespace at the start and end of each
    /// line is forgiven when nothing matches exactly).
    pub old_text: String,
    /// Text to replace it with.
    pub new_text: String,
}

/// How list_directory_with_sizes orders its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    /// By name (the default).
    #[default]
    Name,
    /// Largest first.
    Size,
}

/// A media file, base64-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct MediaFile {
    /// `image`, `audio`, or `blob` for anything else.
    #[serde(rename = "type")]
    pub kind: String,
    /// The file's bytes, base64-encoded (standard alphabet, padded).
    pub data: String,
    /// The MIME type, from the file name's extension.
    #[serde(rename = "mimeType")]
    pub mime_type: String,
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Read the complete contents of a file as text. Use `head` to read only the first N lines, or
/// `tail` for only the last N lines (not both). The file must be UTF-8 text: images and audio
/// are read with read_media_file. Files over 16 MiB are read in part only, with `head` or
/// `tail`. Only works within allowed directories.
#[capability(effects(read, filesystem))]
pub fn read_text_file(
    ctx: &Ctx,
    /// The file: an absolute path inside an allowed directory, or one relative to the first.
    path: String,
    /// If provided, returns only the last N lines of the file.
    tail: Option<u64>,
    /// If provided, returns only the first N lines of the file.
    head: Option<u64>,
) -> Result<String, ToolError> {
    check_path(&path, "path")?;
    if head.is_some() && tail.is_some() {
        return Err(invalid(
            "give `head` or `tail`, not both: read the start and the end in two calls".into(),
        ));
    }
    let fs = ctx.fs();
    let shown = shown(fs, &path)?;
    let file = fs.open_regular(path)?;
    match (head, tail) {
        (Some(n), _) => head_lines(&shown, file, n),
        (_, Some(n)) => tail_lines(&shown, file, n),
        _ => {
            let bytes = read_whole(
                &shown,
                file,
                MAX_TEXT_BYTES,
                "read part of it with `head` or `tail`",
            )?;
            to_text(&shown, bytes)
        }
    }
}

/// Read an image or audio file. Returns the base64-encoded data and the MIME type (from the
/// file name's extension); `type` is `image`, `audio`, or `blob` for anything else. Files up to
/// 16 MiB. Only works within allowed directories.
#[capability(effects(read, filesystem))]
pub fn read_media_file(
    ctx: &Ctx,
    /// The file: an absolute path inside an allowed directory, or one relative to the first.
    path: String,
) -> Result<MediaFile, ToolError> {
    check_path(&path, "path")?;
    let fs = ctx.fs();
    let shown = shown(fs, &path)?;
    let file = fs.open_regular(&path)?;
    let bytes = read_whole(
        &shown,
        file,
        MAX_MEDIA_BYTES,
        "it is too large to return in one answer",
    )?;
    let mime_type = mime_type(&path);
    let kind = if mime_type.starts_with("image/") {
        "image"
    } else if mime_type.starts_with("audio/") {
        "audio"
    } else {
        "blob"
    };
    Ok(MediaFile {
        kind: kind.to_string(),
        data: base64::engine::general_purpose::STANDARD.encode(&bytes),
        mime_type: mime_type.to_string(),
    })
}

/// Read several text files at once: more efficient than one call per file when analysing or
/// comparing them. Each file's content comes after its path; a file that cannot be read shows
/// its error and does not stop the others. Only works within allowed directories.
#[capability(effects(read, filesystem))]
pub fn read_multiple_files(
    ctx: &Ctx,
    /// The files to read (at least one), each inside an allowed directory.
    paths: Vec<String>,
) -> Result<String, ToolError> {
    if paths.is_empty() {
        return Err(invalid(
            "`paths` is empty: give at least one file path".into(),
        ));
    }
    let fs = ctx.fs();
    let mut total: u64 = 0;
    let mut parts = Vec::with_capacity(paths.len());
    for p in &paths {
        let budget = MAX_MULTI_BYTES.saturating_sub(total);
        match read_one_text(fs, p, budget) {
            Ok(text) => {
                total += text.len() as u64;
                parts.push(format!("{p}:\n{text}\n"));
            }
            Err(e) => parts.push(format!("{p}: Error - {e}")),
        }
    }
    Ok(parts.join("\n---\n"))
}

fn read_one_text(fs: &Fs, path: &str, budget: u64) -> Result<String, ToolError> {
    check_path(path, "paths")?;
    let shown = shown(fs, path)?;
    let file = fs.open_regular(path)?;
    let (cap, hint) = if budget < MAX_TEXT_BYTES {
        (
            budget,
            "the files before it already fill what one call returns (64 MiB); read it in \
             another call",
        )
    } else {
        (
            MAX_TEXT_BYTES,
            "read part of it with read_text_file's `head` or `tail`",
        )
    };
    let bytes = read_whole(&shown, file, cap, hint)?;
    to_text(&shown, bytes)
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Create a new file or completely overwrite an existing one with new content (it is replaced
/// atomically, keeping its permissions). Use with caution: an existing file is overwritten
/// without warning (undo puts it back). The parent directory must exist. Only works within
/// allowed directories.
#[capability(
    effects(create, update, filesystem),
    idempotent,
    undo = file_snapshot(paths = ["$args.path"])
)]
pub fn write_file(
    ctx: &Ctx,
    /// The file to write: an absolute path inside an allowed directory, or one relative to the
    /// first.
    path: String,
    /// The complete new content.
    content: String,
) -> Result<String, ToolError> {
    check_path(&path, "path")?;
    let fs = ctx.fs();
    refuse_special(fs, &path)?;
    fs.write(&path, content.as_bytes())?;
    Ok(format!("Successfully wrote to {path}"))
}

/// Make line-based edits to a text file: each edit replaces text that must occur exactly once
/// (in the file as the edits before it left it) with new text. When no exact match exists, a
/// match of whole lines ignoring leading and trailing whitespace is used, and the replacement is
/// re-indented to fit. Returns a git-style diff of the changes; with `dryRun` the file is not
/// changed. Only works within allowed directories.
#[capability(effects(update, filesystem), undo = file_snapshot(paths = ["$args.path"]))]
pub fn edit_file(
    ctx: &Ctx,
    /// The file to edit: an absolute path inside an allowed directory, or one relative to the
    /// first.
    path: String,
    /// The replacements, applied in order; if one fails, none is written.
    edits: Vec<EditOperation>,
    /// Preview changes using git-style diff format, without changing the file.
    #[serde(rename = "dryRun", default)]
    dry_run: bool,
) -> Result<String, ToolError> {
    check_path(&path, "path")?;
    if edits.is_empty() {
        return Err(invalid(
            "`edits` is empty: give at least one {\"oldText\", \"newText\"}".into(),
        ));
    }
    if edits.len() > 1000 {
        return Err(invalid(format!(
            "`edits` has {} edits; at most 1000 in one call (split them, or rewrite the file with write_file)",
            edits.len()
        )));
    }
    let fs = ctx.fs();
    let shown = shown(fs, &path)?;
    let shown_text = shown.display().to_string();
    let file = fs.open_regular(&path)?;
    let bytes = read_whole(
        &shown,
        file,
        MAX_TEXT_BYTES,
        "edit_file edits files up to 16 MiB; rewrite it with write_file",
    )?;
    let original = to_text(&shown, bytes)?;
    // A file with CRLF line ends throughout is edited as LF and written back with CRLF.
    let crlf = uses_crlf(&original);
    let work = if crlf {
        original.replace("\r\n", "\n")
    } else {
        original.clone()
    };
    let modified = apply_edits(&work, &edits, &shown_text)?;
    let diff = unified_diff(&work, &modified, &shown_text);
    if !dry_run && modified != work {
        let out = if crlf {
            modified.replace('\n', "\r\n")
        } else {
            modified
        };
        fs.write(path, out.as_bytes())?;
    }
    Ok(fenced(&diff))
}

/// Append text to the end of a file (created when missing). Nothing is added in between: end
/// `content` with a newline to end the line. Only works within allowed directories.
#[capability(effects(update, filesystem), undo = file_snapshot(paths = ["$args.path"]))]
pub fn append_file(
    ctx: &Ctx,
    /// The file to append to: an absolute path inside an allowed directory, or one relative to
    /// the first.
    path: String,
    /// The text to add at the end.
    content: String,
) -> Result<String, ToolError> {
    check_path(&path, "path")?;
    ctx.fs().append_regular(&path, content.as_bytes())?;
    Ok(format!("Successfully appended to {path}"))
}

/// Create a new directory, or make sure one exists; missing parent directories are created too.
/// Succeeds silently when the directory already exists. Only works within allowed directories.
#[capability(
    effects(create, filesystem),
    idempotent,
    undo = file_snapshot(paths = ["$args.path"])
)]
pub fn create_directory(
    ctx: &Ctx,
    /// The directory: an absolute path inside an allowed directory, or one relative to the
    /// first.
    path: String,
) -> Result<String, ToolError> {
    check_path(&path, "path")?;
    let fs = ctx.fs();
    if let Ok(info) = fs.info(&path, true) {
        if info.kind != EntryKind::Dir {
            return Err(failed(format!(
                "{} already exists and is not a directory",
                shown(fs, &path)?.display()
            )));
        }
    }
    fs.create_dir_all(&path)?;
    Ok(format!("Successfully created directory {path}"))
}

/// Move or rename a file or directory, within or between directories. Fails if the destination
/// exists: nothing is ever replaced. Both paths must be within allowed directories.
#[capability(
    effects(create, delete, filesystem),
    destructive_hint = false,
    undo = file_snapshot(paths = ["$args.source", "$args.destination"])
)]
pub fn move_file(
    ctx: &Ctx,
    /// What to move.
    source: String,
    /// Where it goes (its new path, not the directory it goes into); must not exist.
    destination: String,
) -> Result<String, ToolError> {
    check_path(&source, "source")?;
    check_path(&destination, "destination")?;
    ctx.fs().rename(&source, &destination)?;
    Ok(format!("Successfully moved {source} to {destination}"))
}

/// Copy a file, or with `recursive` a directory and everything in it. Fails if the destination
/// exists. Symbolic links inside a copied directory are recreated when their target is relative
/// and left out otherwise; FIFOs, sockets and devices are left out (the answer lists what was).
/// Both paths must be within allowed directories.
#[capability(
    effects(create, filesystem),
    undo = file_snapshot(paths = ["$args.destination"])
)]
pub fn copy_file(
    ctx: &Ctx,
    /// What to copy.
    source: String,
    /// The path of the copy (not the directory it goes into); must not exist.
    destination: String,
    /// Copy a directory and everything in it (required for directories).
    #[serde(default)]
    recursive: bool,
) -> Result<String, ToolError> {
    check_path(&source, "source")?;
    check_path(&destination, "destination")?;
    let fs = ctx.fs();
    if !recursive {
        if let Ok(info) = fs.info(&source, true) {
            if info.kind == EntryKind::Dir {
                return Err(failed(format!(
                    "{} is a directory; pass `recursive: true` to copy it and everything in it",
                    shown(fs, &source)?.display()
                )));
            }
        }
    }
    let report = fs.copy(&source, &destination, recursive)?;
    let mut text = format!("Successfully copied {source} to {destination}");
    if report.dirs > 0 {
        text.push_str(&format!(
            " ({} files, {} directories, {} links, {})",
            report.files,
            report.dirs,
            report.links,
            format_size(report.bytes)
        ));
    }
    if report.skipped_count > 0 {
        text.push_str(&format!("\nNot copied ({}):", report.skipped_count));
        for note in &report.skipped {
            text.push_str("\n- ");
            text.push_str(note);
        }
        let unlisted = report
            .skipped_count
            .saturating_sub(report.skipped.len() as u64);
        if unlisted > 0 {
            text.push_str(&format!("\n- … and {unlisted} more"));
        }
    }
    Ok(text)
}

/// Delete a file or symbolic link (the link itself, never what it names), or with `recursive` a
/// directory and everything in it. A directory without `recursive: true` is refused. Undo puts
/// everything back. Only works within allowed directories; an allowed directory itself cannot
/// be deleted.
#[capability(effects(delete, filesystem), undo = file_snapshot(paths = ["$args.path"]))]
pub fn delete_file(
    ctx: &Ctx,
    /// What to delete: an absolute path inside an allowed directory, or one relative to the
    /// first.
    path: String,
    /// Delete a directory and everything in it (required for directories, even empty ones).
    #[serde(default)]
    recursive: bool,
) -> Result<String, ToolError> {
    check_path(&path, "path")?;
    let fs = ctx.fs();
    // `t.txt/` or `link/` names a directory, as `rm` reads it: what its name holds must be one.
    fs.refuse_named_as_dir(&path)?;
    let info = fs.info(&path, false)?;
    if info.kind == EntryKind::Dir {
        if !recursive {
            return Err(failed(format!(
                "{} is a directory; pass `recursive: true` to delete it and everything in it",
                shown(fs, &path)?.display()
            )));
        }
        fs.remove_dir_all(&path)?;
        return Ok(format!(
            "Successfully deleted directory {path} and everything in it"
        ));
    }
    fs.remove_file(&path)?;
    Ok(format!("Successfully deleted {path}"))
}

// ---------------------------------------------------------------------------------------------
// Listing and searching

/// Get a listing of the files and directories in a directory, sorted by name: each line is
/// `[DIR] name` or `[FILE] name` (links and other entries show as `[FILE]`). Only works within
/// allowed directories.
#[capability(effects(read, filesystem))]
pub fn list_directory(
    ctx: &Ctx,
    /// The directory: an absolute path inside an allowed directory, or one relative to the
    /// first.
    path: String,
) -> Result<String, ToolError> {
    check_path(&path, "path")?;
    let entries = ctx.fs().read_dir(path)?;
    Ok(entries
        .iter()
        .map(|e| format!("{} {}", tag(e), e.name.to_string_lossy()))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Get a listing of the files and directories in a directory with their sizes: `[DIR]` and
/// `[FILE]` lines, then the number of files and directories and their combined size. Sorted by
/// name, or by size (largest first). Only works within allowed directories.
#[capability(effects(read, filesystem))]
pub fn list_directory_with_sizes(
    ctx: &Ctx,
    /// The directory: an absolute path inside an allowed directory, or one relative to the
    /// first.
    path: String,
    /// Sort entries by name or size.
    #[serde(rename = "sortBy", default)]
    sort_by: SortBy,
) -> Result<String, ToolError> {
    check_path(&path, "path")?;
    let fs = ctx.fs();
    let dir = shown(fs, &path)?;
    let entries = fs.read_dir(path)?;
    let mut rows: Vec<(String, bool, u64)> = entries
        .iter()
        .map(|e| {
            let size = match e.kind {
                // Directories show no size, and count as none when sorting by size.
                EntryKind::Dir => 0,
                // What the link names, when it is inside the roots.
                EntryKind::Symlink => fs
                    .info(dir.join(&e.name), true)
                    .map(|i| i.size)
                    .unwrap_or(0),
                _ => e.size,
            };
            (
                e.name.to_string_lossy().into_owned(),
                e.kind == EntryKind::Dir,
                size,
            )
        })
        .collect();
    if sort_by == SortBy::Size {
        rows.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    }
    let mut lines: Vec<String> = rows
        .iter()
        .map(|(name, is_dir, size)| {
            if *is_dir {
                format!("[DIR] {name}")
            } else {
                format!("[FILE] {name:<30} {:>10}", format_size(*size))
            }
        })
        .collect();
    let files = rows.iter().filter(|r| !r.1).count();
    let dirs = rows.len() - files;
    let total: u64 = rows.iter().filter(|r| !r.1).map(|r| r.2).sum();
    lines.push(String::new());
    lines.push(format!("Total: {files} files, {dirs} directories"));
    lines.push(format!("Combined size: {}", format_size(total)));
    Ok(lines.join("\n"))
}

/// Get a recursive tree of files and directories as JSON: each entry has `name`, `type`
/// (`file` or `directory`) and, for directories, `children` (possibly empty); files have no
/// `children`. Links are listed as files and not followed. `excludePatterns` are globs matched
/// against paths relative to `path` (a pattern without `/` matches at any depth). Formatted with
/// 2-space indentation. Trees of more than 100000 entries are refused: exclude some or pick a
/// deeper directory. Only works within allowed directories.
#[capability(effects(read, filesystem))]
pub fn directory_tree(
    ctx: &Ctx,
    /// The directory: an absolute path inside an allowed directory, or one relative to the
    /// first.
    path: String,
    /// Globs of paths to leave out (and not descend into), e.g. `["node_modules", "*.log"]`.
    #[serde(rename = "excludePatterns", default)]
    exclude_patterns: Vec<String>,
) -> Result<String, ToolError> {
    check_path(&path, "path")?;
    let fs = ctx.fs();
    let excludes = exclude_set(&exclude_patterns)?;
    let top = shown(fs, &path)?;
    let mut count = 0;
    let tree = build_tree(fs, &top, "", 0, &excludes, &mut count, &top)?;
    serde_json::to_string_pretty(&tree).map_err(|e| failed(e.to_string()))
}

/// Recursively search for files and directories whose path matches a glob pattern, e.g.
/// `*.rs` or `src/**/test_*.py`. A pattern without `/` is matched against names at any depth; one
/// with `/` against the path relative to `path`. A plain word without glob characters matches
/// names containing it, ignoring case. Returns full paths, one per line, or "No matches found".
/// Links are not followed. Only searches within allowed directories.
#[capability(effects(read, filesystem))]
pub fn search_files(
    ctx: &Ctx,
    /// The directory to search in.
    path: String,
    /// The glob pattern (or plain word) to match.
    pattern: String,
    /// Globs of paths to leave out (and not descend into), relative to `path`.
    #[serde(rename = "excludePatterns", default)]
    exclude_patterns: Vec<String>,
) -> Result<String, ToolError> {
    check_path(&path, "path")?;
    let fs = ctx.fs();
    let wanted = NameMatch::new(&pattern, "pattern")?;
    let excludes = exclude_set(&exclude_patterns)?;
    let top = shown(fs, &path)?;
    let first = fs.read_dir(path)?;
    let mut pending = vec![(top, String::new(), first)];
    let mut found: Vec<String> = Vec::new();
    let mut seen = 0usize;
    let mut note = None;
    let mut unreadable = 0usize;
    let mut first_unreadable: Option<String> = None;
    'walk: while let Some((dir, rel, entries)) = pending.pop() {
        let mut subdirs = Vec::new();
        for e in entries {
            seen += 1;
            if seen > MAX_WALK_ENTRIES {
                note = Some(format!(
                    "(stopped after looking at {MAX_WALK_ENTRIES} entries: search a deeper \
                     directory or exclude some)"
                ));
                break 'walk;
            }
            let name = e.name.to_string_lossy().into_owned();
            let child_rel = join_rel(&rel, &name);
            if excludes.is_match(&child_rel) {
                continue;
            }
            let child = dir.join(&e.name);
            if wanted.matches(&name, &child_rel) {
                found.push(child.display().to_string());
                if found.len() >= MAX_SEARCH_RESULTS {
                    note = Some(format!(
                        "(stopped at {MAX_SEARCH_RESULTS} matches: narrow the pattern)"
                    ));
                    break 'walk;
                }
            }
            if e.kind == EntryKind::Dir {
                subdirs.push((child, child_rel));
            }
        }
        // Depth first, in name order.
        for (child, child_rel) in subdirs.into_iter().rev() {
            match fs.read_dir(&child) {
                Ok(entries) => pending.push((child, child_rel, entries)),
                Err(e) => {
                    unreadable += 1;
                    first_unreadable.get_or_insert(e.to_string());
                }
            }
        }
    }
    found.sort();
    let mut text = if found.is_empty() {
        "No matches found".to_string()
    } else {
        found.join("\n")
    };
    if let Some(n) = note {
        text.push('\n');
        text.push_str(&n);
    }
    // A directory that could not be listed (no permission, a path past the system's length
    // limit) is said, so that "No matches found" is not taken for an answer about it.
    if let Some(first) = first_unreadable {
        text.push_str(&format!(
            "\n({unreadable} director{} could not be searched; the first: {first})",
            if unreadable == 1 { "y" } else { "ies" }
        ));
    }
    Ok(text)
}

/// Search the contents of text files for a regular expression, like `grep -rn`: answers
/// `path:line: text` lines. Honours `.gitignore` and `.ignore` files and skips hidden files and
/// directories (names starting with `.`) and binary files; links are not followed. `glob`
/// limits the files searched by name (e.g. `*.rs`; with `/`, by path relative to `path`). Says
/// when the results were cut at `max_results`. Only searches within allowed directories.
#[capability(effects(read, filesystem))]
pub fn search_file_contents(
    ctx: &Ctx,
    /// The directory (or single file) to search.
    path: String,
    /// A regular expression (Rust `regex` syntax), matched within single lines.
    pattern: String,
    /// Only search files whose name matches this glob (with `/`: whose relative path does).
    glob: Option<String>,
    /// The most matching lines to return (default 100, at most 10000).
    max_results: Option<usize>,
    /// Match case exactly (default true); false ignores case.
    case_sensitive: Option<bool>,
) -> Result<String, ToolError> {
    check_path(&path, "path")?;
    let fs = ctx.fs();
    let max = max_results.unwrap_or(100).clamp(1, MAX_SEARCH_RESULTS);
    let only = glob
        .as_deref()
        .map(|g| NameMatch::new(g, "glob"))
        .transpose()?;
    let matcher = RegexMatcherBuilder::new()
        .case_insensitive(!case_sensitive.unwrap_or(true))
        .line_terminator(Some(b'\n'))
        .build(&pattern)
        .map_err(|e| {
            invalid(format!(
                "`pattern` is not a regular expression this search can use: {e}"
            ))
        })?;
    let mut searcher = SearcherBuilder::new()
        .binary_detection(BinaryDetection::quit(b'\x00'))
        .line_number(true)
        // A file with no line ends is one line: never buffer more than this of it.
        .heap_limit(Some(16 * MIB as usize))
        .build();
    let mut hits: Vec<String> = Vec::new();
    let mut search = |mut file: File, shown: &Path, hits: &mut Vec<String>| {
        // A binary file (a NUL byte in its first 8 KiB) is passed over; one found binary
        // further on stops being searched at the first NUL byte.
        let mut start = Vec::with_capacity(8192);
        if (&mut file).take(8192).read_to_end(&mut start).is_err() || start.contains(&0) {
            return;
        }
        let label = shown.display().to_string();
        // A file that cannot be searched (it vanished, say) is passed over.
        let _ = searcher.search_reader(
            &matcher,
            std::io::Cursor::new(start).chain(file),
            Lossy(|line_number: u64, line: &str| {
                hits.push(format!(
                    "{label}:{line_number}: {}",
                    clip(line.trim_end_matches(['\n', '\r']))
                ));
                Ok(hits.len() < max)
            }),
        );
    };

    let at = fs.locate(&path)?;
    let top = at.shown.clone();
    let top_info = fs.info(&path, true)?;
    if top_info.kind != EntryKind::Dir {
        // One file: searched whatever its name (as an explicit path is).
        let file = fs.open_regular(path)?;
        search(file, &top, &mut hits);
        return Ok(contents_answer(&hits, max, None));
    }

    // The ignore files from the allowed directory down to `path` apply, as git applies them.
    let mut layers: Vec<Arc<IgnoreLayer>> = Vec::new();
    let mut dir = top.clone();
    for _ in at.rel.components() {
        dir.pop();
    }
    layers.extend(ignore_layer(fs, &dir));
    for c in at.rel.components() {
        dir.push(c);
        layers.extend(ignore_layer(fs, &dir));
    }

    let first = fs.read_dir(&top)?;
    let mut pending = vec![(top, String::new(), layers, first)];
    let mut seen = 0usize;
    let mut note = None;
    'walk: while let Some((dir, rel, layers, entries)) = pending.pop() {
        let mut subdirs = Vec::new();
        for e in entries {
            seen += 1;
            if seen > MAX_WALK_ENTRIES {
                note = Some(format!(
                    "(stopped after looking at {MAX_WALK_ENTRIES} entries: search a deeper \
                     directory or narrow `glob`)"
                ));
                break 'walk;
            }
            let name = e.name.to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let child = dir.join(&e.name);
            let child_rel = join_rel(&rel, &name);
            match e.kind {
                EntryKind::Dir => {
                    if !ignored(&layers, &child, true) {
                        subdirs.push((child, child_rel));
                    }
                }
                EntryKind::File => {
                    if ignored(&layers, &child, false) {
                        continue;
                    }
                    if let Some(only) = &only {
                        if !only.matches(&name, &child_rel) {
                            continue;
                        }
                    }
                    if let Ok(file) = fs.open_regular(&child) {
                        search(file, &child, &mut hits);
                    }
                    if hits.len() >= max {
                        break 'walk;
                    }
                }
                // Links are not followed; FIFOs, sockets and devices are never opened.
                EntryKind::Symlink | EntryKind::Other => {}
            }
        }
        for (child, child_rel) in subdirs.into_iter().rev() {
            let Ok(entries) = fs.read_dir(&child) else {
                continue;
            };
            let mut child_layers = layers.clone();
            child_layers.extend(ignore_layer(fs, &child));
            pending.push((child, child_rel, child_layers, entries));
        }
    }
    Ok(contents_answer(&hits, max, note))
}

fn contents_answer(hits: &[String], max: usize, note: Option<String>) -> String {
    let mut text = if hits.is_empty() {
        "No matches found".to_string()
    } else {
        hits.join("\n")
    };
    if hits.len() >= max {
        text.push_str(&format!(
            "\n(results truncated at {max} matching lines; there may be more: narrow `pattern` \
             or `glob`, or raise `max_results`)"
        ));
    }
    if let Some(n) = note {
        text.push('\n');
        text.push_str(&n);
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Information

/// Get information about a file or directory: size, creation, modification and access times
/// (RFC 3339, UTC; a time the file system does not keep is left out), type and permissions
/// (octal), one `key: value` per line, without reading the content. Only works within allowed
/// directories.
#[capability(effects(read, filesystem))]
pub fn get_file_info(
    ctx: &Ctx,
    /// The file or directory: an absolute path inside an allowed directory, or one relative to
    /// the first.
    path: String,
) -> Result<String, ToolError> {
    check_path(&path, "path")?;
    let info = ctx.fs().info(path, true)?;
    let mut lines = vec![format!("size: {}", info.size)];
    for (key, time) in [
        ("created", info.created),
        ("modified", info.modified),
        ("accessed", info.accessed),
    ] {
        if let Some(t) = time.and_then(rfc3339) {
            lines.push(format!("{key}: {t}"));
        }
    }
    lines.push(format!("isDirectory: {}", info.kind == EntryKind::Dir));
    lines.push(format!("isFile: {}", info.kind == EntryKind::File));
    lines.push(format!("permissions: {:03o}", info.mode & 0o777));
    Ok(lines.join("\n"))
}

/// Returns the directories these tools may access; everything inside them is accessible too.
/// Use it to learn which paths are available before accessing files. A relative path is taken
/// relative to the first.
#[capability(effects(read, filesystem))]
pub fn list_allowed_directories(ctx: &Ctx) -> String {
    let roots = ctx.fs().roots();
    if roots.is_empty() {
        return "Allowed directories:\n(none: file access is off; configure `allowed_roots` in \
                airun.toml, `--root DIR`, or AIFIRST_ROOTS)"
            .to_string();
    }
    let list: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    format!("Allowed directories:\n{}", list.join("\n"))
}

/// The path as the sandbox shows it (the allowed directory as configured, joined with the rest).
fn shown(fs: &Fs, path: &str) -> Result<PathBuf, ToolError> {
    Ok(fs.locate(path)?.shown)
}

/// Refuses to write over a FIFO, socket or device (a write would open it).
fn refuse_special(fs: &Fs, path: &str) -> Result<(), ToolError> {
    match fs.info(path, true) {
        Ok(info) if info.kind == EntryKind::Other => Err(ToolError::NotAllowed {
            message: format!(
                "{} is not a regular file (a FIFO, socket or device); it is not written",
                shown(fs, path)?.display()
            ),
        }),
        _ => Ok(()),
    }
}

fn read_error(shown: &Path, e: std::io::Error) -> ToolError {
    failed(format!("{}: {e}", shown.display()))
}

fn too_big(shown: &Path, size: u64, cap: u64, hint: &str) -> ToolError {
    failed(format!(
        "{} is {} ({size} bytes); files over {} are not read whole: {hint}",
        shown.display(),
        format_size(size),
        format_size(cap)
    ))
}

fn binary(shown: &Path) -> ToolError {
    failed(format!(
        "{} is not UTF-8 text (it looks like a binary file); read images and audio with \
         read_media_file",
        shown.display()
    ))
}

/// Reads an opened file whole, refusing more than `cap` bytes (checked before and while
/// reading: the file may grow).
fn read_whole(shown: &Path, file: File, cap: u64, hint: &str) -> Result<Vec<u8>, ToolError> {
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > cap {
        return Err(too_big(shown, len, cap, hint));
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| read_error(shown, e))?;
    if buf.len() as u64 > cap {
        return Err(too_big(shown, buf.len() as u64, cap, hint));
    }
    Ok(buf)
}

/// UTF-8 text, or the error pointing to read_media_file. A NUL byte counts as binary.
fn to_text(shown: &Path, bytes: Vec<u8>) -> Result<String, ToolError> {
    if bytes.contains(&0) {
        return Err(binary(shown));
    }
    String::from_utf8(bytes).map_err(|e| {
        // No NUL byte nor other control byte than text has: another encoding, not a binary
        // file (whose bytes would hold some).
        let controls = e
            .as_bytes()
            .iter()
            .filter(|b| **b < 0x20 && !matches!(**b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
            .count();
        if controls == 0 {
            failed(format!(
                "{} is not UTF-8 text: byte {} is not UTF-8 (the file looks like text in another \
                 encoding, such as Latin-1 or Windows-1252); read its bytes with read_media_file, \
                 or convert it to UTF-8",
                shown.display(),
                e.utf8_error().valid_up_to()
            ))
        } else {
            binary(shown)
        }
    })
}

/// The first `n` lines (without their line ends), read line by line.
fn head_lines(shown: &Path, file: File, n: u64) -> Result<String, ToolError> {
    let mut reader = BufReader::new(file.take(MAX_TEXT_BYTES.saturating_add(1)));
    let mut out: Vec<u8> = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    let mut count: u64 = 0;
    while count < n {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| read_error(shown, e))?;
        if read == 0 {
            break;
        }
        if count > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(strip_line_end(&line));
        count += 1;
        if out.len() as u64 > MAX_TEXT_BYTES {
            return Err(failed(format!(
                "the first {n} lines of {} are over {}; ask for fewer lines",
                shown.display(),
                format_size(MAX_TEXT_BYTES)
            )));
        }
    }
    to_text(shown, out)
}

/// The last `n` lines (without their line ends; a final line end does not start an empty
/// line), read backwards from the end in chunks.
fn tail_lines(shown: &Path, mut file: File, n: u64) -> Result<String, ToolError> {
    const CHUNK: u64 = 64 * 1024;
    let size = file.metadata().map_err(|e| read_error(shown, e))?.len();
    if n == 0 || size == 0 {
        return Ok(String::new());
    }
    let mut pos = size;
    let mut buf: Vec<u8> = Vec::new();
    let mut newlines: u64 = 0;
    while pos > 0 {
        let step = CHUNK.min(pos);
        pos -= step;
        file.seek(SeekFrom::Start(pos))
            .map_err(|e| read_error(shown, e))?;
        let mut chunk = vec![0u8; usize::try_from(step).unwrap_or(0)];
        file.read_exact(&mut chunk)
            .map_err(|e| read_error(shown, e))?;
        newlines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        let complete = newlines.saturating_sub(u64::from(buf.last() == Some(&b'\n')));
        if complete >= n {
            break;
        }
        if buf.len() as u64 > MAX_TEXT_BYTES {
            return Err(failed(format!(
                "the last {n} lines of {} are over {}; ask for fewer lines",
                shown.display(),
                format_size(MAX_TEXT_BYTES)
            )));
        }
    }
    let body = buf.strip_suffix(b"\n").unwrap_or(&buf[..]);
    let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    let start = lines
        .len()
        .saturating_sub(usize::try_from(n).unwrap_or(usize::MAX));
    let mut out: Vec<u8> = Vec::new();
    for (i, line) in lines[start..].iter().copied().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
    }
    to_text(shown, out)
}

fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The MIME type of a media file, from its extension (`application/octet-stream` when unknown).
fn mime_type(path: &str) -> &'static str {
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "tif" | "tiff" => "image/tiff",
        "avif" => "image/avif",
        "heic" => "image/heic",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/opus",
        "flac" => "audio/flac",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "weba" => "audio/webm",
        "mid" | "midi" => "audio/midi",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

fn tag(e: &DirEntryInfo) -> &'static str {
    if e.kind == EntryKind::Dir {
        "[DIR]"
    } else {
        "[FILE]"
    }
}

/// `1.50 KB`, like the official server's formatSize: bytes below 1 KiB, then two decimals.
fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut unit = 0;
    let mut v = bytes;
    while v >= 1024 && unit < UNITS.len() - 1 {
        v /= 1024;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} B");
    }
    let scaled = bytes as f64 / 1024f64.powi(unit as i32);
    format!("{scaled:.2} {}", UNITS[unit])
}

/// A time as RFC 3339 in UTC with milliseconds (`2024-05-01T12:00:00.000Z`); `None` before 1970.
fn rfc3339(t: SystemTime) -> Option<String> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(i64::try_from(days).ok()?);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    ))
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

fn join_rel(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// At most [`MAX_LINE_CHARS`] characters of a line.
fn clip(line: &str) -> String {
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Globs

fn glob(pattern: &str, arg: &str) -> Result<globset::Glob, ToolError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| invalid(format!("`{arg}`: `{pattern}` is not a valid glob: {e}")))
}

/// What search_files's `pattern` (and search_file_contents's `glob`) matches.
enum NameMatch {
    /// A plain word: names containing it, ignoring case.
    Substring(String),
    /// A glob without `/`: the name, at any depth.
    Name(GlobMatcher),
    /// A glob with `/`: the path relative to the search's directory.
    Path(GlobMatcher),
}

impl NameMatch {
    fn new(pattern: &str, arg: &str) -> Result<NameMatch, ToolError> {
        let p = pattern.trim();
        if p.is_empty() {
            return Err(invalid(format!(
                "`{arg}` is empty: give a glob such as `*.rs`"
            )));
        }
        let p = p.strip_prefix("./").unwrap_or(p);
        let globby = p.contains(['*', '?', '[', '{']);
        if !globby && !p.contains('/') {
            return Ok(NameMatch::Substring(p.to_lowercase()));
        }
        let matcher = glob(p, arg)?.compile_matcher();
        Ok(if p.contains('/') {
            NameMatch::Path(matcher)
        } else {
            NameMatch::Name(matcher)
        })
    }

    fn matches(&self, name: &str, rel: &str) -> bool {
        match self {
            NameMatch::Substring(s) => name.to_lowercase().contains(s.as_str()),
            NameMatch::Name(g) => g.is_match(name),
            NameMatch::Path(g) => g.is_match(rel),
        }
    }
}

/// `excludePatterns`: each glob matched against the relative path, and (unless it starts with
/// `/` or `**/`) also at any depth, so `node_modules` or `*.log` leave out every one.
fn exclude_set(patterns: &[String]) -> Result<GlobSet, ToolError> {
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        let p = p.trim().trim_end_matches('/');
        let p = p.strip_prefix("./").unwrap_or(p);
        if p.is_empty() {
            continue;
        }
        if let Some(anchored) = p.strip_prefix('/') {
            set.add(glob(anchored, "excludePatterns")?);
            continue;
        }
        set.add(glob(p, "excludePatterns")?);
        if !p.starts_with("**/") {
            set.add(glob(&format!("**/{p}"), "excludePatterns")?);
        }
    }
    set.build()
        .map_err(|e| invalid(format!("`excludePatterns`: {e}")))
}

// ---------------------------------------------------------------------------------------------
// directory_tree

#[derive(Debug, Serialize)]
struct TreeEntry {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    children: Option<Vec<TreeEntry>>,
}

fn build_tree(
    fs: &Fs,
    dir: &Path,
    rel: &str,
    depth: usize,
    excludes: &GlobSet,
    count: &mut usize,
    top: &Path,
) -> Result<Vec<TreeEntry>, ToolError> {
    let entries = match fs.read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if depth == 0 => return Err(e),
        // A subdirectory that cannot be listed shows as empty.
        Err(_) => return Ok(Vec::new()),
    };
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let name = e.name.to_string_lossy().into_owned();
        let child_rel = join_rel(rel, &name);
        if excludes.is_match(&child_rel) {
            continue;
        }
        *count += 1;
        if *count > MAX_TREE_ENTRIES {
            return Err(failed(format!(
                "the tree under {} has more than {MAX_TREE_ENTRIES} entries: leave some out with \
                 `excludePatterns` (e.g. [\"node_modules\", \".git\", \"target\"]) or ask for a \
                 deeper directory",
                top.display()
            )));
        }
        let children = if e.kind == EntryKind::Dir {
            if depth + 1 >= MAX_TREE_DEPTH {
                return Err(failed(format!(
                    "the tree under {} is more than {MAX_TREE_DEPTH} levels deep (at {}): ask \
                     for a deeper directory",
                    top.display(),
                    child_rel
                )));
            }
            Some(build_tree(
                fs,
                &dir.join(&e.name),
                &child_rel,
                depth + 1,
                excludes,
                count,
                top,
            )?)
        } else {
            None
        };
        out.push(TreeEntry {
            name,
            kind: if e.kind == EntryKind::Dir {
                "directory"
            } else {
                "file"
            },
            children,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// search_file_contents: ignore files

/// The `.ignore` and `.gitignore` rules of one directory.
struct IgnoreLayer {
    ignore: Option<Gitignore>,
    gitignore: Option<Gitignore>,
}

/// The rules of `dir`, read through the sandbox (regular files only, at most 1 MiB); `None` when
/// it has none.
fn ignore_layer(fs: &Fs, dir: &Path) -> Option<Arc<IgnoreLayer>> {
    let load = |name: &str| -> Option<Gitignore> {
        let file = fs.open_regular(dir.join(name)).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_IGNORE_FILE).read_to_end(&mut bytes).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let mut builder = GitignoreBuilder::new(dir);
        for line in text.lines() {
            // A line that is not a valid glob is skipped, as git skips it.
            let _ = builder.add_line(None, line);
        }
        builder.build().ok().filter(|g| !g.is_empty())
    };
    let layer = IgnoreLayer {
        ignore: load(".ignore"),
        gitignore: load(".gitignore"),
    };
    if layer.ignore.is_none() && layer.gitignore.is_none() {
        None
    } else {
        Some(Arc::new(layer))
    }
}

/// Whether the rules leave `path` out: the deepest directory's rules first, `.ignore` before
/// `.gitignore`; the first rule that matches decides (a `!pattern` lets the path in).
fn ignored(layers: &[Arc<IgnoreLayer>], path: &Path, is_dir: bool) -> bool {
    for layer in layers.iter().rev() {
        for rules in [&layer.ignore, &layer.gitignore].into_iter().flatten() {
            let m = rules.matched(path, is_dir);
            if m.is_ignore() {
                return true;
            }
            if m.is_whitelist() {
                return false;
            }
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// edit_file

/// Whether every line end is CRLF.
fn uses_crlf(text: &str) -> bool {
    let lf = text.matches('\n').count();
    lf > 0 && text.matches("\r\n").count() == lf
}

/// Applies the edits in order to `text`; the first that fails fails them all.
fn apply_edits(text: &str, edits: &[EditOperation], shown: &str) -> Result<String, ToolError> {
    let mut work = text.to_string();
    let total = edits.len();
    for (i, edit) in edits.iter().enumerate() {
        let which = if total > 1 {
            format!("edit {} of {total}", i + 1)
        } else {
            "the edit".to_string()
        };
        let old = edit.old_text.replace("\r\n", "\n");
        let new = edit.new_text.replace("\r\n", "\n");
        if old.is_empty() {
            if work.is_empty() {
                work = new;
                continue;
            }
            return Err(failed(format!(
                "{which}: `oldText` is empty, so it says nothing about where the text goes; \
                 include the text to replace (to insert, include a neighbouring line and repeat \
                 it in `newText`). Nothing was changed."
            )));
        }
        // Enough to tell "once" from "many" and to name a few places (`take`: an `oldText` of
        // one character in a large file would otherwise list every occurrence).
        let exact: Vec<usize> = work
            .match_indices(old.as_str())
            .map(|(at, _)| at)
            .take(11)
            .collect();
        match exact.as_slice() {
            [at] => {
                let at = *at;
                work.replace_range(at..at + old.len(), &new);
                continue;
            }
            [] => {}
            many => {
                let lines = lines_of(&work, many);
                let count = if many.len() > 10 {
                    "more than 10".to_string()
                } else {
                    many.len().to_string()
                };
                return Err(failed(format!(
                    "{which}: `oldText` occurs {count} times in {shown} (at lines {}), so it is \
                     not clear which to replace. Include more of the surrounding lines in \
                     `oldText` so it matches exactly once. Nothing was changed.",
                    list_lines(&lines)
                )));
            }
        }
        work = match flexible_replace(&work, &old, &new) {
            Ok(done) => done,
            Err(Miss::Many(lines)) => {
                return Err(failed(format!(
                    "{which}: `oldText` was not found exactly in {shown}, and ignoring leading \
                     and trailing whitespace it matches {} places (at lines {}), so it is not \
                     clear which to replace. Include more of the surrounding lines in `oldText`, \
                     exactly as the file has them. Nothing was changed.",
                    lines.len(),
                    list_lines(&lines)
                )));
            }
            Err(Miss::None) => return Err(not_found(&which, shown, &work, &old)),
        };
    }
    Ok(work)
}

/// The 1-based lines of ascending byte offsets, in one pass over the text.
fn lines_of(text: &str, offsets: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let (mut line, mut from) = (1usize, 0usize);
    for &at in offsets {
        line += text.get(from..at).map_or(0, |s| s.matches('\n').count());
        from = at.max(from);
        out.push(line);
    }
    out
}

fn list_lines(lines: &[usize]) -> String {
    let mut shown: Vec<String> = lines.iter().take(10).map(|l| l.to_string()).collect();
    if lines.len() > 10 {
        shown.push("…".to_string());
    }
    shown.join(", ")
}

enum Miss {
    None,
    /// The 1-based first lines of each place it matches.
    Many(Vec<usize>),
}

fn leading_ws(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// Replaces the one run of whole lines equal to `old`'s lines when leading and trailing
/// whitespace is ignored. The replacement is re-indented: the indentation `old`'s first
/// non-blank line has is swapped for the one the file has there.
fn flexible_replace(work: &str, old: &str, new: &str) -> Result<String, Miss> {
    // A final line end in `old` ends its last line; it does not add an empty one.
    let (old_body, new_body, whole_lines) = match old.strip_suffix('\n') {
        Some(o) => (o, new.strip_suffix('\n').unwrap_or(new), true),
        None => (old, new, false),
    };
    let old_lines: Vec<&str> = old_body.split('\n').collect();
    let Some(first) = old_lines.iter().position(|l| !l.trim().is_empty()) else {
        return Err(Miss::None);
    };
    let lines: Vec<&str> = work.split('\n').collect();
    if old_lines.len() > lines.len() {
        return Err(Miss::None);
    }
    let wanted: Vec<&str> = old_lines.iter().map(|l| l.trim()).collect();
    // Line comparisons are bounded (a block of identical lines against a file of them would
    // otherwise cost lines × block); past the bound it is a miss, reported as one.
    let mut budget: u64 = 50_000_000;
    let mut hits: Vec<usize> = Vec::new();
    for i in 0..=lines.len() - old_lines.len() {
        let mut all = true;
        for (have, want) in lines[i..i + wanted.len()].iter().zip(&wanted) {
            budget = budget.saturating_sub(1);
            if have.trim() != *want {
                all = false;
                break;
            }
        }
        if all {
            hits.push(i);
            if hits.len() > 10 {
                break;
            }
        }
        if budget == 0 {
            return Err(Miss::None);
        }
    }
    let at = match hits.as_slice() {
        [at] => *at,
        [] => return Err(Miss::None),
        many => return Err(Miss::Many(many.iter().map(|i| i + 1).collect())),
    };
    let old_base = leading_ws(old_lines[first]);
    let file_base = leading_ws(lines[at + first]);
    let replacement: Vec<String> = if new_body.is_empty() && whole_lines {
        Vec::new()
    } else {
        new_body
            .split('\n')
            .map(|l| {
                if l.trim().is_empty() {
                    String::new()
                } else if let Some(rest) = l.strip_prefix(old_base) {
                    format!("{file_base}{rest}")
                } else {
                    l.to_string()
                }
            })
            .collect()
    };
    let mut out: Vec<String> = lines[..at].iter().map(|s| s.to_string()).collect();
    out.extend(replacement);
    out.extend(lines[at + old_lines.len()..].iter().map(|s| s.to_string()));
    Ok(out.join("\n"))
}

/// The error for an `oldText` found nowhere: it names the most similar run of lines, with its
/// line number, so the caller can copy the text as the file has it.
fn not_found(which: &str, shown: &str, work: &str, old: &str) -> ToolError {
    let mut message = format!(
        "{which}: `oldText` was not found in {shown}, not even ignoring leading and trailing \
         whitespace. Nothing was changed."
    );
    let lines: Vec<&str> = work.split('\n').collect();
    let wanted: Vec<&str> = old.trim_end_matches('\n').split('\n').collect();
    if let Some((at, width)) = closest_window(&lines, &wanted) {
        let window: Vec<&str> = lines[at..at + width].to_vec();
        let a = window
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join("\n");
        let b = wanted
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join("\n");
        let ratio = similar::TextDiff::configure()
            .timeout(Duration::from_millis(200))
            .diff_chars(a.as_str(), b.as_str())
            .ratio();
        if ratio >= 0.3 {
            message.push_str(&format!(
                " The most similar text is at line {} ({:.0}% similar):\n",
                at + 1,
                f64::from(ratio) * 100.0
            ));
            for (i, line) in window.iter().enumerate().take(12) {
                message.push_str(&format!("{:>6} | {}\n", at + 1 + i, clip(line)));
            }
            if window.len() > 12 {
                message.push_str("       | …\n");
            }
            message.push_str(
                "Copy `oldText` exactly as the file has it (read_text_file shows it) and try again.",
            );
            return failed(message);
        }
    }
    message.push_str(
        " Nothing in the file resembles it: read the file (read_text_file) and copy `oldText` \
         from it.",
    );
    failed(message)
}

/// The start and width of the run of lines most like `wanted` (by the character pairs they
/// share, whitespace at line ends ignored), sliding a window of `wanted.len()` lines over the
/// file in one pass.
fn closest_window(lines: &[&str], wanted: &[&str]) -> Option<(usize, usize)> {
    let width = wanted.len().min(lines.len());
    if width == 0 {
        return None;
    }
    let mut want: HashMap<(char, char), u32> = HashMap::new();
    let mut want_total: u64 = 0;
    for line in wanted {
        for p in char_pairs(line) {
            *want.entry(p).or_insert(0) += 1;
            want_total += 1;
        }
    }
    if want_total == 0 {
        return None;
    }
    let line_pairs: Vec<Vec<(char, char)>> = lines.iter().map(|l| char_pairs(l)).collect();
    let mut have: HashMap<(char, char), u32> = HashMap::new();
    let mut have_total: u64 = 0;
    let mut shared: u64 = 0;
    let add = |i: usize,
               have: &mut HashMap<(char, char), u32>,
               have_total: &mut u64,
               shared: &mut u64| {
        for p in &line_pairs[i] {
            let c = have.entry(*p).or_insert(0);
            if *c < want.get(p).copied().unwrap_or(0) {
                *shared += 1;
            }
            *c += 1;
            *have_total += 1;
        }
    };
    for i in 0..width {
        add(i, &mut have, &mut have_total, &mut shared);
    }
    let score =
        |shared: u64, have_total: u64| shared as f64 * 2.0 / (want_total + have_total) as f64;
    let mut best = (0usize, score(shared, have_total));
    for start in 1..=lines.len() - width {
        for p in &line_pairs[start - 1] {
            if let Some(c) = have.get_mut(p) {
                if *c <= want.get(p).copied().unwrap_or(0) {
                    shared = shared.saturating_sub(1);
                }
                *c = c.saturating_sub(1);
                have_total = have_total.saturating_sub(1);
            }
        }
        add(start + width - 1, &mut have, &mut have_total, &mut shared);
        let s = score(shared, have_total);
        if s > best.1 {
            best = (start, s);
        }
    }
    Some((best.0, width))
}

/// The pairs of neighbouring characters of a line, whitespace at its ends left out.
fn char_pairs(line: &str) -> Vec<(char, char)> {
    let chars: Vec<char> = line.trim().chars().collect();
    chars.windows(2).map(|w| (w[0], w[1])).collect()
}

/// A git-style unified diff (the header the official server's diff library writes).
fn unified_diff(old: &str, new: &str, name: &str) -> String {
    let diff = similar::TextDiff::configure()
        .timeout(Duration::from_secs(2))
        .diff_lines(old, new);
    let mut hunks = diff.unified_diff();
    hunks.context_radius(4);
    format!(
        "Index: {name}\n{}\n--- {name}\toriginal\n+++ {name}\tmodified\n{hunks}",
        "=".repeat(67)
    )
}

/// The diff in a fenced block, with more backticks than the diff holds in a row.
fn fenced(diff: &str) -> String {
    // One more backtick than the longest run in the diff (at least three), found in one pass.
    let (mut longest, mut run) = (0usize, 0usize);
    for b in diff.bytes() {
        run = if b == b'`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}diff\n{diff}{fence}\n\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the assertion
mod tests {
    use super::*;

    fn edit(old: &str, new: &str) -> EditOperation {
        EditOperation {
            old_text: old.into(),
            new_text: new.into(),
        }
    }

    #[test]
    fn sizes_read_like_the_official_server() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(1536), "1.50 KB");
        assert_eq!(format_size(5 * 1024 * 1024), "5.00 MB");
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let at = |secs: u64, ms: u64| {
            rfc3339(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms)).unwrap()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_700_000_000, 0), "2023-11-14T22:13:20.000Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn exact_edits_apply_in_order() {
        let out = apply_edits("a\nb\nc\n", &[edit("b", "B"), edit("B\nc", "X")], "f").unwrap();
        assert_eq!(out, "a\nX\n");
    }

    #[test]
    fn whitespace_flexible_edits_keep_the_file_indentation() {
        let text = "fn main() {\n    if x {\n        go();\n    }\n}\n";
        let out = apply_edits(
            text,
            &[edit(
                "if x {\n    go();\n}",
                "if y {\n    stop();\n    go();\n}",
            )],
            "f",
        )
        .unwrap();
        assert_eq!(
            out,
            "fn main() {\n    if y {\n        stop();\n        go();\n    }\n}\n"
        );
    }

    #[test]
    fn a_missing_text_names_the_closest_line() {
        let text = "one\ntwo\nlet total = price * count;\nfour\n";
        let e = apply_edits(text, &[edit("let total = price * amount;", "x")], "f").unwrap_err();
        let m = e.to_string();
        assert!(m.contains("line 3"), "{m}");
        assert!(m.contains("price * count"), "{m}");
    }

    #[test]
    fn closest_window_finds_the_run() {
        let lines = ["a", "alpha beta", "gamma delta", "z"];
        assert_eq!(
            closest_window(&lines, &["alpha betx", "gamma delta"]),
            Some((1, 2))
        );
    }

    #[test]
    fn the_fence_outgrows_backticks_in_the_diff() {
        assert!(fenced("x ``` y\n").starts_with("````diff\n"));
        assert!(fenced("plain\n").starts_with("```diff\n"));
    }

    #[test]
    fn patterns_match_names_or_paths() {
        let name = NameMatch::new("*.rs", "pattern").unwrap();
        assert!(name.matches("lib.rs", "src/deep/lib.rs"));
        assert!(!name.matches("lib.rsx", "lib.rsx"));
        let path = NameMatch::new("src/*.rs", "pattern").unwrap();
        assert!(path.matches("lib.rs", "src/lib.rs"));
        assert!(!path.matches("lib.rs", "src/deep/lib.rs"));
        let word = NameMatch::new("Read", "pattern").unwrap();
        assert!(word.matches("README.md", "README.md"));
        let ex = exclude_set(&["node_modules".into(), "*.log".into()]).unwrap();
        assert!(ex.is_match("a/node_modules"));
        assert!(ex.is_match("x/y/z.log"));
        assert!(!ex.is_match("src/main.rs"));
    }
}
