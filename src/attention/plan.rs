//! How one attention call is computed: the work items (query row blocks of a head or of a
//! stacked head group, and key chunks for split-KV decoding), the kernel each item calls with
//! its per-row parameters, the threads that run the items, and the merge of key chunks.

use super::AttentionElement;
use crate::merge::merge_weights;
use attn_runtime::{
    DynMemRef, Element, Error, TensorView, TensorViewMut, options::AttentionOptions,
    shape::AttentionDims, tuning,
};
use std::ops::Range;
use threads::parallel;
use view::{MaskData, V4, merge_mask};

mod threads;
mod view;

/// The largest position (and window side) the kernels take exactly: they are f32.
const EXACT_F32: usize = 1 << 24;

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
