//! The views a plan reads: any tensor view seen as 4-D `[B, H, S, D]`, and the mask the kernels
//! read (the user's, or the user's merged with the key padding).

use attn_runtime::{
    Element, Error, TensorView,
    shape::{self, AttentionDims, MaskRule},
};

/// A view seen as 4-D `[B, H, S, D]` (missing leading dims: size 1, stride 0).
#[derive(Clone, Copy, Debug)]
pub(super) struct V4<'a, T> {
    pub(super) data: &'a [T],
    pub(super) strides: [usize; 4],
    pub(super) offset: usize,
}

impl<'a, T: Element> V4<'a, T> {
    pub(super) fn of(x: &TensorView<'a, T>) -> Self {
        let r = x.rank();
        let mut v = V4 {
            data: x.data(),
            strides: [0; 4],
            offset: x.offset(),
        };
        v.strides[4 - r..].copy_from_slice(x.strides());
        v
    }

    pub(super) fn mask(m: &TensorView<'a, T>, dims: &AttentionDims) -> Result<Self, Error> {
        let has = shape::mask_dims(m.shape(), dims, MaskRule::Broadcast)?;
        let mut v = V4 {
            data: m.data(),
            strides: [0; 4],
            offset: m.offset(),
        };
        let r = m.rank();
        for (i, &s) in m.strides().iter().enumerate() {
            let t = 4 - r + i;
            if has[t] {
                v.strides[t] = s;
            }
        }
        Ok(v)
    }

    pub(super) fn at(&self, b: usize, h: usize, i: usize, j: usize) -> T {
        let s = self.strides;
        self.data[self.offset + b * s[0] + h * s[1] + i * s[2] + j * s[3]]
    }

    /// Whether heads `h..h+n` can be seen as consecutive rows (`rows` per head), and the row
    /// stride of that stacking.
    pub(super) fn stack_stride(&self, rows: usize) -> Option<usize> {
        if rows == 1 {
            Some(self.strides[1])
        } else if self.strides[1] == rows * self.strides[2] {
            Some(self.strides[2])
        } else {
            None
        }
    }

    /// The 2-D sub-view `[rows, cols]` at (b, h, row0, col0) with the given row stride.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn sub(
        &self,
        b: usize,
        h: usize,
        row0: usize,
        rows: usize,
        col0: usize,
        cols: usize,
        row_stride: usize,
    ) -> Result<TensorView<'a, T>, Error> {
        let s = self.strides;
        let off = self.offset + b * s[0] + h * s[1] + row0 * row_stride + col0 * s[3];
        TensorView::from_strided(self.data, &[rows, cols], &[row_stride, s[3]], off)
    }
}

/// The mask the kernels read: the user's (a view), or the user's merged with key padding.
pub(super) enum MaskData<'a> {
    None,
    View(V4<'a, f32>),
    /// Owned data and the strides of its `[B, Hm, Sqm, Sk]` layout (0 where broadcast).
    Merged(Vec<f32>, [usize; 4]),
}

/// The mask the kernels read: the user's mask as a view (zero strides where it broadcasts),
/// merged with the key padding into one `[B, Hm, Sqm, Sk]` buffer when both are given.
pub(super) fn merge_mask<'a>(
    mask: Option<&TensorView<'a, f32>>,
    key_padding: Option<&[bool]>,
    dims: &AttentionDims,
) -> Result<MaskData<'a>, Error> {
    Ok(match (mask, key_padding) {
        (None, None) => MaskData::None,
        (Some(m), None) => MaskData::View(V4::mask(m, dims)?),
        (None, Some(p)) => MaskData::Merged(
            p.iter()
                .map(|&ok| if ok { 0.0 } else { f32::NEG_INFINITY })
                .collect(),
            [dims.sk, 0, 0, 1],
        ),
        (Some(m), Some(p)) => {
            let mv = V4::mask(m, dims)?;
            let hm = if mv.strides[1] != 0 { dims.hq } else { 1 };
            let sqm = if mv.strides[2] != 0 { dims.sq } else { 1 };
            let mut merged = Vec::with_capacity(dims.b * hm * sqm * dims.sk);
            for b in 0..dims.b {
                for h in 0..hm {
                    for i in 0..sqm {
                        for j in 0..dims.sk {
                            let x = mv.at(b, h, i, j);
                            merged.push(if p[b * dims.sk + j] {
                                x
                            } else {
                                f32::NEG_INFINITY
                            });
                        }
                    }
                }
            }
            let sh = if hm > 1 { sqm * dims.sk } else { 0 };
            let si = if sqm > 1 { dims.sk } else { 0 };
            MaskData::Merged(merged, [hm * sqm * dims.sk, sh, si, 1])
        }
    })
}
