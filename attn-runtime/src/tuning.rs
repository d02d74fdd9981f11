//! Every tunable of attn in one place: the register tiles of the generated kernels per target
//! (read by `attn-build` when it generates them), the decode path's sizes, and the thresholds
//! of the Rust-side work splitting (read by `attn` at run time).
//!
//! Plain data, no LLVM: the build-time generator and the run-time splitter share these numbers,
//! so a retuning is a change of this file only. `scripts/tune.sh` measures candidates.

/// Register tiling of the fused attention kernel for one vector ISA, in f32 lanes (an f64
/// kernel uses half as many lanes per vector: [`Tiling::lanes_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tiling {
    /// Vector width in f32 lanes (8 for AVX2, 16 for AVX-512).
    pub w: usize,
    /// Query rows per micro-block (rows of the score tile).
    pub br: usize,
    /// Vectors per row of the score tile (`BC = bc_vecs * w` keys per block).
    pub bc_vecs: usize,
    /// Vectors of Dv per P.V register tile.
    pub pv_vecs: usize,
    /// Query rows per super-block (the packed K/V panels are reused across them).
    pub qs: usize,
    /// Emit `LLVM-MCA-BEGIN/END` markers around the hot loops (for `scripts/mca.sh`; analysis
    /// only, never in built objects).
    pub mca_markers: bool,
}

impl Tiling {
    /// 16 ymm registers: a 4 x 24 score tile (12 accumulators) and 4 x 24 P.V tiles.
    pub const AVX2: Tiling = Tiling {
        w: 8,
        br: 4,
        bc_vecs: 3,
        pv_vecs: 3,
        qs: 256,
        mca_markers: false,
    };

    /// 32 zmm registers: an 8 x 48 score tile (24 accumulators: 3 K vectors and 8 broadcast
    /// Q values per step of D, so the loop is bound by its FMAs, not by its loads or loop
    /// overhead; llvm-mca (skylake-avx512): 99% of the FMA ports against 88% for 8 x 32) and
    /// 8 x 48 P.V tiles.
    pub const AVX512: Tiling = Tiling {
        w: 16,
        br: 8,
        bc_vecs: 3,
        pv_vecs: 3,
        qs: 256,
        mca_markers: false,
    };

    /// Zen 4 and Zen 5 (AVX-512 on 256-bit halves): a 4 x 64 score tile and 4 x 64 P.V tiles.
    /// llvm-mca (znver4, `scripts/mca.sh --cpus znver4 --tiling ..`): 26.3 flops per cycle in
    /// the score tile and 25.8 in the P.V tile, against 24.9 and 24.3 for the Intel 8 x 48
    /// tiles ([`Tiling::AVX512`]); the softmax costs the same per score.
    pub const ZEN4: Tiling = Tiling {
        w: 16,
        br: 4,
        bc_vecs: 4,
        pv_vecs: 4,
        qs: 256,
        mca_markers: false,
    };

    /// The tiling for a code-generation target (LLVM architecture, CPU name, feature string):
    /// per CPU family where one is named (Zen 4/5: [`Tiling::ZEN4`]), else AVX-512 tiles when
    /// the target has AVX-512F, else the 16-register tiles (AVX2; also used for baseline x86-64
    /// and AArch64, where LLVM splits the 8-lane vectors). The ISA-level variants of attn's own
    /// kernels (`x86-64-v4`, ...) name no family and get the Intel tiles.
    pub fn for_target(arch: &str, cpu: &str, features: &str) -> Tiling {
        const AVX512_CPUS: [&str; 6] = [
            "x86-64-v4",
            "skylake-avx512",
            "icelake-server",
            "sapphirerapids",
            "znver4",
            "znver5",
        ];
        let features_say = features.split(',').any(|f| f == "+avx512f");
        if arch == "x86_64" && matches!(cpu, "znver4" | "znver5") {
            Tiling::ZEN4
        } else if arch == "x86_64" && (features_say || AVX512_CPUS.contains(&cpu)) {
            Tiling::AVX512
        } else {
            Tiling::AVX2
        }
    }

    /// The same tiling in lanes of a compute type of `bits` bits (64: half the lanes of f32).
    pub fn lanes_of(&self, bits: u32) -> Tiling {
        let mut t = *self;
        if bits == 64 {
            t.w /= 2;
        }
        t
    }

    /// Keys per block of the score tile.
    pub fn bc(&self) -> usize {
        self.bc_vecs * self.w
    }

    /// A short tag naming the tiling in symbol names (`w16r8c2p3q256`; `_mca` with markers).
    pub fn tag(&self) -> String {
        format!(
            "w{}r{}c{}p{}q{}{}",
            self.w,
            self.br,
            self.bc_vecs,
            self.pv_vecs,
            self.qs,
            if self.mca_markers { "_mca" } else { "" }
        )
    }

    /// Parses a tag as [`Tiling::tag`] writes it (`w16r8c2p3q256`), checking that the tiles fit:
    /// `w` 4, 8 or 16, `br` a power of two at most `w`, `qs` a multiple of `br`, and at most 32
    /// vector registers for the score tile and for the P.V tile.
    pub fn parse(tag: &str) -> Result<Tiling, String> {
        let err = |why: &str| format!("tiling `{tag}`: {why} (expected e.g. `w16r8c2p3q256`)");
        let (body, markers) = match tag.strip_suffix("_mca") {
            Some(b) => (b, true),
            None => (tag, false),
        };
        let mut vals = [0usize; 5];
        let mut rest = body;
        for (i, key) in ['w', 'r', 'c', 'p', 'q'].into_iter().enumerate() {
            rest = rest
                .strip_prefix(key)
                .ok_or_else(|| err(&format!("missing `{key}`")))?;
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            vals[i] = rest[..end]
                .parse()
                .map_err(|_| err(&format!("`{key}` needs a number")))?;
            rest = &rest[end..];
        }
        if !rest.is_empty() {
            return Err(err(&format!("unexpected `{rest}`")));
        }
        let [w, br, bc_vecs, pv_vecs, qs] = vals;
        let t = Tiling {
            w,
            br,
            bc_vecs,
            pv_vecs,
            qs,
            mca_markers: markers,
        };
        if ![4, 8, 16].contains(&w) {
            return Err(err("`w` must be 4, 8 or 16"));
        }
        if !br.is_power_of_two() || br > w {
            return Err(err("`r` must be a power of two at most `w`"));
        }
        if bc_vecs == 0 || pv_vecs == 0 || qs == 0 || qs % br != 0 {
            return Err(err(
                "`c`, `p` must be positive and `q` a positive multiple of `r`",
            ));
        }
        let regs = if w == 16 { 32 } else { 16 };
        if br * bc_vecs + bc_vecs + 1 > regs || br * pv_vecs + pv_vecs + 1 > regs {
            return Err(err(&format!(
                "the tiles need more than the {regs} vector registers of this width"
            )));
        }
        Ok(t)
    }
}

/// The largest scratch (bytes) a kernel call may use to keep the packed K/V panels of all its
/// keys, so that later super-blocks of query rows reuse them instead of packing again; above it,
/// each super-block packs its key blocks anew.
pub const PANEL_CACHE_BYTES: usize = 8 << 20;

/// The most query rows a kernel call may have to take the streaming decode path (K and V read
/// in place instead of packed).
pub const DECODE_ROWS: usize = 8;

/// Score vectors (of `w` keys each) per key block of the decode path.
pub const DECODE_BLOCK_VECS: usize = 2;

/// Vectors of Dv per P.V tile of the decode path (a power of two): one query row's tile is one
/// chain of dependent FMAs per vector, so it takes about this many chains to keep the FMA units
/// busy. K and V are read without software prefetch: measured on Emerald Rapids (AVX-512),
/// prefetching ahead (T2, 16 to 64 KiB; T0, 2 to 8 KiB) was 0 to 25% slower than leaving the
/// streams to the hardware prefetcher.
pub const DECODE_PV_VECS: usize = 8;

/// Register tiling of the f32 matmul primitive for one vector ISA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatmulTiling {
    /// Vector width in f32 lanes.
    pub w: usize,
    /// Rows of a micro-tile (A values broadcast per k).
    pub mr: usize,
    /// Vectors per row of a micro-tile (`NR = nr_vecs * w` columns).
    pub nr_vecs: usize,
    /// Columns of B packed at once (a multiple of `NR`).
    pub nc: usize,
}

impl MatmulTiling {
    /// 16 ymm registers: 4 x 24 tiles (12 accumulators, 3 B vectors, 1 broadcast).
    pub const AVX2: MatmulTiling = MatmulTiling {
        w: 8,
        mr: 4,
        nr_vecs: 3,
        nc: 192,
    };

    /// 32 zmm registers: 8 x 48 tiles (24 accumulators, 3 B vectors, 1 broadcast).
    pub const AVX512: MatmulTiling = MatmulTiling {
        w: 16,
        mr: 8,
        nr_vecs: 3,
        nc: 192,
    };

    /// The matmul tiling of the vector width of an attention tiling.
    pub fn for_tiling(t: &Tiling) -> MatmulTiling {
        if t.w >= 16 {
            MatmulTiling::AVX512
        } else {
            MatmulTiling::AVX2
        }
    }

    /// Columns per micro-tile.
    pub fn nr(&self) -> usize {
        self.nr_vecs * self.w
    }

    /// A short tag naming the tiling in symbol names.
    pub fn tag(&self) -> String {
        format!("w{}m{}n{}c{}", self.w, self.mr, self.nr_vecs, self.nc)
    }
}

/// Vectors per step of the softmax primitive's max and exp loops (independent accumulators).
pub const SOFTMAX_UNROLL: usize = 2;

/// Below this many flops an attention call runs on the calling thread only.
pub const PARALLEL_MIN_FLOPS: usize = 1 << 23;

/// Work items per thread an attention call is split into (more than one, for balance).
pub const ITEMS_PER_THREAD: usize = 4;

/// Work items per thread when rows see different numbers of keys (causal, windows): smaller
/// items, split among the threads by their cost (visible keys), balance better.
pub const BANDED_ITEMS_PER_THREAD: usize = 16;

/// The fewest query rows per work item.
pub const MIN_ITEM_ROWS: usize = 16;

/// Split-KV decoding: the keys of a group of query rows are split into chunks of this many
/// keys (fixed, never derived from the thread count, so results do not depend on it), computed
/// as separate work items and merged by their log-sum-exp.
pub const SPLIT_KV_KEYS: usize = 2048;

/// Split-KV decoding applies when a group's stacked query rows (query heads per key/value head
/// times `Sq`) are at most this many, and there are more than [`SPLIT_KV_KEYS`] keys. At most
/// [`MIN_ITEM_ROWS`], so that such a group is one work item whatever the thread count.
pub const SPLIT_KV_MAX_ROWS: usize = 16;

const _: () = assert!(SPLIT_KV_MAX_ROWS <= MIN_ITEM_ROWS && SPLIT_KV_KEYS > 0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilings_per_target() {
        assert_eq!(
            Tiling::for_target("x86_64", "znver3", "+avx2"),
            Tiling::AVX2
        );
        assert_eq!(
            Tiling::for_target("x86_64", "generic", "+avx2,+avx512f"),
            Tiling::AVX512
        );
        assert_eq!(
            Tiling::for_target("x86_64", "sapphirerapids", ""),
            Tiling::AVX512
        );
        assert_eq!(
            Tiling::for_target("aarch64", "neoverse-v2", ""),
            Tiling::AVX2
        );
        assert_eq!(
            Tiling::for_target("x86_64", "znver4", "+avx512f"),
            Tiling::ZEN4
        );
        assert_eq!(Tiling::parse(&Tiling::ZEN4.tag()), Ok(Tiling::ZEN4));
        assert_eq!(Tiling::AVX2.lanes_of(64).w, 4);
        assert_eq!(Tiling::AVX512.lanes_of(32).w, 16);
        assert_eq!(Tiling::AVX512.bc(), 48);
        assert_eq!(
            MatmulTiling::for_tiling(&Tiling::AVX512),
            MatmulTiling::AVX512
        );
    }

    #[test]
    fn tags_parse_back() {
        for t in [Tiling::AVX2, Tiling::AVX512] {
            assert_eq!(Tiling::parse(&t.tag()), Ok(t));
        }
        let m = Tiling::parse("w16r8c2p3q256_mca").unwrap();
        assert!(m.mca_markers);
        assert!(Tiling::parse("w16r8c3p3q512").is_ok());
        for bad in [
            "",
            "w16",
            "w12r4c2p3q256",
            "w16r6c2p3q256",
            "w16r8c4p3q256",
            "w8r4c3p3q254",
            "w16r8c2p3q256x",
        ] {
            assert!(Tiling::parse(bad).is_err(), "{bad}");
        }
    }
}
