//! The targets of a build: from Cargo's environment (`TARGET`, `HOST`, `ATTN_TARGET_CPU`,
//! `-C target-cpu`, target features), one variant per x86-64 ISA level for run-time dispatch, or
//! one target when the CPU is explicit or the architecture is not x86-64.

use crate::target::TargetSpec;
use attn_runtime::isa::Isa;
use std::env;

/// A code-generation target the build compiles kernels for.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Variant {
    /// The ISA level (`None`: the target as given, without run-time dispatch).
    pub isa: Option<Isa>,
    pub target: TargetSpec,
}

/// Every target of a build.
pub(super) struct Targets {
    /// The variants of kernels added with `Build::kernel`, best first.
    pub variants: Vec<Variant>,
    /// The target of `attention!` kernels: the explicit CPU, the host when building for the
    /// host, else the target's baseline.
    pub primary: TargetSpec,
}

impl Targets {
    /// The targets kernels are compiled for, from Cargo's environment: every x86-64 ISA level
    /// for a x86-64 target (dispatched at run time), or one target when the CPU is explicit
    /// (`ATTN_TARGET_CPU`, `-C target-cpu`) or the target is not x86-64 (cross-compiling to
    /// AArch64, say).
    pub fn resolve() -> Self {
        let host = TargetSpec::host();
        let triple = env::var("TARGET").unwrap_or_else(|_| host.triple.clone());
        // Building for the machine we run on: Cargo says so with TARGET == HOST (LLVM spells
        // the host triple its own way, e.g. `x86_64-pc-linux-gnu` for Cargo's
        // `x86_64-unknown-linux-gnu`).
        let native = match (env::var("TARGET"), env::var("HOST")) {
            (Ok(t), Ok(h)) => t == h,
            (Err(_), _) => true,
            (Ok(_), Err(_)) => false,
        };
        let explicit_cpu = env::var("ATTN_TARGET_CPU")
            .ok()
            .filter(|c| !c.is_empty())
            .or_else(rustflags_target_cpu);
        let features = env::var("CARGO_CFG_TARGET_FEATURE")
            .map(|f| {
                f.split(',')
                    .filter(|x| !x.is_empty())
                    .map(|x| format!("+{x}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let arch = triple.split('-').next().unwrap_or("");
        let single = |spec: TargetSpec| Targets {
            variants: vec![Variant {
                isa: None,
                target: spec.clone(),
            }],
            primary: spec,
        };
        if let Some(cpu) = explicit_cpu {
            return single(if cpu == "native" && native {
                host
            } else {
                TargetSpec {
                    triple,
                    cpu,
                    features,
                }
            });
        }
        if arch == "x86_64" {
            let variants = Isa::ALL
                .iter()
                .map(|isa| Variant {
                    isa: Some(*isa),
                    target: TargetSpec::new(&triple, isa.cpu()),
                })
                .collect();
            let primary = if native {
                host
            } else {
                TargetSpec::new(&triple, "x86-64")
            };
            return Targets { variants, primary };
        }
        single(TargetSpec {
            triple,
            cpu: "generic".to_string(),
            features,
        })
    }

    /// The variants of the `i`-th planned kernel, of which the first `explicit` were added with
    /// `Build::kernel`: those get one per ISA level (their bindings dispatch at run time);
    /// kernels of `attention!` one, for the primary target.
    pub fn for_kernel(&self, i: usize, explicit: usize) -> Vec<Variant> {
        if i < explicit {
            self.variants.clone()
        } else {
            vec![Variant {
                isa: None,
                target: self.primary.clone(),
            }]
        }
    }
}

/// Which of a kernel's `variants` gets its IR dumped (`ATTN_DUMP_IR`): the one this machine
/// runs, the first it supports.
#[cfg_attr(not(feature = "codegen"), allow(dead_code))]
pub(super) fn dumped_variant(variants: &[Variant]) -> Option<usize> {
    variants
        .iter()
        .position(|v| v.isa.is_none_or(|isa| isa.supported()))
}

/// `-C target-cpu=X` from the flags Cargo passes to rustc for the target.
fn rustflags_target_cpu() -> Option<String> {
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").ok()?;
    let parts: Vec<&str> = flags.split('\x1f').collect();
    parts.iter().enumerate().find_map(|(i, p)| {
        let opt = if let Some(rest) = p.strip_prefix("-C") {
            if rest.is_empty() {
                parts.get(i + 1).copied()?
            } else {
                rest
            }
        } else {
            p.strip_prefix("--codegen=")?
        };
        opt.strip_prefix("target-cpu=").map(str::to_string)
    })
}

/// The symbol of one ISA variant of a kernel.
pub(super) fn variant_symbol(symbol: &str, isa: Option<Isa>) -> String {
    match isa {
        Some(isa) => format!("{symbol}_{}", isa.tag()),
        None => symbol.to_string(),
    }
}

/// The host as `cc` wants it outside a build script (tests, tools), where Cargo's `TARGET` is
/// not set.
pub(super) fn host_triple() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}
