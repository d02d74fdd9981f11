//! The files a build leaves in `OUT_DIR` besides the library: the Rust declarations
//! (`<lib>.rs`) and the `attention!` manifest (`<lib>.attn-manifest`), written atomically.

use crate::Error;
use attn_runtime::syntax::{MANIFEST_EXTENSION, Manifest};
use std::{
    fs,
    path::{Path, PathBuf},
};

/// Writes `out_dir/<lib_name>.rs` (the `bindings` text) and the manifest; returns the path of the
/// former.
pub(super) fn write_outputs(
    lib_name: &str,
    out_dir: &Path,
    manifest: &Manifest,
    bindings: &str,
) -> Result<PathBuf, Error> {
    let path = out_dir.join(format!("{lib_name}.rs"));
    write_atomic(&path, bindings.as_bytes())?;
    let manifest_path = out_dir.join(format!("{lib_name}.{MANIFEST_EXTENSION}"));
    write_atomic(&manifest_path, manifest.render().as_bytes())?;
    Ok(path)
}

/// A suffix no other temporary file of this process or another one has: builds in several
/// threads of one process (tests, tools, the workers of one build) may share a cache too.
pub(super) fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `bytes` to a temporary file next to `path`, then renames it: readers never see a
/// partial file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension(format!("tmp{}", unique_suffix()));
    fs::write(&tmp, bytes).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(format!("moving {}", tmp.display()), e))
}
