//! How one attention call is computed: the work items (query row blocks of a head or of a
//! stacked head group, and key chunks for split-KV decoding), the kernel each item calls with
//! its per-row parameters, the threads that run the items, and the merge of key chunks.

use super::AttentionElement;
use crate::merge::merge_weights;
use attn_runtime::{
    DynMemRef, Element, Error, TensorView, TensorViewMut,
    options::AttentionOptions,
    shape::{self, AttentionDims, MaskRule},
    tuning,
};
use std::ops::Range;

/// The largest position (and window side) the kernels take exactly: they are f32.
const EXACT_F32: usize = 1 << 24;

/// A view seen as 4-D `[B, H, S, D]` (missing leading dims: size 1, stride 0).
#[derive(Clone, Copy, Debug)]
pub(super) struct V4<'a, T> {
    data: &'a [T],
    strides: [usize; 4],
    offset: usize,
}

impl<'a, T: Element> V4<'a, T> {
    fn of(x: &TensorView<'a, T>) -> Self {
        let r = x.rank();
        let mut v = V4 {
            data: x.data(),
            strides: [0; 4],
            offset: x.offset(),
        };
        v.strides[4 - r..].copy_from_slice(x.strides());
        v
    }

    fn mask(m: &TensorView<'a, T>, dims: &AttentionDims) -> Result<Self, Error> {
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

    fn at(&self, b: usize, h: usize, i: usize, j: usize) -> T {
        let s = self.strides;
        self.data[self.offset + b * s[0] + h * s[1] + i * s[2] + j * s[3]]
    }

    /// Whether heads `h..h+n` can be seen as consecutive rows (`rows` per head), and the row
    /// stride of that stacking.
    fn stack_stride(&self, rows: usize) -> Option<usize> {
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
    fn sub(
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
enum MaskData<'a> {
    None,
    View(V4<'a, f32>),
    /// Owned data and the strides of its `[B, Hm, Sqm, Sk]` layout (0 where broadcast).
    Merged(Vec<f32>, [usize; 4]),
}

/// One piece of work: rows `row0..row0 + rows` of unit `unit` (a head, or a stacked group),
/// over key chunk `chunk` (split-KV; 0 otherwise).
#[derive(Clone, Copy, Debug)]
struct Item {
    unit: usize,
    row0: usize,
    rows: usize,
    chunk: usize,
}

/// Per-thread buffers of the kernels' per-row parameters.
#[derive(Default)]
struct Scratch {
    positions: Vec<f32>,
    sinks: Vec<f32>,
    slopes: Vec<f32>,
}

pub(super) struct Plan<'a, T: AttentionElement> {
    d: AttentionDims,
    q: V4<'a, T>,
    k: V4<'a, T>,
    v: V4<'a, T>,
    mask: MaskData<'a>,
    options: AttentionOptions,
    scale: f64,
    alibi: Option<&'a [f32]>,
    sinks: Option<&'a [f32]>,
    /// The rank-2 kernel with every option (else the dense one).
    opts: bool,
    /// Key chunk size when the keys are split (split-KV decoding).
    split: Option<usize>,
    /// Query heads per unit (the group size when stacked, else 1).
    heads: usize,
    /// Rows per unit (`heads * Sq`).
    rows: usize,
    units: usize,
    q_rs: usize,
    m_rs: usize,
    flops: usize,
}

impl<'a, T: AttentionElement> Plan<'a, T> {
    /// Plans a call whose arguments were checked (shapes, options, per-head lengths, padding
    /// length); checks the mask's shape and that positions fit the kernels' f32.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        d: AttentionDims,
        (q, k, v): (TensorView<'a, T>, TensorView<'a, T>, TensorView<'a, T>),
        mask: Option<&TensorView<'a, f32>>,
        key_padding: Option<&[bool]>,
        options: AttentionOptions,
        alibi: Option<&'a [f32]>,
        sinks: Option<&'a [f32]>,
        lse: bool,
    ) -> Result<Self, Error> {
        let positional = options.causal || options.window.is_some() || alibi.is_some();
        if positional && d.sq.saturating_add(d.sk) >= EXACT_F32 {
            return Err(Error::Unsupported {
                op: "attention",
                message: format!(
                    "causal, window and alibi need Sq + Sk below 2^24 = {EXACT_F32} (the kernels \
                     take positions as f32); got Sq = {}, Sk = {}",
                    d.sq, d.sk
                ),
            });
        }
        let mask = merge_mask(mask, key_padding, &d)?;
        let (q, k, v) = (V4::of(&q), V4::of(&k), V4::of(&v));
        let g = d.group();
        let mask_stack = match &mask {
            MaskData::None => Some(0),
            MaskData::View(m) => m.stack_stride(d.sq),
            MaskData::Merged(_, st) => V4 {
                data: &[0.0f32][..],
                strides: *st,
                offset: 0,
            }
            .stack_stride(d.sq),
        };
        let stacked = match (g > 1, q.stack_stride(d.sq), mask_stack) {
            (true, Some(qs), Some(ms)) => Some((qs, ms)),
            _ => None,
        };
        let m_row = match &mask {
            MaskData::None => 0,
            MaskData::View(m) => m.strides[2],
            MaskData::Merged(_, st) => st[2],
        };
        let (heads, q_rs, m_rs) = match stacked {
            Some((qs, ms)) => (g, qs, ms),
            None => (1, q.strides[2], m_row),
        };
        let rows = heads * d.sq;
        let split = (rows <= tuning::SPLIT_KV_MAX_ROWS && d.sk > tuning::SPLIT_KV_KEYS)
            .then_some(tuning::SPLIT_KV_KEYS);
        let opts = lse
            || split.is_some()
            || !matches!(mask, MaskData::None)
            || options.causal
            || options.window.is_some()
            || options.softcap.is_some()
            || alibi.is_some()
            || sinks.is_some();
        let flops = [d.b, d.hq, d.sq, d.sk, d.d.max(d.dv), 4]
            .iter()
            .fold(1usize, |a, &b| a.saturating_mul(b));
        Ok(Plan {
            d,
            q,
            k,
            v,
            mask,
            options,
            scale: options.scale_for(d.d),
            alibi,
            sinks,
            opts,
            split,
            heads,
            rows,
            units: d.b * d.hq / heads,
            q_rs,
            m_rs,
            flops,
        })
    }

    /// The mask as a 4-D view, if any.
    fn mask_view(&self) -> Option<V4<'_, f32>> {
        match &self.mask {
            MaskData::None => None,
            MaskData::View(m) => Some(*m),
            MaskData::Merged(data, st) => Some(V4 {
                data,
                strides: *st,
                offset: 0,
            }),
        }
    }

    /// Splits each unit's rows into blocks (more pieces than threads, for balance); returns
    /// (blocks per unit, rows per block). Split-KV units are one block.
    fn blocking(&self, threads: usize) -> (usize, usize) {
        if self.split.is_some() {
            return (1, self.rows);
        }
        let per_thread = if self.banded() {
            tuning::BANDED_ITEMS_PER_THREAD
        } else {
            tuning::ITEMS_PER_THREAD
        };
        let target = threads.saturating_mul(per_thread).max(1);
        let blocks = target
            .div_ceil(self.units)
            .clamp(1, self.rows.div_ceil(tuning::MIN_ITEM_ROWS).max(1));
        let block = self.rows.div_ceil(blocks);
        (self.rows.div_ceil(block), block)
    }

    /// Whether rows see different numbers of keys (causal or a window), so that equal row
    /// blocks are unequal work.
    fn banded(&self) -> bool {
        self.options.causal || self.options.window.is_some()
    }

    /// The work of an item, in key visits: each row's visible keys (all keys of its chunk
    /// unless banded), plus a per-row share for the softmax, packing and call overheads.
    fn item_cost(&self, it: &Item) -> u64 {
        const ROW_OVERHEAD: u64 = 64;
        let keys = self
            .split
            .map_or(self.d.sk, |c| c.min(self.d.sk - it.chunk * c));
        if !self.banded() {
            return it.rows as u64 * (keys as u64 + ROW_OVERHEAD);
        }
        let last = self.d.sk as i64 - 1;
        (it.row0..it.row0 + it.rows)
            .map(|r| {
                let (lo, hi) = self.options.key_bounds(self.position(r));
                let (lo, hi) = (lo.unwrap_or(0).max(0), hi.unwrap_or(last).min(last));
                (hi - lo + 1).max(0) as u64 + ROW_OVERHEAD
            })
            .sum()
    }

    /// Key chunks per unit (1 without split-KV).
    fn chunks(&self) -> usize {
        self.split.map_or(1, |c| self.d.sk.div_ceil(c))
    }

    fn item(&self, i: usize, (blocks, block): (usize, usize)) -> Item {
        let per_unit = blocks * self.chunks();
        let (unit, rest) = (i / per_unit, i % per_unit);
        let (b, chunk) = (rest / self.chunks(), rest % self.chunks());
        let row0 = b * block;
        Item {
            unit,
            row0,
            rows: block.min(self.rows - row0),
            chunk,
        }
    }

    /// The bottom-right aligned position of stacked row `r`.
    fn position(&self, r: usize) -> i64 {
        (r % self.d.sq) as i64 + self.d.sk as i64 - self.d.sq as i64
    }

    /// The keys `[k0, k1)` that some row of `row0..row0 + rows` sees (causal, window).
    fn key_range(&self, row0: usize, rows: usize) -> (usize, usize) {
        if !self.options.causal && self.options.window.is_none() {
            return (0, self.d.sk);
        }
        let last = self.d.sk as i64 - 1;
        let (mut k0, mut k1) = (i64::MAX, 0i64);
        for r in row0..row0 + rows {
            let (lo, hi) = self.options.key_bounds(self.position(r));
            let (lo, hi) = (lo.unwrap_or(0).max(0), hi.unwrap_or(last).min(last));
            if lo <= hi {
                k0 = k0.min(lo);
                k1 = k1.max(hi + 1);
            }
        }
        if k0 >= k1 {
            (0, 0)
        } else {
            (k0 as usize, k1 as usize)
        }
    }

    /// The kernels' window parameter `[left, right]` (infinite: unbounded; causal is
    /// `right = min(right, 0)`).
    fn window_param(&self) -> [f32; 2] {
        let side = |n: usize| {
            if n >= EXACT_F32 {
                f32::INFINITY
            } else {
                n as f32
            }
        };
        let (l, r) = self
            .options
            .window
            .map_or((f32::INFINITY, f32::INFINITY), |(l, r)| (side(l), side(r)));
        [l, if self.options.causal { r.min(0.0) } else { r }]
    }

    /// Runs the call into `out` (contiguous, q's shape with Dv last) and, when given, `lse_out`
    /// (contiguous, q's shape without D).
    pub(super) fn run(&self, out: &mut [T], lse_out: Option<&mut [f32]>) -> Result<(), Error> {
        let threads = if self.flops < tuning::PARALLEL_MIN_FLOPS {
            1
        } else {
            crate::num_threads()
        };
        let blocking = self.blocking(threads);
        let n_items = self.units * blocking.0 * self.chunks();
        let dv = self.d.dv;
        let total_rows = self.units * self.rows;
        let cost = |i| self.item_cost(&self.item(i, blocking));
        if !self.opts {
            let sizes = |i| (self.item(i, blocking).rows * dv, 0);
            let mut no_lse: [T::Compute; 0] = [];
            return parallel(
                threads,
                n_items,
                sizes,
                cost,
                out,
                &mut no_lse,
                |range, out, lse| self.run_items(range, blocking, out, lse),
            );
        }
        let mut lse: Vec<T::Compute> = vec![T::Compute::from_f64(0.0); total_rows];
        if self.split.is_none() {
            let sizes = |i| {
                let rows = self.item(i, blocking).rows;
                (rows * dv, rows)
            };
            parallel(
                threads,
                n_items,
                sizes,
                cost,
                out,
                &mut lse,
                |range, out, lse| self.run_items(range, blocking, out, lse),
            )?;
        } else {
            // Every (unit, chunk) into scratch, then each unit's chunks merged by their lse.
            let rows = self.rows;
            let mut parts = vec![T::from_f64(0.0); n_items * rows * dv];
            let mut part_lse = vec![T::Compute::from_f64(0.0); n_items * rows];
            let sizes = |_| (rows * dv, rows);
            parallel(
                threads,
                n_items,
                sizes,
                cost,
                &mut parts,
                &mut part_lse,
                |range, out, lse| self.run_items(range, blocking, out, lse),
            )?;
            let (parts, part_lse) = (&parts, &part_lse);
            parallel(
                threads,
                self.units,
                |_| (rows * dv, rows),
                |_| 1,
                out,
                &mut lse,
                |range, out, lse| {
                    self.merge_units(range, parts, part_lse, out, lse);
                    Ok(())
                },
            )?;
        }
        if let Some(dst) = lse_out {
            for (d, s) in dst.iter_mut().zip(&lse) {
                *d = s.to_f64() as f32;
            }
        }
        Ok(())
    }

    /// Merges the key chunks of units `range` (split-KV), with the sinks.
    fn merge_units(
        &self,
        range: Range<usize>,
        parts: &[T],
        part_lse: &[T::Compute],
        out: &mut [T],
        lse: &mut [T::Compute],
    ) {
        let (rows, dv, chunks) = (self.rows, self.d.dv, self.chunks());
        let mut w = vec![0.0f64; chunks];
        let mut acc = vec![0.0f64; dv];
        for (n, unit) in range.enumerate() {
            let h0 = self.unit_head(unit);
            for r in 0..rows {
                for (c, wc) in w.iter_mut().enumerate() {
                    *wc = part_lse[(unit * chunks + c) * rows + r].to_f64();
                }
                let merged = merge_weights(&mut w, self.sink_of(h0 + r / self.d.sq));
                acc.fill(0.0);
                for (c, &wc) in w.iter().enumerate() {
                    if wc != 0.0 {
                        let src = &parts[((unit * chunks + c) * rows + r) * dv..][..dv];
                        for (a, x) in acc.iter_mut().zip(src) {
                            *a += wc * x.to_f64();
                        }
                    }
                }
                let row = n * rows + r;
                for (o, a) in out[row * dv..(row + 1) * dv].iter_mut().zip(&acc) {
                    *o = T::from_f64(*a);
                }
                lse[row] = T::Compute::from_f64(merged);
            }
        }
    }

    /// The first query head of `unit`.
    fn unit_head(&self, unit: usize) -> usize {
        (unit % (self.d.hq / self.heads)) * self.heads
    }

    fn sink_of(&self, h: usize) -> f64 {
        self.sinks.map_or(f64::NEG_INFINITY, |s| f64::from(s[h]))
    }

    fn run_items(
        &self,
        range: Range<usize>,
        blocking: (usize, usize),
        out: &mut [T],
        lse: &mut [T::Compute],
    ) -> Result<(), Error> {
        let (mut out, mut lse) = (out, lse);
        let mut scratch = Scratch::default();
        for i in range {
            let it = self.item(i, blocking);
            let (o, o_rest) = out.split_at_mut(it.rows * self.d.dv);
            out = o_rest;
            let l = if self.opts {
                let (l, l_rest) = lse.split_at_mut(it.rows);
                lse = l_rest;
                Some(l)
            } else {
                None
            };
            self.run_item(it, o, l, &mut scratch)?;
        }
        Ok(())
    }

    fn run_item(
        &self,
        it: Item,
        out: &mut [T],
        lse: Option<&mut [T::Compute]>,
        s: &mut Scratch,
    ) -> Result<(), Error> {
        let d = &self.d;
        let b = it.unit / (d.hq / self.heads);
        let h0 = self.unit_head(it.unit);
        let kvh = h0 / d.group();
        let head_of = |r: usize| h0 + r / d.sq;
        let (mut k0, mut k1) = self.key_range(it.row0, it.rows);
        if let Some(c) = self.split {
            k0 = k0.max(it.chunk * c);
            k1 = k1.min((it.chunk + 1) * c);
        }
        if k0 >= k1 {
            // No key visible to any row: zeros, and the lse of the sink alone (split chunks
            // leave the sinks to the merge).
            out.fill(T::from_f64(0.0));
            if let Some(l) = lse {
                for (r, x) in l.iter_mut().enumerate() {
                    let sink = match self.split {
                        Some(_) => f64::NEG_INFINITY,
                        None => self.sink_of(head_of(it.row0 + r)),
                    };
                    *x = T::Compute::from_f64(sink);
                }
            }
            return Ok(());
        }
        let nk = k1 - k0;
        let qs = self.q.sub(b, h0, it.row0, it.rows, 0, d.d, self.q_rs)?;
        let ks = self.k.sub(b, kvh, k0, nk, 0, d.d, self.k.strides[2])?;
        let vs = self.v.sub(b, kvh, k0, nk, 0, d.dv, self.v.strides[2])?;
        let mut o = TensorViewMut::new(out, &[it.rows, d.dv])?;
        let scale = [T::Compute::from_f64(self.scale)];
        let scale = TensorView::new(&scale, &[])?;
        let [dense, opts, opts_mask] = T::kernels();
        let Some(lse) = lse else {
            return dense.launch(&mut [
                DynMemRef::input(&qs)?,
                DynMemRef::input(&ks)?,
                DynMemRef::input(&vs)?,
                DynMemRef::input(&scale)?,
                DynMemRef::output(&mut o)?,
            ]);
        };
        let rows = it.row0..it.row0 + it.rows;
        s.positions.clear();
        s.positions
            .extend(rows.clone().map(|r| (self.position(r) - k0 as i64) as f32));
        s.sinks.clear();
        s.sinks.extend(rows.clone().map(|r| match self.split {
            Some(_) => f32::NEG_INFINITY,
            None => self.sink_of(head_of(r)) as f32,
        }));
        s.slopes.clear();
        s.slopes
            .extend(rows.map(|r| self.alibi.map_or(0.0, |a| a[head_of(r)])));
        let window = self.window_param();
        let softcap = [self.options.softcap.unwrap_or(0.0)];
        let positions = TensorView::new(&s.positions, &[it.rows])?;
        let window = TensorView::new(&window, &[2])?;
        let softcap = TensorView::new(&softcap, &[])?;
        let sinks = TensorView::new(&s.sinks, &[it.rows])?;
        let slopes = TensorView::new(&s.slopes, &[it.rows])?;
        let mut l = TensorViewMut::new(lse, &[it.rows])?;
        match self.mask_view() {
            None => opts.launch(&mut [
                DynMemRef::input(&qs)?,
                DynMemRef::input(&ks)?,
                DynMemRef::input(&vs)?,
                DynMemRef::input(&scale)?,
                DynMemRef::input(&positions)?,
                DynMemRef::input(&window)?,
                DynMemRef::input(&softcap)?,
                DynMemRef::input(&sinks)?,
                DynMemRef::input(&slopes)?,
                DynMemRef::output(&mut o)?,
                DynMemRef::output(&mut l)?,
            ]),
            Some(m) => {
                let ms = m.sub(b, h0, it.row0, it.rows, k0, nk, self.m_rs)?;
                opts_mask.launch(&mut [
                    DynMemRef::input(&qs)?,
                    DynMemRef::input(&ks)?,
                    DynMemRef::input(&vs)?,
                    DynMemRef::input(&scale)?,
                    DynMemRef::input(&ms)?,
                    DynMemRef::input(&positions)?,
                    DynMemRef::input(&window)?,
                    DynMemRef::input(&softcap)?,
                    DynMemRef::input(&sinks)?,
                    DynMemRef::input(&slopes)?,
                    DynMemRef::output(&mut o)?,
                    DynMemRef::output(&mut l)?,
                ])
            }
        }
    }
}

/// The mask the kernels read: the user's mask as a view (zero strides where it broadcasts),
/// merged with the key padding into one `[B, Hm, Sqm, Sk]` buffer when both are given.
fn merge_mask<'a>(
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

/// Runs `f` over `n` jobs on up to `threads` threads (the calling thread and the pool's
/// workers), each thread taking a contiguous range of jobs of about equal total `cost(i)` and the
/// matching consecutive parts of `a` and `b` (`sizes(i)`: job `i`'s lengths in `a` and in `b`).
/// The first error is returned. Which thread runs a job does not change its result.
fn parallel<A: Send, B: Send>(
    threads: usize,
    n: usize,
    sizes: impl Fn(usize) -> (usize, usize),
    cost: impl Fn(usize) -> u64,
    a: &mut [A],
    b: &mut [B],
    f: impl Fn(Range<usize>, &mut [A], &mut [B]) -> Result<(), Error> + Sync,
) -> Result<(), Error> {
    if threads <= 1 || n <= 1 {
        return f(0..n, a, b);
    }
    let ends = balanced_ends(&(0..n).map(cost).collect::<Vec<_>>(), threads);
    let mut chunks = Vec::with_capacity(threads);
    let (mut rest_a, mut rest_b) = (a, b);
    let mut start = 0;
    for end in ends {
        let (la, lb) = (start..end)
            .map(&sizes)
            .fold((0, 0), |(x, y), (p, q)| (x + p, y + q));
        let (ha, ta) = rest_a.split_at_mut(la);
        let (hb, tb) = rest_b.split_at_mut(lb);
        chunks.push((start..end, ha, hb));
        (rest_a, rest_b) = (ta, tb);
        start = end;
    }
    let f = &f;
    // The calling thread runs the first chunk; the pool's `threads - 1` workers the others.
    if let Some(pool) = crate::threads::pool(threads - 1) {
        let mut results: Vec<Result<(), Error>> = (0..chunks.len()).map(|_| Ok(())).collect();
        let mut jobs = chunks.into_iter().zip(results.iter_mut());
        let first = jobs.next();
        pool.in_place_scope(|s| {
            for ((range, ca, cb), slot) in jobs {
                s.spawn(move |_| *slot = f(range, ca, cb));
            }
            if let Some(((range, ca, cb), slot)) = first {
                *slot = f(range, ca, cb);
            }
        });
        return results.into_iter().collect();
    }
    std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(chunks.len());
        let mut chunks = chunks.into_iter();
        let first = chunks.next();
        for (range, ca, cb) in chunks {
            handles.push(s.spawn(move || f(range, ca, cb)));
        }
        let mut result = match first {
            Some((range, ca, cb)) => f(range, ca, cb),
            None => Ok(()),
        };
        for h in handles {
            let r = h.join().unwrap_or_else(|_| {
                Err(Error::Unsupported {
                    op: "attention",
                    message: "a worker thread panicked".into(),
                })
            });
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}

/// The ends of at most `parts` contiguous, non-empty ranges covering `costs`, of about equal
/// total cost: range `k` ends where the cumulative cost comes nearest to `(k + 1) / parts` of
/// the total, so no range is more than one job's cost off its share.
fn balanced_ends(costs: &[u64], parts: usize) -> Vec<usize> {
    let n = costs.len();
    let total: u128 = costs.iter().map(|&c| u128::from(c)).sum();
    let mut ends = Vec::with_capacity(parts);
    let (mut acc, mut i) = (0u128, 0usize);
    for k in 1..parts {
        let goal = total * k as u128 / parts as u128;
        let start = i;
        // Take the next job while the range is empty or it brings the boundary nearer the goal.
        while i < n {
            let next = acc + u128::from(costs[i]);
            if i > start && next.abs_diff(goal) > acc.abs_diff(goal) {
                break;
            }
            (acc, i) = (next, i + 1);
        }
        if i == n {
            break;
        }
        ends.push(i);
    }
    ends.push(n);
    ends
}

#[cfg(test)]
mod tests {
    use super::balanced_ends;

    #[test]
    fn balanced_ends_split_by_cost() {
        assert_eq!(balanced_ends(&[1; 8], 2), [4, 8]);
        assert_eq!(balanced_ends(&[1, 2, 3, 4, 5, 6, 7, 8], 2), [6, 8]);
        assert_eq!(balanced_ends(&[5], 4), [1]);
        assert_eq!(balanced_ends(&[0, 0, 9, 0], 2), [2, 4]);
        assert_eq!(balanced_ends(&[1; 3], 3), [1, 2, 3]);
        let costs: Vec<u64> = (1..=16).collect();
        let ends = balanced_ends(&costs, 2);
        let first: u64 = costs[..ends[0]].iter().sum();
        assert!((first as f64 / 136.0 - 0.5).abs() < 0.05, "{ends:?}");
    }
}
