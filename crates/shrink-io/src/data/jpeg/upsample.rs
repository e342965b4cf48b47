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
            (2, 1, true) => h2v1_row(near, &mut sums, dst),
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
/// replicated; `out` may be one sample short of `2 * v.len()`. `pad` is scratch.
fn h2v1_row(v: &[u8], pad: &mut Vec<u32>, out: &mut [u8]) {
    padded(v.iter().map(|&s| s as u32), pad);
    triangle(pad, 2, 1, 2, out);
}

/// The h2v2 triangle filter on column sums `c = 3 near + far`: `out[2i] = (3 c[i] + c[i-1] + 8)
/// / 16`, `out[2i+1] = (3 c[i] + c[i+1] + 7) / 16`, edges replicated. `pad` is scratch.
fn h2v2_row(near: &[u8], far: &[u8], pad: &mut Vec<u32>, out: &mut [u8]) {
    padded(near.iter().zip(far).map(|(&n, &f)| 3 * n as u32 + f as u32), pad);
    triangle(pad, 4, 8, 7, out);
}

/// `values` with its first and last value repeated at either end.
fn padded(values: impl Iterator<Item = u32>, pad: &mut Vec<u32>) {
    pad.clear();
    pad.push(0);
    pad.extend(values);
    pad[0] = pad.get(1).copied().unwrap_or(0);
    pad.push(pad[pad.len() - 1]);
}

/// The horizontal 2x triangle filter over edge-padded values `p`: output pair `i` is
/// `(3 p[i+1] + p[i] + even) >> shift` and `(3 p[i+1] + p[i+2] + odd) >> shift`.
#[inline(always)]
fn triangle(p: &[u32], shift: u32, even: u32, odd: u32, out: &mut [u8]) {
    let mut pairs = out.chunks_exact_mut(2);
    let mut windows = p.windows(3);
    for (pair, w) in (&mut pairs).zip(&mut windows) {
        let this = 3 * w[1];
        pair[0] = ((this + w[0] + even) >> shift) as u8;
        pair[1] = ((this + w[2] + odd) >> shift) as u8;
    }
    if let ([last], Some(w)) = (pairs.into_remainder(), windows.next()) {
        *last = ((3 * w[1] + w[0] + even) >> shift) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], ds: (usize, usize), f: (usize, usize), size: (usize, usize)) -> Vec<u8> {
        let mut out = Vec::new();
        let plane = Plane { data: input, stride: ds.0 };
        upsample(plane, ds.0, ds.1, f.0, f.1, size.0, size.1, &mut out);
        out
    }

    #[test]
    fn h2v1_is_a_triangle_filter_with_replicated_edges() {
        assert_eq!(run(&[0, 100, 200], (3, 1), (2, 1), (6, 1)), [0, 25, 75, 125, 175, 200]);
        // An odd output width drops the last sample.
        assert_eq!(run(&[0, 100, 200], (3, 1), (2, 1), (5, 1)), [0, 25, 75, 125, 175]);
    }

    #[test]
    fn h2v2_filters_both_ways() {
        // Rows 0 and 100: the output rows nearer row 0 lean to it (3:1), edges replicated.
        let out = run(&[0, 0, 0, 100, 100, 100], (3, 2), (2, 2), (6, 4));
        let rows: Vec<&[u8]> = out.chunks(6).collect();
        assert_eq!(rows[0], [0; 6]);
        assert_eq!(rows[1], [25; 6]); // (3*0 + 100) / 4, via the 4x4 weights
        assert_eq!(rows[2], [75; 6]);
        assert_eq!(rows[3], [100; 6]);
    }

    #[test]
    fn h1v2_filters_vertically() {
        let out = run(&[0, 200], (1, 2), (1, 2), (1, 4));
        assert_eq!(out, [0, 50, 150, 200]);
    }

    #[test]
    fn components_two_samples_wide_are_replicated() {
        assert_eq!(run(&[10, 90], (2, 1), (2, 1), (4, 1)), [10, 10, 90, 90]);
        assert_eq!(run(&[10, 90, 30, 70], (2, 2), (2, 2), (4, 4))[4..8], [10, 10, 90, 90]);
    }
}
