//! CPU convolution passes (f32, contiguous NCHW): forward, input gradient, weight gradient.
//!
//! **Direct layout** (used whenever `kernel >= stride`, i.e. every ResNet/VGG conv): each image
//! is copied once into zero-padded, stride-phase-split planes ([`Wide`]). Output pixel
//! `(oy, ox)` sits at "wide" position `q = oy*wq + ox` and its tap `(ky, kx)` reads phase
//! `(ky % sh, kx % sw)` at `q + (ky / sh)*wq + kx / sw`: a tile of consecutive `q` is a shifted
//! window of a plane, so there is no im2col buffer at all. For stride 1, consecutive rows share
//! their zero columns (`wq = w + pw`), so only ~3% (32x32) to 12% (8x8) of the computed
//! positions are junk columns, which are dropped when the output is compacted.
//! * forward: [`kernels::bcast`] tiles of 8 output channels x 32 pixels (`Path::Direct`), or,
//!   for >= 64 output channels per group, [`kernels::cvec`] tiles of 6 pixels x 64 channels
//!   (`Path::Cvec`, no junk columns at all: only valid pixels are visited).
//! * input gradient: for stride 1 a forward convolution of the padded output gradient with the
//!   flipped, transposed kernel; for stride > 1 one GEMM per stride phase over shifted windows
//!   of the output gradient ([`backward_data_phase`]).
//! * weight gradient: [`kernels::dot`] (4x4 blocks of long dot products over the wide grid of
//!   a chunk of images) or, with `Path::Cvec`, the `cvec` kernel with taps as rows and pixels as
//!   the reduction.
//! * 1x1 / stride 1 / no padding with whole-vector planes reads and writes the tensors in place.
//!
//! **im2col** covers the rest (`kernel < stride`): panels of 32 output pixels are unfolded into
//! an L1-resident `[K][32]` buffer; the input gradient is `w^T dy` per panel plus col2im.
//!
//! Work is split over images on candle's worker pool ([`par`]); each task uses per-thread
//! scratch sized to stay in L2. `SHRINK_CONV_PATH=direct|cvec|im2col` forces a path and
//! `SHRINK_CONV_KERNEL=generic` the portable kernels (for benchmarking / debugging).
use super::geom::{alloc_output, round_up, split_parts, with_scratch, Geom, SyncPtr};
use super::im2col::{col2im_row, im2col_row};
use super::kernels::{self, LANES, MAX_DOT, MAX_MR};
use super::par;

/// Output-channel rows per forward tile.
const MR: usize = MAX_MR;

/// How a pass lays out its data; picked per call by [`choose_path`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// Phase-split padded copy, vectors over output pixels ([`kernels::bcast`]).
    Direct,
    /// Same layout, vectors over output channels ([`kernels::cvec`]); needs [`cvec_ok`].
    Cvec,
    /// im2col panels (any geometry).
    Im2col,
}

fn forced_path() -> Option<Path> {
    static FORCED: std::sync::OnceLock<Option<Path>> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| match std::env::var("SHRINK_CONV_PATH").as_deref() {
        Ok("direct") => Some(Path::Direct),
        Ok("cvec") => Some(Path::Cvec),
        Ok("im2col") => Some(Path::Im2col),
        _ => None,
    })
}

/// Whether the direct (phase-split) layout applies: every stride phase is read by some tap,
/// so no copied phase plane is wasted (`kernel >= stride` on both axes).
pub(crate) fn direct_ok(g: &Geom) -> bool {
    g.kh >= g.sh && g.kw >= g.sw
}

/// Direct whenever it applies (it beats im2col on every ResNet shape measured, 8x8 included),
/// unless `SHRINK_CONV_PATH=im2col` forces the general path.
pub(crate) fn choose_path(g: &Geom) -> Path {
    match forced_path() {
        Some(Path::Im2col) => Path::Im2col,
        _ if !direct_ok(g) => Path::Im2col,
        Some(Path::Direct) => Path::Direct,
        Some(Path::Cvec) if cvec_ok(g) => Path::Cvec,
        _ if cvec_ok(g) && cvec_shape(g.og()).1 >= 4 => Path::Cvec,
        _ => Path::Direct,
    }
}

/// Whether the channel-vector kernel applies (whole 16-channel vectors per group).
pub(crate) fn cvec_ok(g: &Geom) -> bool {
    direct_ok(g) && g.og() % 16 == 0
}

/// `(pixels per tile, channel vectors per tile)` of the channel-vector kernel.
fn cvec_shape(og: usize) -> (usize, usize) {
    if og % 64 == 0 {
        (6, 4)
    } else if og % 32 == 0 {
        (8, 2)
    } else {
        (8, 1)
    }
}

/// A 1x1, stride-1, unpadded convolution whose planes are whole vectors: the direct layout is
/// the tensor's own layout, so no copies are needed.
pub(crate) fn is_plain_1x1(g: &Geom) -> bool {
    g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 && (g.h * g.w) % LANES == 0
}

/// Layout of the zero-padded, stride-phase-split image copy used by the direct path.
///
/// The padded input (`hp x wp`) is split into `sh*sw` phase planes `P[a][b][i][j] =
/// Xp[sh*i + a][sw*j + b]` of `hq x wq` (`hq = ceil(hp/sh)`, `wq = ceil(wp/sw)`). Output pixel
/// `(oy, ox)` lives at wide position `q = oy*wq + ox` and its tap `(ky, kx)` reads phase
/// `(ky % sh, kx % sw)` at `q + (ky / sh)*wq + kx / sw`: a strided convolution becomes a sum of
/// shifted windows, like a stride-1 one.
#[derive(Clone, Copy, Debug)]
struct Wide {
    sh: usize,
    sw: usize,
    hq: usize,
    wq: usize,
    /// Wide outputs per channel (`oh * wq`), valid where `q % wq < ow`.
    len: usize,
    /// `len` rounded up to whole vectors.
    len_pad: usize,
    /// Largest tap offset.
    max_off: usize,
    /// Floats per phase plane (covers every tile's reads).
    plane: usize,
}

impl Wide {
    fn new(g: &Geom) -> Wide {
        let (hp, wp) = (g.h + 2 * g.ph, g.w + 2 * g.pw);
        let (hq, wq) = if g.sh == 1 && g.sw == 1 {
            // Stride 1: consecutive rows share their zero columns (the right padding of one row
            // is the left padding of the next), so a row needs only `w + gap` floats.
            let gap = g.pw.max((2 * g.pw + 1).saturating_sub(g.kw));
            (hp, g.w + gap)
        } else {
            (hp.div_ceil(g.sh), wp.div_ceil(g.sw))
        };
        let len = g.oh * wq;
        let len_pad = round_up(len, LANES);
        let max_off = (g.kh - 1) / g.sh * wq + (g.kw - 1) / g.sw;
        // Stride 1: the last row's right padding ends `pw` floats past `hq * wq` (rows are
        // shifted right by the left padding), e.g. a 1x1 kernel with `pw = 2`.
        let tail = if g.sh == 1 && g.sw == 1 { g.pw } else { 0 };
        let plane = round_up((len_pad + max_off).max(hq * wq + tail), LANES);
        Wide { sh: g.sh, sw: g.sw, hq, wq, len, len_pad, max_off, plane }
    }

    fn phases(&self) -> usize {
        self.sh * self.sw
    }

    /// (phase index, offset) of tap `(ky, kx)`.
    fn tap(&self, ky: usize, kx: usize) -> (usize, usize) {
        ((ky % self.sh) * self.sw + kx % self.sw, ky / self.sh * self.wq + kx / self.sw)
    }

    /// Offsets of the `cg * kh * kw` B rows of one group, relative to the group's first plane.
    fn koff(&self, g: &Geom) -> Vec<usize> {
        let mut v = Vec::with_capacity(g.kdim());
        for c in 0..g.cg() {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    let (ph, off) = self.tap(ky, kx);
                    v.push((c * self.phases() + ph) * self.plane + off);
                }
            }
        }
        v
    }

    /// Floats of one image's phase-split copy.
    fn image_len(&self, c: usize) -> usize {
        c * self.phases() * self.plane
    }

    /// Writes the phase planes of the `c` channels of one image (`x`: `c x h x w`) into `dst`.
    /// Input rows are visited in memory order (each feeds `sw` phase rows), which keeps the
    /// hardware prefetcher streaming: the first touch of `x` in a pass is the costly part.
    fn fill(&self, x: &[f32], c: usize, g: &Geom, dst: &mut [f32]) {
        let (h, w) = (g.h, g.w);
        let nph = self.phases();
        for ci in 0..c {
            let src = &x[ci * h * w..][..h * w];
            let planes = &mut dst[ci * nph * self.plane..][..nph * self.plane];
            if nph == 1 {
                kernels::pad_plane(planes, src, h, w, g.ph, g.pw, self.wq);
                continue;
            }
            for a in 0..self.sh {
                for i in 0..self.hq {
                    let y = (self.sh * i + a) as isize - g.ph as isize;
                    if y < 0 || y >= h as isize {
                        for b in 0..self.sw {
                            kernels::zero(
                                &mut planes[(a * self.sw + b) * self.plane + i * self.wq..][..self.wq],
                            );
                        }
                    }
                }
            }
            for y in 0..h {
                let (a, i) = ((y + g.ph) % self.sh, (y + g.ph) / self.sh);
                for b in 0..self.sw {
                    let row = &mut planes[(a * self.sw + b) * self.plane + i * self.wq..][..self.wq];
                    fill_row(row, &src[y * w..], w, b, g.pw, self.sw);
                }
            }
            for p in 0..nph {
                kernels::zero(&mut planes[p * self.plane + self.hq * self.wq..(p + 1) * self.plane]);
            }
        }
    }
}

/// `dst[j] = src[sw*j + b - pw]` where that index is inside the row (`< w`), else 0.
/// `src` starts at the row and may extend past it (the copy may read, not use, those floats).
#[inline]
fn fill_row(dst: &mut [f32], src: &[f32], w: usize, b: usize, pw: usize, sw: usize) {
    let n = dst.len();
    let lo = if pw > b { (pw - b).div_ceil(sw) } else { 0 }.min(n);
    let hi = if w + pw > b { ((w - 1 + pw - b) / sw + 1).min(n) } else { 0 }.max(lo);
    let x0 = (sw * lo + b).saturating_sub(pw).min(w);
    kernels::pad_row(dst, lo, hi - lo, &src[x0..], sw);
}

/// Copies `rows x ow` pixels into rows of width `wq` (`dst` = `rows*wq` or more), zeros elsewhere.
fn widen(dst: &mut [f32], src: &[f32], ow: usize, wq: usize) {
    let rows = src.len() / ow.max(1);
    kernels::rows_copy(dst, wq, src, ow, rows, ow, wq);
    kernels::zero(&mut dst[rows * wq..]);
}

/// `dst[sw*j + b - pw] = src[j]` for every `j` whose target lies in `dst` (inverse of `fill_row`).
#[inline]
fn scatter_row(dst: &mut [f32], src: &[f32], b: usize, pw: usize, sw: usize) {
    let n = src.len();
    let lo = if pw > b { (pw - b).div_ceil(sw) } else { 0 }.min(n);
    let hi = if dst.len() + pw > b { ((dst.len() - 1 + pw - b) / sw + 1).min(n) } else { 0 }.max(lo);
    if hi > lo {
        let x0 = sw * lo + b - pw;
        if sw == 1 {
            kernels::copy(&mut dst[x0..x0 + (hi - lo)], &src[lo..hi]);
        } else {
            for (j, &v) in src[lo..hi].iter().enumerate() {
                dst[x0 + j * sw] = v;
            }
        }
    }
}

/// Packs the weights of every (group, row block) for [`kernels::bcast`]: block `(g, b)` holds
/// `[k][mr]` with `mr = min(MR, rows - b*MR)`, rows `g*rows + b*MR + i` of the `rows x kdim`
/// matrix `at(row, k)`. Returns the buffer and the start of each block.
fn pack_rows(
    groups: usize,
    rows: usize,
    kdim: usize,
    at: impl Fn(usize, usize) -> f32,
) -> (Vec<f32>, Vec<usize>) {
    let nb = rows.div_ceil(MR);
    let mut buf = vec![0f32; groups * rows * kdim];
    let mut starts = Vec::with_capacity(groups * nb);
    let mut off = 0;
    for g in 0..groups {
        for b in 0..nb {
            let mr = MR.min(rows - b * MR);
            starts.push(off);
            for k in 0..kdim {
                for i in 0..mr {
                    buf[off + k * mr + i] = at(g * rows + b * MR + i, k);
                }
            }
            off += kdim * mr;
        }
    }
    (buf, starts)
}

/// Tile width in vectors of the pixel-vector kernel (8 x 2 = 16 accumulators: FMA-bound, and
/// measured no slower than 8 x 3 on the ResNet shapes).
fn fwd_nv(_g: &Geom) -> usize {
    2
}

/// Splits images into tasks; with fewer images than threads also splits each image's tiles.
fn task_split(n: usize, ntiles: usize) -> usize {
    let threads = par::threads();
    if n >= 2 * threads {
        1
    } else {
        (2 * threads).div_ceil(n.max(1)).min(ntiles).max(1)
    }
}

/// Forward convolution: `y[N, O, OH, OW]` from `x[N, C, H, W]` and `w[O, C/groups, kh, kw]`.
pub(crate) fn forward(x: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    forward_with(x, w, g, choose_path(g))
}

/// [`forward`] with an explicit data path (`Direct` requires [`direct_ok`]).
pub(crate) fn forward_with(x: &[f32], w: &[f32], g: &Geom, path: Path) -> Vec<f32> {
    assert!(path == Path::Im2col || direct_ok(g), "direct path needs kernel >= stride");
    assert!(path != Path::Cvec || cvec_ok(g), "cvec path needs 16 | out channels per group");
    // Every element is written below (uninitialized allocation: no memset, see `finish`).
    let mut y = alloc_output(g.y_len());
    if g.y_len() == 0 {
        return y;
    }
    let (og, kd) = (g.og(), g.kdim());
    let (apack, astart) = pack_rows(g.groups, og, kd, |r, k| w[r * kd + k]);
    let nb = og.div_ceil(MR);
    let nv = fwd_nv(g);
    let tile = nv * LANES;
    let yp = SyncPtr(y.as_mut_ptr());
    match path {
        Path::Direct => {
            let wd = Wide::new(g);
            let ntiles = wd.len_pad.div_ceil(tile);
            let split = task_split(g.n, ntiles);
            let per = ntiles.div_ceil(split);
            let koff = wd.koff(g);
            let (img, gstride) = (wd.image_len(g.c), wd.image_len(g.cg()));
            let chw = g.c * g.h * g.w;
            par::for_each(g.n * split, 1, |task| {
                let (n, s) = (task / split, task % split);
                let (t0, t1) = (s * per, ((s + 1) * per).min(ntiles));
                if t0 >= t1 {
                    return;
                }
                let span = (t1 * tile).min(wd.len_pad) - t0 * tile;
                let p = g.p();
                // 1x1 fast path: the image itself is the B matrix and the output needs no
                // column compaction, so the kernel reads x and writes y directly.
                let raw = is_plain_1x1(g);
                let (img_s, obuf_s) = if raw { (0, 0) } else { (img, g.o * span) };
                with_scratch(img_s + obuf_s, |scr| {
                    let [xp, obuf] = split_parts(scr, [img_s, obuf_s]);
                    let (xbase, obase, ldo) = if raw {
                        // SAFETY: this task owns columns [t0*tile, t1*tile) of image n's output.
                        (x[n * chw..].as_ptr(), unsafe { yp.ptr().add(n * g.o * p + t0 * tile) }, p)
                    } else {
                        wd.fill(&x[n * chw..][..chw], g.c, g, xp);
                        (xp.as_ptr(), obuf.as_mut_ptr(), span)
                    };
                    for gi in 0..g.groups {
                        // SAFETY: group offsets stay inside the (padded) image.
                        let xg = unsafe { xbase.add(gi * gstride) };
                        for t in t0..t1 {
                            // the last tile may be narrower (whole vectors)
                            let nvt = tile.min(wd.len_pad - t * tile) / LANES;
                            for b in 0..nb {
                                let mr = MR.min(og - b * MR);
                                let row = gi * og + b * MR;
                                // SAFETY: the phase planes cover every tile's reads (Wide::new;
                                // raw: h*w is whole vectors); the output holds o rows of ldo.
                                unsafe {
                                    kernels::bcast(
                                        mr,
                                        nvt,
                                        kd,
                                        apack[astart[gi * nb + b]..].as_ptr(),
                                        xg.add(t * tile),
                                        koff.as_ptr(),
                                        obase.add(row * ldo + (t - t0) * tile),
                                        ldo,
                                    );
                                }
                            }
                        }
                    }
                    if raw {
                        return;
                    }
                    // Keep the valid columns of the wide rows.
                    let q0 = t0 * tile;
                    let q1 = (t1 * tile).min(wd.len);
                    if q0 == 0 && q1 == wd.len {
                        // SAFETY: this task owns all of image n.
                        let yn =
                            unsafe { std::slice::from_raw_parts_mut(yp.ptr().add(n * g.o * p), g.o * p) };
                        for o in 0..g.o {
                            kernels::rows_copy(
                                &mut yn[o * p..][..p],
                                g.ow,
                                &obuf[o * span..],
                                wd.wq,
                                g.oh,
                                g.ow,
                                g.ow,
                            );
                        }
                        return;
                    }
                    for o in 0..g.o {
                        let src = &obuf[o * span..][..span];
                        let mut q = q0;
                        while q < q1 {
                            let (oy, ox) = (q / wd.wq, q % wd.wq);
                            let run_end = (q - ox + wd.wq).min(q1);
                            if ox < g.ow {
                                let cnt = (g.ow - ox).min(run_end - q);
                                let dst = ((n * g.o + o) * g.oh + oy) * g.ow + ox;
                                // SAFETY: each (n, o, oy, ox) is written by exactly one task.
                                let out = unsafe { std::slice::from_raw_parts_mut(yp.ptr().add(dst), cnt) };
                                kernels::copy(out, &src[q - q0..][..cnt]);
                            }
                            q = run_end;
                        }
                    }
                });
            });
        }
        Path::Cvec => {
            let wd = Wide::new(g);
            let koff = wd.koff(g);
            let (mr, cnv) = cvec_shape(og);
            let ow_ = cnv * LANES; // output channels per tile
            let nob = og / ow_;
            // wc[(gi*nob + ob)][k][c] = w[gi*og + ob*ow_ + c][k]
            let mut wc = vec![0f32; g.o * kd];
            for r in 0..g.groups * nob {
                for k in 0..kd {
                    for c in 0..ow_ {
                        wc[(r * kd + k) * ow_ + c] = w[(r * ow_ + c) * kd + k];
                    }
                }
            }
            let p = g.p();
            let ntiles = p.div_ceil(mr);
            let mut qs: Vec<usize> = (0..p).map(|i| (i / g.ow) * wd.wq + i % g.ow).collect();
            qs.resize(ntiles * mr, qs[p - 1]);
            let split = task_split(g.n, ntiles);
            let per = ntiles.div_ceil(split);
            let (img, gstride) = (wd.image_len(g.c), wd.image_len(g.cg()));
            let chw = g.c * g.h * g.w;
            par::for_each(g.n * split, 1, |task| {
                let (n, s) = (task / split, task % split);
                let (t0, t1) = (s * per, ((s + 1) * per).min(ntiles));
                if t0 >= t1 {
                    return;
                }
                with_scratch(img + mr * ow_, |scr| {
                    let [xp, buf] = split_parts(scr, [img, mr * ow_]);
                    wd.fill(&x[n * chw..][..chw], g.c, g, xp);
                    for gi in 0..g.groups {
                        let xg = xp[gi * gstride..].as_ptr();
                        for t in t0..t1 {
                            let valid = mr.min(p - t * mr);
                            for ob in 0..nob {
                                // SAFETY: q < len and the planes cover len + max_off; wc block
                                // is kd x ow_; buf holds mr x ow_.
                                unsafe {
                                    kernels::cvec(
                                        mr,
                                        cnv,
                                        kd,
                                        wc[(gi * nob + ob) * kd * ow_..].as_ptr(),
                                        xg,
                                        koff.as_ptr(),
                                        qs[t * mr..].as_ptr(),
                                        buf.as_mut_ptr(),
                                    );
                                }
                                let o0 = gi * og + ob * ow_;
                                for c in 0..ow_ {
                                    let dst = ((n * g.o + o0 + c) * p) + t * mr;
                                    for i in 0..valid {
                                        // SAFETY: (n, o, pixel) written by this task only.
                                        unsafe { *yp.ptr().add(dst + i) = buf[i * ow_ + c] };
                                    }
                                }
                            }
                        }
                    }
                });
            });
        }
        Path::Im2col => {
            let p = g.p();
            let npan = p.div_ceil(tile);
            let split = task_split(g.n, npan);
            let per = npan.div_ceil(split);
            let koff: Vec<usize> = (0..kd).map(|k| k * tile).collect();
            par::for_each(g.n * split, 1, |task| {
                let (n, s) = (task / split, task % split);
                let (j0, j1) = (s * per, ((s + 1) * per).min(npan));
                if j0 >= j1 {
                    return;
                }
                let xn = &x[n * g.c * g.h * g.w..][..g.c * g.h * g.w];
                with_scratch(kd * tile + MR * tile, |scr| {
                    let [panel, obuf] = split_parts(scr, [kd * tile, MR * tile]);
                    for gi in 0..g.groups {
                        for j in j0..j1 {
                            let p0 = j * tile;
                            let cnt = tile.min(p - p0);
                            for c in 0..g.cg() {
                                let xc = &xn[(gi * g.cg() + c) * g.h * g.w..][..g.h * g.w];
                                for ky in 0..g.kh {
                                    for kx in 0..g.kw {
                                        let k = (c * g.kh + ky) * g.kw + kx;
                                        im2col_row(&mut panel[k * tile..][..tile], xc, g, ky, kx, p0, cnt);
                                    }
                                }
                            }
                            for b in 0..nb {
                                let mr = MR.min(og - b * MR);
                                let row = gi * og + b * MR;
                                let ybase = (n * g.o + row) * p + p0;
                                // SAFETY: panel is [kd][tile]; outputs go to a full-width
                                // tile buffer when the panel is partial.
                                unsafe {
                                    let a = apack[astart[gi * nb + b]..].as_ptr();
                                    if cnt == tile {
                                        kernels::bcast(
                                            mr,
                                            nv,
                                            kd,
                                            a,
                                            panel.as_ptr(),
                                            koff.as_ptr(),
                                            yp.ptr().add(ybase),
                                            p,
                                        );
                                    } else {
                                        kernels::bcast(
                                            mr,
                                            nv,
                                            kd,
                                            a,
                                            panel.as_ptr(),
                                            koff.as_ptr(),
                                            obuf.as_mut_ptr(),
                                            tile,
                                        );
                                        for i in 0..mr {
                                            std::ptr::copy_nonoverlapping(
                                                obuf[i * tile..].as_ptr(),
                                                yp.ptr().add(ybase + i * p),
                                                cnt,
                                            );
                                        }
                                    }
                                }
                            }
                        }
                    }
                });
            });
        }
    }
    // SAFETY: both paths wrote all y_len elements (each output pixel of each channel/image).
    unsafe { y.set_len(g.y_len()) };
    y
}

/// Whether the input gradient can run as a stride-1 forward convolution of the padded output
/// gradient with the flipped, transposed kernel.
fn bwd_data_as_forward(g: &Geom) -> bool {
    g.sh == 1 && g.sw == 1 && g.ph < g.kh && g.pw < g.kw
}

/// How the input gradient is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DxMode {
    /// A stride-1 forward convolution of the padded `dy` (needs [`bwd_data_as_forward`]).
    AsForward(Path),
    /// Per stride phase, a GEMM over shifted windows of `dy` (needs [`direct_ok`]).
    Phase,
    /// `dcol = w^T dy` panels scattered back with col2im (always applies).
    Col2im,
}

/// Input gradient `dx[N, C, H, W]` of the convolution `g` given `dy[N, O, OH, OW]`.
pub(crate) fn backward_data(dy: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    let mode = match choose_path(g) {
        _ if bwd_data_as_forward(g) => DxMode::AsForward(choose_path(&transposed_geom(g))),
        Path::Direct | Path::Cvec => DxMode::Phase,
        Path::Im2col => DxMode::Col2im,
    };
    backward_data_with(dy, w, g, mode)
}

/// The stride-1 convolution whose forward pass is the input gradient of `g`.
fn transposed_geom(g: &Geom) -> Geom {
    Geom {
        n: g.n,
        c: g.o,
        h: g.oh,
        w: g.ow,
        o: g.c,
        kh: g.kh,
        kw: g.kw,
        sh: 1,
        sw: 1,
        ph: g.kh - 1 - g.ph,
        pw: g.kw - 1 - g.pw,
        groups: g.groups,
        oh: g.h,
        ow: g.w,
    }
}

/// [`backward_data`] with an explicit method.
pub(crate) fn backward_data_with(dy: &[f32], w: &[f32], g: &Geom, mode: DxMode) -> Vec<f32> {
    let (og, cg, kd, taps) = (g.og(), g.cg(), g.kdim(), g.taps());
    match mode {
        DxMode::AsForward(path) => {
            assert!(bwd_data_as_forward(g));
            // w'[gi*cg + c, o, ky, kx] = w[gi*og + o, c, kh-1-ky, kw-1-kx]
            let mut wt = vec![0f32; g.c * og * taps];
            for gi in 0..g.groups {
                for o in 0..og {
                    for c in 0..cg {
                        for t in 0..taps {
                            wt[((gi * cg + c) * og + o) * taps + (taps - 1 - t)] =
                                w[(gi * og + o) * kd + c * taps + t];
                        }
                    }
                }
            }
            return forward_with(dy, &wt, &transposed_geom(g), path);
        }
        DxMode::Phase => return backward_data_phase(dy, w, g),
        DxMode::Col2im => {}
    }
    // General path: dcol = w^T dy per output-pixel panel, then col2im.
    let mut dx = vec![0f32; g.x_len()];
    if dx.is_empty() || g.y_len() == 0 {
        return dx;
    }
    // Rows of the transposed problem are the kd taps of a group; reduction over og.
    let (apack, astart) = pack_rows(g.groups, kd, og, |r, o| {
        let (gi, k) = (r / kd, r % kd);
        w[(gi * og + o) * kd + k]
    });
    let nb = kd.div_ceil(MR);
    let nv = 2;
    let tile = nv * LANES;
    let p = g.p();
    let ppad = round_up(p, tile);
    let npan = ppad / tile;
    let koff: Vec<usize> = (0..og).map(|o| o * ppad).collect();
    let plane = g.h * g.w;
    let dxp = SyncPtr(dx.as_mut_ptr());
    par::for_each(g.n, 1, |n| {
        // SAFETY: each task owns image n's slice of dx.
        let dxn = unsafe { std::slice::from_raw_parts_mut(dxp.ptr().add(n * g.c * plane), g.c * plane) };
        with_scratch(g.o * ppad + kd * tile, |scr| {
            let [dyp, dcol] = split_parts(scr, [g.o * ppad, kd * tile]);
            for o in 0..g.o {
                let d = &mut dyp[o * ppad..][..ppad];
                d[..p].copy_from_slice(&dy[(n * g.o + o) * p..][..p]);
                d[p..].fill(0.0);
            }
            for gi in 0..g.groups {
                for j in 0..npan {
                    let p0 = j * tile;
                    let cnt = tile.min(p - p0);
                    for b in 0..nb {
                        let mr = MR.min(kd - b * MR);
                        // SAFETY: dyp rows are ppad long (whole tiles); dcol is [kd][tile].
                        unsafe {
                            kernels::bcast(
                                mr,
                                nv,
                                og,
                                apack[astart[gi * nb + b]..].as_ptr(),
                                dyp[gi * og * ppad + p0..].as_ptr(),
                                koff.as_ptr(),
                                dcol[b * MR * tile..].as_mut_ptr(),
                                tile,
                            );
                        }
                    }
                    for c in 0..cg {
                        let dxc = &mut dxn[(gi * cg + c) * plane..][..plane];
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let k = (c * g.kh + ky) * g.kw + kx;
                                col2im_row(&dcol[k * tile..][..tile], dxc, g, ky, kx, p0, cnt);
                            }
                        }
                    }
                }
            }
        });
    });
    dx
}

/// Input gradient through the phase-split layout: the forward pass reads phase plane
/// `P[c][ph]` at `q + off_t` for every tap `t` of phase `ph`, so
/// `dP[c][ph][r] = sum_{o, t in ph} w[o, c, t] * dy_wide[o][r - off_t]` — per phase a GEMM whose
/// B rows are shifted windows of the (front-padded) wide output gradient. Every input pixel
/// belongs to exactly one phase position, so the result is scattered without accumulation.
fn backward_data_phase(dy: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    let (og, cg, kd, taps) = (g.og(), g.cg(), g.kdim(), g.taps());
    let mut dx = alloc_output(g.x_len());
    if g.x_len() == 0 {
        return dx;
    }
    let nv = 2;
    let tile = nv * LANES;
    let wd = Wide::new(g);
    let front = wd.max_off;
    let rpad = round_up(wd.hq * wd.wq, LANES);
    let dyplane = round_up(front + rpad.max(wd.len), LANES);
    struct PhaseGemm {
        k: usize,
        koff: Vec<usize>,
        apack: Vec<f32>,
        astart: Vec<usize>,
    }
    let mut phases = Vec::with_capacity(wd.phases());
    for a in 0..wd.sh {
        for b in 0..wd.sw {
            let tl: Vec<(usize, usize)> = (a..g.kh)
                .step_by(wd.sh)
                .flat_map(|ky| (b..g.kw).step_by(wd.sw).map(move |kx| (ky, kx)))
                .map(|(ky, kx)| (ky * g.kw + kx, wd.tap(ky, kx).1))
                .collect();
            let nt = tl.len();
            let koff =
                (0..og).flat_map(|o| tl.iter().map(move |&(_, off)| o * dyplane + front - off)).collect();
            let (apack, astart) = pack_rows(g.groups, cg, og * nt, |r, k| {
                let (gi, c) = (r / cg, r % cg);
                w[(gi * og + k / nt) * kd + c * taps + tl[k % nt].0]
            });
            phases.push(PhaseGemm { k: og * nt, koff, apack, astart });
        }
    }
    let nb = cg.div_ceil(MR);
    let plane = g.h * g.w;
    let p = g.p();
    let dxp = SyncPtr(dx.as_mut_ptr());
    par::for_each(g.n, 1, |n| {
        with_scratch(g.o * dyplane + wd.phases() * cg * rpad, |scr| {
            let [dyw, dp] = split_parts(scr, [g.o * dyplane, wd.phases() * cg * rpad]);
            for o in 0..g.o {
                let d = &mut dyw[o * dyplane..][..dyplane];
                kernels::zero(&mut d[..front]);
                widen(&mut d[front..], &dy[(n * g.o + o) * p..][..p], g.ow, wd.wq);
            }
            for gi in 0..g.groups {
                let dyg = dyw[gi * og * dyplane..].as_ptr();
                for (ph, pg) in phases.iter().enumerate() {
                    let dpp = &mut dp[ph * cg * rpad..][..cg * rpad];
                    if pg.k == 0 {
                        dpp.fill(0.0);
                        continue;
                    }
                    for t in 0..rpad.div_ceil(tile) {
                        let nvt = tile.min(rpad - t * tile) / LANES;
                        for blk in 0..nb {
                            let mr = MR.min(cg - blk * MR);
                            // SAFETY: rows start at `front - off >= 0` and end before
                            // `front + rpad <= dyplane`; dpp holds cg rows of rpad floats.
                            unsafe {
                                kernels::bcast(
                                    mr,
                                    nvt,
                                    pg.k,
                                    pg.apack[pg.astart[gi * nb + blk]..].as_ptr(),
                                    dyg.add(t * tile),
                                    pg.koff.as_ptr(),
                                    dpp.as_mut_ptr().add(blk * MR * rpad + t * tile),
                                    rpad,
                                );
                            }
                        }
                    }
                }
                // Scatter back row by row: input row y takes phase row (a, i); its pixels
                // alternate between the sw column phases.
                for c in 0..cg {
                    // SAFETY: image n, channel gi*cg + c: written only by this task; every
                    // pixel is written by exactly one phase position.
                    let dxc = unsafe {
                        std::slice::from_raw_parts_mut(dxp.ptr().add((n * g.c + gi * cg + c) * plane), plane)
                    };
                    for y in 0..g.h {
                        let (a, i) = ((y + g.ph) % wd.sh, (y + g.ph) / wd.sh);
                        let row = &mut dxc[y * g.w..][..g.w];
                        let src = |b: usize| &dp[((a * wd.sw + b) * cg + c) * rpad + i * wd.wq..][..wd.wq];
                        if wd.sw == 2 {
                            // t = x + pw: pixel x comes from phase t % 2 at column t / 2
                            let (j0, j1) = (g.pw / 2, g.pw.div_ceil(2));
                            if g.pw % 2 == 0 {
                                kernels::interleave2(row, &src(0)[j0..], &src(1)[j0..]);
                            } else {
                                kernels::interleave2(row, &src(1)[j0..], &src(0)[j1..]);
                            }
                        } else {
                            for b in 0..wd.sw {
                                scatter_row(row, src(b), b, g.pw, wd.sw);
                            }
                        }
                    }
                }
            }
        });
    });
    // SAFETY: every (n, c, y, x) maps to one phase plane position and was written above.
    unsafe { dx.set_len(g.x_len()) };
    dx
}

/// Weight gradient `dw[O, C/groups, kh, kw]` of the convolution `g`.
pub(crate) fn backward_filter(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    backward_filter_with(x, dy, g, choose_path(g))
}

/// [`backward_filter`] with an explicit data path (`Direct` requires [`direct_ok`]).
pub(crate) fn backward_filter_with(x: &[f32], dy: &[f32], g: &Geom, path: Path) -> Vec<f32> {
    assert!(path == Path::Im2col || direct_ok(g), "direct path needs kernel >= stride");
    let (og, cg, kd, taps) = (g.og(), g.cg(), g.kdim(), g.taps());
    let wlen = g.w_len();
    if g.n == 0 || g.y_len() == 0 {
        return vec![0f32; wlen];
    }
    // Per image: `a` = output-gradient rows (o), `b` = input rows per tap (k), both laid out
    // over the same reduction axis (wide grid or im2col pixels), zero where junk.
    let direct = path != Path::Im2col;
    let wd = Wide::new(g);
    let (red_len, b_rows_len, koff): (usize, usize, Vec<usize>) = if direct {
        (wd.len_pad, wd.image_len(g.c), wd.koff(g))
    } else {
        let ppad = round_up(g.p(), LANES);
        (ppad, g.c * taps * ppad, (0..kd).map(|k| k * ppad).collect())
    };
    let cv = path == Path::Cvec;
    let a_len = if cv { g.o * g.p() } else { g.o * red_len };
    let img_floats = a_len + b_rows_len;
    // Images per chunk: keep a chunk's operands around 384 KiB (L2-resident).
    let per_chunk = ((96 * 1024) / img_floats.max(1)).clamp(1, g.n);
    let threads = par::threads();
    let per_chunk = per_chunk.min(g.n.div_ceil(threads)).max(1);
    let nchunks = g.n.div_ceil(per_chunk);
    let p = g.p();
    let (nob, nkb) = (og.div_ceil(MAX_DOT), kd.div_ceil(MAX_DOT));
    // Channel-vector variant: dW^T[k][o] = sum over (image, pixel) of x[tap k at pixel] *
    // dy^T[pixel][o] — the `cvec` kernel with taps as rows and pixels as the reduction.
    let (cmr, cnv) = cvec_shape(og);
    let cow = cnv * LANES;
    let cnob = og / cow.max(1);
    let red_offs: Vec<usize> = if cv {
        (0..per_chunk)
            .flat_map(|i| (0..p).map(move |pi| i * b_rows_len + (pi / g.ow) * wd.wq + pi % g.ow))
            .collect()
    } else {
        Vec::new()
    };
    let mut tap_offs = koff.clone();
    if cv {
        let last = *tap_offs.last().unwrap_or(&0);
        tap_offs.resize(kd.div_ceil(cmr) * cmr, last);
    }
    // Deterministic reduction: a fixed number of tasks, each summing its run of chunks into
    // its own partial, added up in task order.
    let ntasks = nchunks.min(8 * threads).max(1);
    let chunks_per_task = nchunks.div_ceil(ntasks);
    let mut partials = vec![0f32; ntasks * wlen];
    let pp = SyncPtr(partials.as_mut_ptr());
    par::for_each(ntasks, 1, |task| {
        // SAFETY: each task owns its own partial.
        let acc = unsafe { std::slice::from_raw_parts_mut(pp.ptr().add(task * wlen), wlen) };
        for ch in task * chunks_per_task..((task + 1) * chunks_per_task).min(nchunks) {
            let n0 = ch * per_chunk;
            let nimg = per_chunk.min(g.n - n0);
            // 1x1 fast path: dy and x already have the layout the kernel wants.
            let raw = direct && !cv && is_plain_1x1(g);
            with_scratch(if raw { 0 } else { nimg * img_floats }, |scr| {
                let [abuf, bbuf] =
                    split_parts(scr, if raw { [0, 0] } else { [nimg * a_len, nimg * b_rows_len] });
                for i in 0..if raw { 0 } else { nimg } {
                    let n = n0 + i;
                    let bi = &mut bbuf[i * b_rows_len..][..b_rows_len];
                    let xn = &x[n * g.c * g.h * g.w..][..g.c * g.h * g.w];
                    if cv {
                        wd.fill(xn, g.c, g, bi);
                        // dy^T blocked by (group, channel block): [gi][ob][img][pixel][c]
                        for gi in 0..g.groups {
                            for ob in 0..cnob {
                                let blk = &mut abuf[((gi * cnob + ob) * nimg + i) * p * cow..][..p * cow];
                                for c in 0..cow {
                                    let src = &dy[(n * g.o + gi * og + ob * cow + c) * p..][..p];
                                    for (pi, &v) in src.iter().enumerate() {
                                        blk[pi * cow + c] = v;
                                    }
                                }
                            }
                        }
                    } else if direct {
                        wd.fill(xn, g.c, g, bi);
                        let ai = &mut abuf[i * a_len..][..a_len];
                        for o in 0..g.o {
                            widen(
                                &mut ai[o * red_len..][..red_len],
                                &dy[(n * g.o + o) * p..][..p],
                                g.ow,
                                wd.wq,
                            );
                        }
                    } else {
                        let ai = &mut abuf[i * a_len..][..a_len];
                        for o in 0..g.o {
                            let d = &mut ai[o * red_len..][..red_len];
                            d[..p].copy_from_slice(&dy[(n * g.o + o) * p..][..p]);
                            d[p..].fill(0.0);
                        }
                        for c in 0..g.c {
                            let xc = &xn[c * g.h * g.w..][..g.h * g.w];
                            for ky in 0..g.kh {
                                for kx in 0..g.kw {
                                    let k = (c * g.kh + ky) * g.kw + kx;
                                    im2col_row(&mut bi[k * red_len..][..red_len], xc, g, ky, kx, 0, p);
                                }
                            }
                        }
                    }
                }
                if cv {
                    let mut buf = [0f32; 8 * 64];
                    for gi in 0..g.groups {
                        for ob in 0..cnob {
                            let a_blk = &abuf[(gi * cnob + ob) * nimg * p * cow..][..nimg * p * cow];
                            for kt in 0..kd.div_ceil(cmr) {
                                // SAFETY: tap and pixel offsets stay inside the chunk's planes
                                // (q < len, taps <= max_off); buf holds cmr x cow floats.
                                unsafe {
                                    kernels::cvec(
                                        cmr,
                                        cnv,
                                        nimg * p,
                                        a_blk.as_ptr(),
                                        bbuf[gi * wd.image_len(cg)..].as_ptr(),
                                        red_offs.as_ptr(),
                                        tap_offs[kt * cmr..].as_ptr(),
                                        buf.as_mut_ptr(),
                                    );
                                }
                                let o0 = gi * og + ob * cow;
                                for i in 0..cmr.min(kd - kt * cmr) {
                                    for c in 0..cow {
                                        acc[(o0 + c) * kd + kt * cmr + i] += buf[i * cow + c];
                                    }
                                }
                            }
                        }
                    }
                    return;
                }
                let nvec = red_len / LANES;
                let b_group = if direct { wd.image_len(cg) } else { cg * taps * red_len };
                let (abase, bbase) = if raw {
                    (dy[n0 * a_len..].as_ptr(), x[n0 * b_rows_len..].as_ptr())
                } else {
                    (abuf.as_ptr(), bbuf.as_ptr())
                };
                for gi in 0..g.groups {
                    for ob in 0..nob {
                        let mo = MAX_DOT.min(og - ob * MAX_DOT);
                        let o = gi * og + ob * MAX_DOT;
                        for kb in 0..nkb {
                            let nk = MAX_DOT.min(kd - kb * MAX_DOT);
                            // SAFETY: rows are red_len long (whole vectors); the padded
                            // planes cover every shifted read (Wide::new).
                            unsafe {
                                kernels::dot(
                                    mo,
                                    nk,
                                    nimg,
                                    nvec,
                                    abase.add(o * red_len),
                                    red_len,
                                    a_len,
                                    bbase.add(gi * b_group),
                                    koff[kb * MAX_DOT..].as_ptr(),
                                    b_rows_len,
                                    acc[o * kd + kb * MAX_DOT..].as_mut_ptr(),
                                    kd,
                                );
                            }
                        }
                    }
                }
            });
        }
    });
    let (first, rest) = partials.split_at_mut(wlen);
    for p in rest.chunks_exact(wlen) {
        for (a, b) in first.iter_mut().zip(p) {
            *a += b;
        }
    }
    partials.truncate(wlen);
    partials
}
