//! Archiving the objects of a build into `lib<name>.a` with `cc`, deterministically: the same
//! objects give the same bytes whatever order the workers finished in.
//!
//! `cc` (1.2.60 and later) archives with `ar cqD` and indexes with `ar sD`: the `D` modifier
//! zeroes timestamps, uids and gids, and members are named by their file names, which in the
//! cache hash their content (`<symbol>-<key>.o`). The objects are passed sorted by file name.

use super::{report::CompiledKernel, targets::host_triple};
use crate::{Error, cache};
use std::{env, path::Path};

/// Archives the objects of every variant of `kernels` as `out_dir/lib<lib_name>.a`; with
/// `cargo_metadata`, tells Cargo to link it. Nothing is written for no kernels.
pub(super) fn archive(
    lib_name: &str,
    out_dir: &Path,
    kernels: &[CompiledKernel],
    cargo_metadata: bool,
) -> Result<(), Error> {
    if kernels.is_empty() {
        return Ok(());
    }
    let mut objects: Vec<&Path> = kernels
        .iter()
        .flat_map(|k| &k.variants)
        .map(|v| v.object.as_path())
        .collect();
    objects.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then(a.cmp(b)));
    objects.dedup();
    let mut cc = cc::Build::new();
    cc.cargo_metadata(cargo_metadata)
        .cargo_warnings(false)
        .out_dir(out_dir);
    if env::var_os("TARGET").is_none() {
        // Outside a build script (tests, the CLI): describe the host ourselves.
        let host = host_triple();
        cc.target(&host).host(&host).opt_level(3);
    }
    for object in objects {
        // Used again now: a concurrent build evicting keeps what this one is archiving.
        let _ = cache::touch(object);
        cc.object(object);
    }
    cc.try_compile(lib_name)
        .map_err(|e| Error::Archive(e.to_string()))
}
