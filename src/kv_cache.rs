//! A key/value cache for decoding: preallocated `[B, Hkv, capacity, D]` buffers, appended to in
//! place, attended to through strided views of the filled part (no copy per step).

use crate::{Attention, AttentionElement};
use attn_runtime::{AsTensorView, Error, Tensor, TensorView};

/// Keys and values of past positions, for autoregressive decoding, stored as `T` (any
/// [`AttentionElement`]: a bf16 cache halves the memory that decoding streams per token).
///
/// ```
/// use attn::{Attention, KvCache, Tensor};
/// let mut cache = KvCache::new(1, 2, 16, 8, 8)?;           // B, Hkv, capacity, D, Dv
/// cache.append(&Tensor::full(&[1, 2, 3, 8], 0.1)?, &Tensor::full(&[1, 2, 3, 8], 0.2)?)?;
/// let q = Tensor::full(&[1, 4, 1, 8], 0.3)?;               // one new token, 4 query heads
/// let out = cache.attend(&Attention::new().causal(true), &q)?;
/// assert_eq!((out.shape(), cache.len()), (&[1, 4, 1, 8][..], 3));
/// # Ok::<(), attn::Error>(())
/// ```
///
/// A bf16 cache: `KvCache::<attn::half::bf16>::new(..)`, with bf16 keys, values and queries.
#[derive(Clone, Debug)]
pub struct KvCache<T: AttentionElement = f32> {
    k: Tensor<T>,
    v: Tensor<T>,
    len: usize,
}

impl<T: AttentionElement> KvCache<T> {
    /// An empty cache for `batch` sequences of `kv_heads` heads and up to `capacity` positions.
    pub fn new(
        batch: usize,
        kv_heads: usize,
        capacity: usize,
        head_dim: usize,
        value_dim: usize,
    ) -> Result<Self, Error> {
        Ok(KvCache {
            k: Tensor::zeros(&[batch, kv_heads, capacity, head_dim])?,
            v: Tensor::zeros(&[batch, kv_heads, capacity, value_dim])?,
            len: 0,
        })
    }

    /// Positions filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was appended yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The maximum number of positions.
    pub fn capacity(&self) -> usize {
        self.k.shape()[2]
    }

    /// Empties the cache (keeps the buffers).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends `k [B, Hkv, n, D]` and `v [B, Hkv, n, Dv]` (any strides) at positions
    /// `len..len + n`.
    pub fn append(
        &mut self,
        k: &impl AsTensorView<T>,
        v: &impl AsTensorView<T>,
    ) -> Result<(), Error> {
        let (k, v) = (k.try_as_tensor_view()?, v.try_as_tensor_view()?);
        let ks = self.k.shape().to_vec();
        let vs = self.v.shape().to_vec();
        let n = k.shape().get(2).copied().unwrap_or(0);
        let fits = |x: &TensorView<'_, T>, s: &[usize]| {
            x.rank() == 4 && x.shape()[..2] == s[..2] && x.shape()[3] == s[3] && x.shape()[2] == n
        };
        if !fits(&k, &ks) || !fits(&v, &vs) {
            return Err(Error::ShapeMismatch {
                op: "KvCache::append",
                message: format!(
                    "k has shape {:?} and v has shape {:?}; they must be [{}, {}, n, {}] and [{}, {}, n, {}]",
                    k.shape(),
                    v.shape(),
                    ks[0],
                    ks[1],
                    ks[3],
                    vs[0],
                    vs[1],
                    vs[3]
                ),
            });
        }
        if self.len + n > ks[2] {
            return Err(Error::ShapeMismatch {
                op: "KvCache::append",
                message: format!(
                    "appending {n} positions to {} would exceed the capacity {}",
                    self.len, ks[2]
                ),
            });
        }
        for (dst, src, s) in [(&mut self.k, &k, &ks), (&mut self.v, &v, &vs)] {
            let d = s[3];
            let buf = dst.as_mut_slice();
            for b in 0..s[0] {
                for h in 0..s[1] {
                    for i in 0..n {
                        let row = ((b * s[1] + h) * s[2] + self.len + i) * d;
                        for (c, x) in buf[row..row + d].iter_mut().enumerate() {
                            *x = src.get(&[b, h, i, c]).unwrap_or_default();
                        }
                    }
                }
            }
        }
        self.len += n;
        Ok(())
    }

    /// The filled keys `[B, Hkv, len, D]`: a strided view of the buffer, no copy.
    pub fn keys(&self) -> Result<TensorView<'_, T>, Error> {
        self.filled(&self.k)
    }

    /// The filled values `[B, Hkv, len, Dv]`: a strided view of the buffer, no copy.
    pub fn values(&self) -> Result<TensorView<'_, T>, Error> {
        self.filled(&self.v)
    }

    fn filled<'a>(&self, t: &'a Tensor<T>) -> Result<TensorView<'a, T>, Error> {
        let s = t.shape();
        let st = t.strides();
        TensorView::from_strided(t.as_slice(), &[s[0], s[1], self.len, s[3]], &st, 0)
    }

    /// `attention` of `q [B, Hq, Sq, D]` over the filled positions, with every option of
    /// `attention` (causal, window, softcap, ALiBi, sinks, mask, key padding over the filled
    /// length). Positions are bottom-right aligned: the `Sq` queries are the last `Sq`
    /// positions, as after appending their keys and values, so a sliding window of `w` keys is
    /// `.causal(true).window(w - 1, 0)`. Long caches with few query rows are split into key
    /// chunks computed in parallel (split-KV decoding).
    ///
    /// ```
    /// use attn::{Attention, KvCache, Tensor};
    /// let mut cache = KvCache::<f32>::new(1, 1, 64, 8, 8)?;
    /// cache.append(&Tensor::random(&[1, 1, 10, 8], 1)?, &Tensor::random(&[1, 1, 10, 8], 2)?)?;
    /// let q = Tensor::random(&[1, 2, 1, 8], 3)?; // 2 query heads over 1 KV head
    /// let local = Attention::new().causal(true).window(3, 0).softcap(30.0).sinks(&[0.5, -1.0]);
    /// let out = cache.attend(&local, &q)?;
    /// assert_eq!(out.shape(), &[1, 2, 1, 8]);
    /// # Ok::<(), attn::Error>(())
    /// ```
    pub fn attend(
        &self,
        attention: &Attention<'_>,
        q: &impl AsTensorView<T>,
    ) -> Result<Tensor<T>, Error> {
        self.check_filled()?;
        attention.run(q, &self.keys()?, &self.values()?)
    }

    /// [`KvCache::attend`], also returning each row's log-sum-exp (see
    /// [`Attention::run_with_lse`]), e.g. to merge with attention over other keys
    /// ([`merge_partials`](crate::merge_partials)).
    pub fn attend_with_lse(
        &self,
        attention: &Attention<'_>,
        q: &impl AsTensorView<T>,
    ) -> Result<(Tensor<T>, Tensor<f32>), Error> {
        self.check_filled()?;
        attention.run_with_lse(q, &self.keys()?, &self.values()?)
    }

    fn check_filled(&self) -> Result<(), Error> {
        if self.len == 0 {
            return Err(Error::ShapeMismatch {
                op: "KvCache::attend",
                message: "the cache is empty; append keys and values first".into(),
            });
        }
        Ok(())
    }
}
