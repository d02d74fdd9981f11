//! Which masks an attention takes.

/// Which masks an attention takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaskRule {
    /// Any mask that broadcasts to `[B, Hq, Sq, Sk]`: its dims aligned to the right, each 1 or
    /// equal (`[Sq, Sk]`, `[B, 1, Sq, Sk]`, `[1, Sk]`, ...). The run-time API and the reference
    /// take these (broadcast dims are read through zero strides).
    Broadcast,
    /// [`MaskRule::Broadcast`] restricted to what compiled kernels take (`attention!` kernels,
    /// the graph API, the lowering): rank 2 (`[Sq, Sk]`) or q's rank, and `Sq` and `Sk` never
    /// broadcast, e.g. `[1, 1, Sq, Sk]`, `[B, 1, Sq, Sk]`, `[B, Hq, Sq, Sk]`. The generated
    /// wrapper slices such a mask per batch and head (reading broadcast leading dims at index
    /// 0); the 2-D kernel reads every row of its `[Sq, Sk]` slice.
    Compiled,
}
