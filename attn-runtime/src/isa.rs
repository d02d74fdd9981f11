//! Run-time selection among kernels compiled for several x86-64 ISA levels.
//!
//! A binary built on an AVX-512 machine carries each default kernel three times (x86-64-v4,
//! x86-64-v3, baseline x86-64) and picks, per call, the best level the running CPU supports.
//! `ATTN_ISA=v1|v3|v4` (or [`force`]) selects a lower level, e.g. to test every variant.

use crate::Error;
use std::sync::{
    OnceLock,
    atomic::{AtomicU8, Ordering},
};

/// An x86-64 micro-architecture level a kernel variant was compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Baseline x86-64 (SSE2): runs on every x86-64 CPU.
    X86_64 = 1,
    /// x86-64-v3: AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE.
    X86_64V3 = 3,
    /// x86-64-v4: AVX-512 F/BW/CD/DQ/VL on top of v3.
    X86_64V4 = 4,
}

impl Isa {
    /// All levels, best first.
    pub const ALL: [Isa; 3] = [Isa::X86_64V4, Isa::X86_64V3, Isa::X86_64];

    /// The LLVM CPU name of the level (`x86-64-v4`, ...).
    pub const fn cpu(self) -> &'static str {
        match self {
            Isa::X86_64 => "x86-64",
            Isa::X86_64V3 => "x86-64-v3",
            Isa::X86_64V4 => "x86-64-v4",
        }
    }

    /// A short tag (`v1`, `v3`, `v4`), used in symbol names and `ATTN_ISA`.
    pub const fn tag(self) -> &'static str {
        match self {
            Isa::X86_64 => "v1",
            Isa::X86_64V3 => "v3",
            Isa::X86_64V4 => "v4",
        }
    }

    /// Parses `v1`/`x86-64`/`baseline`, `v3`/`x86-64-v3`/`avx2`, `v4`/`x86-64-v4`/`avx512`.
    pub fn from_name(name: &str) -> Option<Isa> {
        match name.trim().to_ascii_lowercase().as_str() {
            "v1" | "x86-64" | "baseline" | "sse2" => Some(Isa::X86_64),
            "v3" | "x86-64-v3" | "avx2" => Some(Isa::X86_64V3),
            "v4" | "x86-64-v4" | "avx512" => Some(Isa::X86_64V4),
            _ => None,
        }
    }

    /// Whether the running CPU can execute code of this level.
    pub fn supported(self) -> bool {
        self <= detected()
    }
}

/// The best level the running CPU supports.
pub fn detected() -> Isa {
    static DETECTED: OnceLock<Isa> = OnceLock::new();
    *DETECTED.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Isa {
    use std::arch::is_x86_feature_detected as has;
    let v3 = has!("avx2")
        && has!("fma")
        && has!("bmi1")
        && has!("bmi2")
        && has!("f16c")
        && has!("lzcnt")
        && has!("movbe");
    let v4 = v3
        && has!("avx512f")
        && has!("avx512bw")
        && has!("avx512cd")
        && has!("avx512dq")
        && has!("avx512vl");
    if v4 {
        Isa::X86_64V4
    } else if v3 {
        Isa::X86_64V3
    } else {
        Isa::X86_64
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Isa {
    Isa::X86_64
}

/// 0: no override.
static FORCED: AtomicU8 = AtomicU8::new(0);

fn from_env() -> Option<Isa> {
    static ENV: OnceLock<Option<Isa>> = OnceLock::new();
    *ENV.get_or_init(|| {
        std::env::var("ATTN_ISA")
            .ok()
            .and_then(|s| Isa::from_name(&s))
            .filter(|i| i.supported())
    })
}

/// The level kernels run at: [`force`]d, else `ATTN_ISA` (when supported), else [`detected`].
pub fn active() -> Isa {
    match FORCED.load(Ordering::Relaxed) {
        1 => Isa::X86_64,
        3 => Isa::X86_64V3,
        4 => Isa::X86_64V4,
        _ => from_env().unwrap_or_else(detected),
    }
}

/// Runs kernels at `isa` (at most), or back at the default with `None`. Fails, changing nothing,
/// if this CPU cannot execute `isa`. Calls already running keep the variant they picked.
///
/// ```
/// use attn_runtime::isa::{self, Isa};
/// isa::force(Some(Isa::X86_64))?;
/// assert_eq!(isa::active(), Isa::X86_64);
/// isa::force(None)?;
/// # Ok::<(), attn_runtime::Error>(())
/// ```
pub fn force(isa: Option<Isa>) -> Result<(), Error> {
    match isa {
        Some(i) if !i.supported() => Err(Error::Unsupported {
            op: "isa::force",
            message: format!(
                "this CPU cannot run {} code (it supports up to {})",
                i.cpu(),
                detected().cpu()
            ),
        }),
        Some(i) => {
            FORCED.store(i as u8, Ordering::Relaxed);
            Ok(())
        }
        None => {
            FORCED.store(0, Ordering::Relaxed);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order() {
        for i in Isa::ALL {
            assert_eq!(Isa::from_name(i.tag()), Some(i));
            assert_eq!(Isa::from_name(i.cpu()), Some(i));
        }
        assert_eq!(Isa::from_name("avx2"), Some(Isa::X86_64V3));
        assert!(Isa::from_name("v2").is_none());
        assert!(Isa::X86_64 < Isa::X86_64V3 && Isa::X86_64V3 < Isa::X86_64V4);
        assert!(Isa::X86_64.supported());
    }
}
