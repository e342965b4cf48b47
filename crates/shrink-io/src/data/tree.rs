//! A read-only view of a dataset root that is either a real directory or a tar / tar.gz archive
//! read into memory, so that format detection and the loaders work the same on both.
//!
//! An archive is read sequentially once; only the members that the requested split can need are
//! kept in memory (dataset files by name, and images below a split directory near the top), the
//! others are skipped but their names are kept so that detection sees the whole tree.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::error::{one_line, show, DataError};
use super::{cifar_bin, idx, image_folder, Split};

/// How deep below the root a dataset may sit (`root/a/b/train/...`).
pub(crate) const MAX_NESTING: usize = 2;

/// One child of a directory in a [`Tree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Child {
    pub name: String,
    pub is_dir: bool,
}

/// A directory on disk or an archive in memory. Paths inside are relative, `/`-separated, and
/// `""` is the root.
pub(crate) enum Tree {
    Dir(PathBuf),
    Archive(Archive),
}

pub(crate) struct Archive {
    path: PathBuf,
    /// Every regular file: its byte range in `data`, or `None` when its contents were skipped.
    files: BTreeMap<String, Option<Range<usize>>>,
    /// The kept contents, one after the other (one allocation rather than one per member).
    data: Vec<u8>,
    dirs: BTreeSet<String>,
}

/// `dir/name`, or `name` at the root.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.') || name == "__MACOSX"
}

impl Tree {
    /// A path for messages: the file on disk, or `archive:member`.
    pub(crate) fn display(&self, rel: &str) -> String {
        match self {
            Tree::Dir(root) if rel.is_empty() => show(root),
            Tree::Dir(root) => show(&root.join(rel)),
            Tree::Archive(a) if rel.is_empty() => show(&a.path),
            Tree::Archive(a) => format!("{}:{rel}", a.path.display()),
        }
    }

    /// The children of `dir`, sorted by name, hidden entries left out.
    pub(crate) fn list(&self, dir: &str) -> Result<Vec<Child>, DataError> {
        let mut out = Vec::new();
        match self {
            Tree::Dir(root) => {
                let path = root.join(dir);
                let rd = fs::read_dir(&path).map_err(|e| DataError::io(show(&path), e))?;
                for entry in rd {
                    let entry = entry.map_err(|e| DataError::io(show(&path), e))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if is_hidden(&name) {
                        continue;
                    }
                    let Ok(mut kind) = entry.file_type() else {
                        continue;
                    };
                    if kind.is_symlink() {
                        // Follow symlinks; a dangling one is neither a file nor a directory.
                        let Ok(meta) = fs::metadata(entry.path()) else {
                            continue;
                        };
                        kind = meta.file_type();
                    }
                    if kind.is_dir() || kind.is_file() {
                        out.push(Child { name, is_dir: kind.is_dir() });
                    }
                }
            }
            Tree::Archive(a) => {
                let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
                let mut seen = BTreeSet::new();
                let below = |k: &String| k.starts_with(&prefix);
                for key in a.dirs.range(prefix.clone()..).take_while(|k| below(k)) {
                    if let Some(name) = key[prefix.len()..].split('/').next() {
                        if !name.is_empty() && !is_hidden(name) && seen.insert(name.to_string()) {
                            out.push(Child { name: name.to_string(), is_dir: true });
                        }
                    }
                }
                for key in a.files.range(prefix.clone()..).map(|(k, _)| k).take_while(|k| below(k)) {
                    let rest = &key[prefix.len()..];
                    if !rest.contains('/') && !is_hidden(rest) && seen.insert(rest.to_string()) {
                        out.push(Child { name: rest.to_string(), is_dir: false });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// All files below `dir` (recursively, hidden entries left out), sorted by path.
    pub(crate) fn files_under(&self, dir: &str) -> Result<Vec<String>, DataError> {
        let mut out = Vec::new();
        match self {
            Tree::Dir(_) => self.walk(dir, 0, &mut out)?,
            Tree::Archive(a) => {
                let prefix = format!("{dir}/");
                let under = a.files.range(prefix.clone()..).map(|(k, _)| k);
                for key in under.take_while(|k| k.starts_with(&prefix)) {
                    if !key[prefix.len()..].split('/').any(is_hidden) {
                        out.push(key.clone());
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn walk(&self, dir: &str, depth: usize, out: &mut Vec<String>) -> Result<(), DataError> {
        if depth > 32 {
            return Err(DataError::invalid(self.display(dir), "directories nested too deep (symlink loop?)"));
        }
        for child in self.list(dir)? {
            let rel = join(dir, &child.name);
            if child.is_dir {
                self.walk(&rel, depth + 1, out)?;
            } else {
                out.push(rel);
            }
        }
        Ok(())
    }

    /// The contents of a file.
    pub(crate) fn read(&self, rel: &str) -> Result<Cow<'_, [u8]>, DataError> {
        match self {
            Tree::Dir(root) => {
                let path = root.join(rel);
                fs::read(&path).map(Cow::Owned).map_err(|e| DataError::io(show(&path), e))
            }
            Tree::Archive(a) => match a.files.get(rel) {
                Some(Some(range)) => Ok(Cow::Borrowed(&a.data[range.clone()])),
                Some(None) => Err(DataError::invalid(
                    self.display(rel),
                    "archive member was skipped while reading (dataset nested too deep in the archive?)",
                )),
                None => Err(DataError::NotFound { path: self.display(rel) }),
            },
        }
    }
}

/// Does `name` look like a tar archive (by extension)?
pub(crate) fn is_archive_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".tar") || n.ends_with(".tar.gz") || n.ends_with(".tgz")
}

/// Is `name` an image file the image-folder loader reads?
pub(crate) fn is_image_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    !is_hidden(name) && (n.ends_with(".png") || n.ends_with(".jpg") || n.ends_with(".jpeg"))
}

/// Should an archive member at `comps` be kept in memory to load `split`?
fn wanted(comps: &[&str], split: Split) -> bool {
    let Some(name) = comps.last() else {
        return false;
    };
    if idx::is_idx_name(name, split)
        || cifar_bin::is_cifar_name(name, split)
        || super::cifar_pickle::is_pickle_name(name, split)
    {
        return true;
    }
    if !is_image_name(name) {
        return false;
    }
    // An image below `<split>/<class>/` whose split directory sits at most MAX_NESTING deep.
    let dirs = &comps[..comps.len() - 1];
    dirs.iter()
        .enumerate()
        .take(MAX_NESTING + 1)
        .any(|(i, d)| i + 1 < dirs.len() && image_folder::split_dir_names(split).contains(d))
}

/// Splits a member path into clean components; `None` for paths that leave the archive root.
fn components(raw: &str) -> Option<Vec<&str>> {
    let mut comps = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => comps.push(c),
        }
    }
    Some(comps)
}

/// Reads a `.tar`, `.tar.gz` or `.tgz` archive (gzip is recognized by its magic bytes, whatever
/// the extension), keeping the members that `split` can need.
pub(crate) fn read_archive(path: &Path, split: Split) -> Result<Archive, DataError> {
    let name = show(path);
    let mut file = fs::File::open(path).map_err(|e| DataError::io(&name, e))?;
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut file, &mut magic).map_err(|e| DataError::io(&name, e))?;
    let gz = n == 2 && magic == [0x1f, 0x8b];
    let file = fs::File::open(path).map_err(|e| DataError::io(&name, e))?;
    let buffered = BufReader::with_capacity(1 << 20, file);
    let archive_err =
        |e: io::Error| DataError::Archive { path: name.clone(), detail: one_line(&e.to_string()) };
    let reader: Box<dyn Read> =
        if gz { Box::new(flate2::read::MultiGzDecoder::new(buffered)) } else { Box::new(buffered) };
    let mut ar = tar::Archive::new(reader);
    let mut files = BTreeMap::new();
    let mut data = Vec::new();
    let mut dirs = BTreeSet::new();
    let mut members = 0usize;
    for entry in ar.entries().map_err(archive_err)? {
        let mut entry = entry.map_err(archive_err)?;
        members += 1;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(comps) = components(&raw) else {
            continue;
        };
        if comps.is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        for i in 1..comps.len() {
            dirs.insert(comps[..i].join("/"));
        }
        let rel = comps.join("/");
        if kind.is_dir() {
            dirs.insert(rel);
            continue;
        }
        if !kind.is_file() {
            continue; // links, devices, fifos: not dataset content
        }
        if wanted(&comps, split) {
            let size = entry.size();
            // The header's size is not trusted for an allocation: the buffer grows with the data.
            let start = data.len();
            entry.read_to_end(&mut data).map_err(archive_err)?;
            let got = (data.len() - start) as u64;
            if got != size {
                return Err(DataError::Archive {
                    path: name.clone(),
                    detail: format!("member `{rel}` is truncated: header says {size} bytes, got {got}"),
                });
            }
            files.insert(rel, Some(start..data.len()));
        } else {
            files.insert(rel, None);
        }
    }
    // Read what follows the end-of-archive marker so that gzip checks its CRC and length.
    let mut rest = ar.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(archive_err)?;
    if members == 0 {
        return Err(DataError::Archive { path: name, detail: "archive has no members".to_string() });
    }
    Ok(Archive { path: path.to_path_buf(), files, data, dirs })
}

/// Reads until `buf` is full or the reader ends; returns how many bytes were read.
pub(crate) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
