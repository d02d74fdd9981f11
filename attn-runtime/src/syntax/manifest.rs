//! The manifest a build script leaves in `OUT_DIR`: which files it scanned and which kernels it
//! compiled. `attention!` reads it to tell a user which file to add to the build script.

use super::{DTYPES, Kernel};
use crate::DType;
use std::fmt::Write as _;
use std::path::Path;
use std::{fs, io};

/// Manifests are `OUT_DIR/<library>.attn-manifest`.
pub const MANIFEST_EXTENSION: &str = "attn-manifest";

const HEADER: &str = "# attn kernel manifest v2";

/// What one or more `attn_build::Build::compile` calls of a build script saw and compiled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The scanned source files.
    pub files: Vec<ManifestFile>,
    /// The compiled kernels.
    pub kernels: Vec<ManifestKernel>,
    /// Kernel names defined more than once (none of those definitions was compiled).
    pub duplicates: Vec<ManifestDuplicate>,
}

/// A scanned file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFile {
    /// The canonical absolute path.
    pub path: String,
    /// The path as given to the build script.
    pub display: String,
}

/// A compiled kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestKernel {
    /// Its name.
    pub name: String,
    /// Its symbol.
    pub symbol: String,
    /// Where it is defined (`file:line`).
    pub location: String,
    /// Its canonical spec.
    pub canonical: String,
    /// The element type of each argument: the inputs in order, then the output (empty in
    /// manifests written before element types existed).
    pub dtypes: Vec<DType>,
}

impl ManifestKernel {
    /// The record of a checked kernel defined at `location` (`file:line`).
    pub fn new(kernel: &Kernel, location: &str) -> Self {
        let mut dtypes: Vec<DType> = kernel.inputs.iter().map(|i| i.dtype).collect();
        dtypes.push(kernel.output_dtype());
        ManifestKernel {
            name: kernel.name.clone(),
            symbol: kernel.symbol(),
            location: location.to_string(),
            canonical: kernel.canonical(),
            dtypes,
        }
    }
}

fn parse_dtypes(s: &str) -> Vec<DType> {
    s.split(',')
        .filter_map(|d| DTYPES.iter().find(|(n, _)| *n == d).map(|(_, t)| *t))
        .collect()
}

/// A name defined more than once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestDuplicate {
    /// The name.
    pub name: String,
    /// Where (`file:line`).
    pub locations: Vec<String>,
}

fn clean(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

impl Manifest {
    /// The text form: one tab-separated record per line.
    pub fn render(&self) -> String {
        let mut s = format!("{HEADER}\n");
        for f in &self.files {
            let _ = writeln!(s, "file\t{}\t{}", clean(&f.path), clean(&f.display));
        }
        for k in &self.kernels {
            let dtypes: Vec<&str> = k.dtypes.iter().map(|d| d.name()).collect();
            let _ = writeln!(
                s,
                "kernel\t{}\t{}\t{}\t{}\t{}",
                clean(&k.name),
                clean(&k.symbol),
                clean(&k.location),
                clean(&k.canonical),
                dtypes.join(",")
            );
        }
        for d in &self.duplicates {
            let _ = write!(s, "duplicate\t{}", clean(&d.name));
            for l in &d.locations {
                let _ = write!(s, "\t{}", clean(l));
            }
            s.push('\n');
        }
        s
    }

    /// Parses [`Self::render`]'s output, ignoring unknown records.
    pub fn parse(text: &str) -> Manifest {
        let mut m = Manifest::default();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                ["file", path, display] => m.files.push(ManifestFile {
                    path: path.to_string(),
                    display: display.to_string(),
                }),
                ["kernel", name, symbol, location, canonical, rest @ ..] => {
                    m.kernels.push(ManifestKernel {
                        name: name.to_string(),
                        symbol: symbol.to_string(),
                        location: location.to_string(),
                        canonical: canonical.to_string(),
                        dtypes: rest.first().map(|d| parse_dtypes(d)).unwrap_or_default(),
                    })
                }
                ["duplicate", name, locations @ ..] => m.duplicates.push(ManifestDuplicate {
                    name: name.to_string(),
                    locations: locations.iter().map(|l| l.to_string()).collect(),
                }),
                _ => {}
            }
        }
        m
    }

    /// Merges every `*.attn-manifest` in `dir`; `None` when there is none.
    pub fn read_dir(dir: &Path) -> io::Result<Option<Manifest>> {
        let mut paths: Vec<_> = fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == MANIFEST_EXTENSION))
            .collect();
        if paths.is_empty() {
            return Ok(None);
        }
        paths.sort();
        let mut all = Manifest::default();
        for p in paths {
            let m = Manifest::parse(&fs::read_to_string(&p)?);
            all.files.extend(m.files);
            all.kernels.extend(m.kernels);
            all.duplicates.extend(m.duplicates);
        }
        Ok(Some(all))
    }
}
