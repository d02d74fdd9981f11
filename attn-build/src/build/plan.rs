//! Planning a build: every kernel with its symbol and where it is declared (the
//! `Build::kernel` calls, then the `attention!` kernels of the listed files), and the manifest
//! that tells the `attention!` macro what was found.

use crate::{
    Error,
    graph::{KernelDef, TensorType},
    pipeline::PIPELINE_VERSION,
    scan,
};
use attn_runtime::{
    hash::fnv1a,
    syntax::{Manifest, ManifestDuplicate, ManifestFile, ManifestKernel},
};
use std::{
    collections::{BTreeMap, HashSet},
    env,
    path::PathBuf,
};

/// One kernel of a build: its definition, symbol, and where it is declared (`file:line`).
pub(super) struct Planned {
    pub def: KernelDef,
    pub symbol: String,
    #[cfg_attr(not(feature = "codegen"), allow(dead_code))]
    pub location: String,
}

/// The kernels of a build with their symbols, and the manifest for `attention!`.
pub(super) struct Plan {
    /// The explicit kernels (`Build::kernel`, in call order), then those of the files.
    pub kernels: Vec<Planned>,
    /// How many of `kernels` are explicit: they get bindings and one variant per ISA level.
    pub explicit: usize,
    pub manifest: Manifest,
}

/// Plans the kernels added with `Build::kernel` (`explicit`, declared at `locations`) and those
/// of `files` (relative to `CARGO_MANIFEST_DIR`). With `cargo_metadata`, a file that does not
/// parse is reported as a `cargo:warning`.
pub(super) fn plan(
    explicit: &[KernelDef],
    locations: &[String],
    files: &[PathBuf],
    cargo_metadata: bool,
) -> Result<Plan, Error> {
    let mut names = HashSet::new();
    for k in explicit {
        check_identifier(&k.name)?;
        if !names.insert(k.name.clone()) {
            return Err(Error::Config(format!("two kernels are named `{}`", k.name)));
        }
    }
    let mut kernels: Vec<Planned> = explicit
        .iter()
        .zip(locations)
        .map(|(k, at)| Planned {
            def: k.clone(),
            symbol: symbol_name(k),
            location: at.clone(),
        })
        .collect();
    let mut manifest = Manifest::default();
    let mut found = Vec::new();
    let mut seen_files = HashSet::new();
    let base = env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    for file in files {
        let path = match &base {
            Some(b) if file.is_relative() => b.join(file),
            _ => file.clone(),
        };
        let canonical = path.canonicalize().map_err(|e| {
            Error::io(
                format!("reading {} (given to Build::file)", path.display()),
                e,
            )
        })?;
        if !seen_files.insert(canonical.clone()) {
            continue;
        }
        let display = file.display().to_string();
        let scanned = scan::scan_file(&path, &display)?;
        if let Some(why) = scanned.unparsable
            && cargo_metadata
        {
            println!(
                "cargo:warning=attn-build: no kernels taken from {display}, which does not parse: {why}"
            );
        }
        manifest.files.push(ManifestFile {
            path: canonical.display().to_string(),
            display,
        });
        found.extend(scanned.kernels);
    }
    let mut by_name: BTreeMap<&str, Vec<&scan::Found>> = BTreeMap::new();
    for f in &found {
        by_name.entry(f.kernel.name.as_str()).or_default().push(f);
    }
    for f in &found {
        let group = &by_name[f.kernel.name.as_str()];
        if group.len() > 1 || names.contains(&f.kernel.name) {
            if std::ptr::eq(group[0], f) {
                let mut locations: Vec<String> = group.iter().map(|g| g.location.clone()).collect();
                if names.contains(&f.kernel.name) {
                    locations.push("build.rs (Build::kernel)".to_string());
                }
                manifest.duplicates.push(ManifestDuplicate {
                    name: f.kernel.name.clone(),
                    locations,
                });
            }
            continue;
        }
        let def = scan::kernel_def(&f.kernel).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{m} (declared at {})", f.location)),
            e => e,
        })?;
        kernels.push(Planned {
            def,
            symbol: f.kernel.symbol(),
            location: f.location.clone(),
        });
        manifest
            .kernels
            .push(ManifestKernel::new(&f.kernel, &f.location));
    }
    Ok(Plan {
        kernels,
        explicit: explicit.len(),
        manifest,
    })
}

/// Kernel and library names must be identifiers (they become symbols and file names).
pub(super) fn check_identifier(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "`{name}` is not a valid kernel or library name"
        )))
    }
}

/// `attn_<name>_<hash>`: the hash covers the kernel's IR and the crate version, so a caller
/// compiled against another definition fails to link instead of calling the wrong code.
fn symbol_name(k: &KernelDef) -> String {
    let ir = k.to_transformer_ir("kernel");
    let h = fnv1a(&[&ir, env!("CARGO_PKG_VERSION"), PIPELINE_VERSION]);
    format!("attn_{}_{:012x}", k.name, h & 0xffff_ffff_ffff)
}

/// Argument names and types of a kernel: the inputs, then the output, named `out`.
pub(super) fn kernel_args(k: &KernelDef) -> Vec<(String, TensorType)> {
    let mut args: Vec<(String, TensorType)> = k
        .graph
        .inputs()
        .iter()
        .map(|v| {
            (
                k.graph.input_name(*v).unwrap_or("arg").to_string(),
                k.graph.ty(*v).clone(),
            )
        })
        .collect();
    for (name, v) in k.outputs() {
        args.push((name, k.graph.ty(v).clone()));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(check_identifier("matmul_r2").is_ok());
        assert!(check_identifier("2x").is_err());
        assert!(check_identifier("a-b").is_err());
        assert!(check_identifier("").is_err());
    }
}
