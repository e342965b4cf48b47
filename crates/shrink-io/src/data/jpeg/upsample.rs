//! Bringing a subsampled component to full resolution as libjpeg does with its default "fancy"
//! upsampling (jdsample.c semantics): triangle filters for 2:1 horizontal (h2v1), 2:1 vertical
//! (h1v2) and 2:1 both ways (h2v2), with edge samples replicated; plain replication for other
//! integral factors and for components at most 2 samples wide.

/// A plane of samples: row `y` starts at `data[y * stride]`.
#[derive(Clone, Copy)]
pub(super) struct Plane<'a> {
    pub data: &'a [u8],
    pub stride: usize,
}

impl<'a> Plane<'a> {
    /// The first `len` samples of row `y`.
    #[inline]
    pub fn row(&self, y: usize, len: usize) -> &'a [u8] {
        &self.data[y * self.stride..y * self.stride + len]
    }
}

/// Upsamples the `ds_width` x `ds_height` component `input` by the integral factors `hf` x `vf`
/// into `out`, `width` x `height` (stride `width`). `input` must hold those rows.
#[allow(clippy::too_many_arguments)]
pub(super) fn upsample(
    input: Plane,
    ds_width: usize,
    ds_height: usize,
    hf: usize,
    vf: usize,
    width: usize,
    height: usize,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.resize(width * height, 0);
    let last_row = ds_height - 1;
    let fancy = ds_width > 2 || (hf == 1 && vf == 2);
    let mut sums = Vec::with_capacity(ds_width);
    for (y, dst) in out.chunks_exact_mut(width).enumerate() {
        let i = y / vf;
        let near = input.row(i, ds_width);
        match (hf, vf, fancy) {
            (2, 1, true) => h2v1_row(near, dst),
            (1, 2, true) | (2, 2, true) => {
                // The farther row is the one above for even output rows, below for odd ones.
                let (far, bias) =
                    if y % 2 == 0 { (i.saturating_sub(1), 1) } else { ((i + 1).min(last_row), 2) };
                let far = input.row(far, ds_width);
                if hf == 1 {
                    for ((d, &n), &f) in dst.iter_mut().zip(near).zip(far) {
                        *d = ((3 * n as u32 + f as u32 + bias) >> 2) as u8;
                    }
                } else {
                    h2v2_row(near, far, &mut sums, dst);
                }
            }
            _ => {
                for (x, d) in dst.iter_mut().enumerate() {
                    *d = near[x / hf];
                }
            }
        }
    }
}

/// `out[2i] = (3 v[i] + v[i-1] + 1) / 4`, `out[2i+1] = (3 v[i] + v[i+1] + 2) / 4`, edges
/// replicated; `out` may be one sample short of `2 * v.len()`.
fn h2v1_row(v: &[u8], out: &mut [u8]) {
    let n = v.len();
    for (i, pair) in out.chunks_mut(2).enumerate() {
        let this = 3 * v[i] as u32;
        pair[0] = ((this + v[i.saturating_sub(1)] as u32 + 1) >> 2) as u8;
        if let Some(odd) = pair.get_mut(1) {
            *odd = ((this + v[(i + 1).min(n - 1)] as u32 + 2) >> 2) as u8;
        }
    }
}

/// The h2v2 triangle filter on column sums `c = 3 near + far`: `out[2i] = (3 c[i] + c[i-1] + 8)
/// / 16`, `out[2i+1] = (3 c[i] + c[i+1] + 7) / 16`, edges replicated. `sums` is scratch.
fn h2v2_row(near: &[u8], far: &[u8], sums: &mut Vec<u32>, out: &mut [u8]) {
    sums.clear();
    sums.extend(near.iter().zip(far).map(|(&n, &f)| 3 * n as u32 + f as u32));
    let n = sums.len();
    for (i, pair) in out.chunks_mut(2).enumerate() {
        let this = 3 * sums[i];
        pair[0] = ((this + sums[i.saturating_sub(1)] + 8) >> 4) as u8;
        if let Some(odd) = pair.get_mut(1) {
            *odd = ((this + sums[(i + 1).min(n - 1)] + 7) >> 4) as u8;
        }
    }
}
