//! The object cache: where it lives, recency of entries, and its size bound.
//!
//! Entries are named `<symbol>-<key>.o`, where the key hashes everything that determines the
//! object (the kernel's IR, the pipeline and LLVM versions, the target): the cache holds no paths
//! and can be moved or shared freely. An entry's modification time is its last use (set when it
//! is written and when a build reuses it); when the cache outgrows its bound, the least recently
//! used entries go first.

use std::{
    collections::HashSet,
    fs, io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

/// The default size bound, in MiB (`ATTN_CACHE_MAX_MB` overrides it).
pub const DEFAULT_MAX_MB: u64 = 512;

/// Entries used this recently are never evicted, whatever the bound: another build running
/// concurrently may have just picked them and not archived them yet.
pub const EVICTION_GRACE: Duration = Duration::from_secs(3600);

/// The cache directory of a build whose `OUT_DIR` is `out_dir`: `attn-cache` in Cargo's target
/// directory, the ancestor of `<target>/[<triple>/]<profile>/build/<pkg>-<hash>/out`, so every
/// crate of a workspace and every profile share it. Outside that layout, `<out_dir>/attn-cache`.
pub fn default_dir(out_dir: &Path) -> PathBuf {
    let mut up = out_dir.ancestors();
    let (out, _pkg, build, _profile, above) =
        (up.next(), up.next(), up.next(), up.next(), up.next());
    let named =
        |p: Option<&Path>, name: &str| p.and_then(Path::file_name).is_some_and(|n| n == name);
    match above {
        Some(above) if named(out, "out") && named(build, "build") => {
            // With `--target <triple>`, `above` is `<target>/<triple>`; Cargo tags the target
            // directory itself with CACHEDIR.TAG.
            let tag = |d: &Path| d.join("CACHEDIR.TAG").is_file();
            let root = match above.parent() {
                Some(parent) if !tag(above) && tag(parent) => parent,
                _ => above,
            };
            root.join("attn-cache")
        }
        _ => out_dir.join("attn-cache"),
    }
}

/// Marks an entry as used now (its modification time), so eviction keeps it longest.
pub(crate) fn touch(path: &Path) -> io::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .set_modified(SystemTime::now())
}

/// What [`evict`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Eviction {
    /// Entries removed.
    pub removed: usize,
    /// Bytes freed.
    pub freed: u64,
    /// Bytes left in the cache.
    pub left: u64,
}

/// Removes the least recently used objects of `dir` until it holds at most `max_bytes`, never
/// touching those in `keep` (the objects of the current build) or those used within
/// [`EVICTION_GRACE`]. Temporary files left by interrupted builds are removed once they are
/// older than the grace period. Files that vanish meanwhile (another build evicting) are fine.
pub(crate) fn evict(dir: &Path, max_bytes: u64, keep: &HashSet<PathBuf>) -> io::Result<Eviction> {
    let now = SystemTime::now();
    let stale = |modified: SystemTime| {
        now.duration_since(modified)
            .is_ok_and(|age| age > EVICTION_GRACE)
    };
    let mut entries = Vec::new();
    let mut total = 0u64;
    let mut result = Eviction::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let modified = meta.modified().unwrap_or(now);
        if name.contains(".o.tmp") {
            if stale(modified) && fs::remove_file(&path).is_ok() {
                result.removed += 1;
                result.freed += meta.len();
            }
            continue;
        }
        if !name.ends_with(".o") {
            continue;
        }
        total += meta.len();
        entries.push((modified, meta.len(), path));
    }
    if total > max_bytes {
        entries.sort();
        for (modified, len, path) in entries {
            if total <= max_bytes {
                break;
            }
            if keep.contains(&path) || !stale(modified) {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => {
                    result.removed += 1;
                    result.freed += len;
                    total -= len;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => total -= len,
                Err(e) => return Err(e),
            }
        }
    }
    result.left = total;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dir_is_the_target_directory() {
        let root = std::env::temp_dir().join(format!("attn-cache-dir-{}", std::process::id()));
        let target = root.join("target");
        fs::create_dir_all(&target).unwrap();
        fs::write(
            target.join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55",
        )
        .unwrap();
        let want = target.join("attn-cache");
        for out in [
            "debug/build/attn-0123456789abcdef/out",
            "release/build/my-crate-fedcba9876543210/out",
            "x86_64-unknown-linux-gnu/release/build/attn-0123/out",
            "aarch64-unknown-linux-gnu/debug/build/attn-0123/out",
        ] {
            assert_eq!(default_dir(&target.join(out)), want, "{out}");
        }
        // Not Cargo's layout: next to the output.
        let odd = root.join("somewhere/out");
        assert_eq!(default_dir(&odd), odd.join("attn-cache"));
        let _ = fs::remove_dir_all(&root);
    }
}
