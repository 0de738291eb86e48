//! Finding and hashing the files of a site folder.
//!
//! Honours `.gitignore` (even outside a git repository) and `.faztignore`,
//! skips dotfiles (but keeps `.well-known/`), `node_modules` and `.git`, and
//! never follows symlinks, so a deploy cannot smuggle in files from outside
//! its folder.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use fazt_proto::{BlobHash, ManifestEntry};

/// A file to deploy.
#[derive(Debug, Clone)]
pub struct LocalFile {
    /// `/`-separated path relative to the site folder.
    pub path: String,
    pub absolute: PathBuf,
    pub size: u64,
    pub hash: BlobHash,
}

/// Walks `root` and hashes every file that belongs to the site.
pub fn collect(root: &Path) -> Result<(Vec<LocalFile>, Vec<String>)> {
    if !root.is_dir() {
        bail!("{} is not a folder", root.display());
    }
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .add_custom_ignore_filename(".faztignore")
        .filter_entry(|entry| {
            let name = entry.file_name().to_string_lossy();
            entry.depth() == 0
                || name == ".well-known"
                || !(name.starts_with('.') || name == "node_modules")
        })
        .build();
    for entry in walker {
        let entry = entry.context("cannot read the site folder")?;
        let file_type = entry.file_type();
        if file_type.is_some_and(|t| t.is_symlink()) {
            skipped.push(format!("{} (a symlink)", entry.path().display()));
            continue;
        }
        if !file_type.is_some_and(|t| t.is_file()) {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(root)
            .expect("walk stays under its root");
        let Some(path) = relative
            .to_str()
            .map(|p| p.replace(std::path::MAIN_SEPARATOR, "/"))
        else {
            skipped.push(format!(
                "{} (its name is not UTF-8)",
                entry.path().display()
            ));
            continue;
        };
        let (hash, size) = hash_file(entry.path())?;
        files.push(LocalFile {
            path,
            absolute: entry.path().to_path_buf(),
            size,
            hash,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((files, skipped))
}

fn hash_file(path: &Path) -> Result<(BlobHash, u64)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let size = std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok((BlobHash(*hasher.finalize().as_bytes()), size))
}

pub fn manifest(files: &[LocalFile]) -> Vec<ManifestEntry> {
    files
        .iter()
        .map(|f| ManifestEntry {
            path: f.path.clone(),
            hash: f.hash,
            size: f.size,
        })
        .collect()
}
