//! CPU convolution passes (f32, contiguous NCHW): forward, input gradient, weight gradient.
//!
//! Two data paths feed the micro-kernels in [`super::kernels`]:
//! * **direct** (stride 1): each image is copied once into a zero-padded buffer whose channel
//!   planes are rows of width `wp = w + 2*pw`. On that "wide" grid, output pixel
//!   `q = oy*wp + ox` reads tap `(ky, kx)` of channel `c` at `c*plane + q + ky*wp + kx`, so a
//!   tile of consecutive `q` is a plain shifted window and no im2col buffer is needed. The
//!   `wp - ow` junk columns per row are computed and dropped (6% at 32x32, 3x3).
//! * **im2col** (any stride): per image and group, panels of 16*NV output pixels are unfolded
//!   into a `[K][NR]` buffer that stays in L1 while every output-channel block consumes it.
//!
//! Work is split over images (rayon); each task works on cache-sized per-thread scratch.
use super::geom::{round_up, split_parts, with_scratch, Geom, SyncPtr};
use super::im2col::{col2im_row, im2col_row, pad_image};
use super::kernels::{self, LANES, MAX_DOT, MAX_MR};
use super::par;

/// Output-channel rows per forward tile.
const MR: usize = MAX_MR;

/// How a pass lays out its data; picked per call by [`choose_path`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    Direct,
    Im2col,
}

fn forced_path() -> Option<Path> {
    static FORCED: std::sync::OnceLock<Option<Path>> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| match std::env::var("SHRINK_CONV_PATH").as_deref() {
        Ok("direct") => Some(Path::Direct),
        Ok("im2col") => Some(Path::Im2col),
        _ => None,
    })
}

/// Direct for stride 1 unless the junk-column overhead of the wide grid is large compared
/// with the cost of unfolding (few output channels amortize an im2col copy badly).
pub(crate) fn choose_path(g: &Geom) -> Path {
    if g.sh != 1 || g.sw != 1 {
        return Path::Im2col;
    }
    if let Some(p) = forced_path() {
        return p;
    }
    let wp = g.w + 2 * g.pw;
    // junk fraction of the wide grid vs. relative im2col cost ~ 2 / (out channels per group)
    let junk = (wp - g.ow) as f64 / wp as f64;
    let im2col_cost = 2.0 / g.og().max(1) as f64;
    if junk <= im2col_cost.max(0.13) {
        Path::Direct
    } else {
        Path::Im2col
    }
}

/// Layout of the zero-padded image copy used by the direct path.
#[derive(Clone, Copy, Debug)]
struct Wide {
    wp: usize,
    /// Valid wide outputs per channel (`oh * wp`).
    len: usize,
    /// `len` rounded up to whole tiles.
    len_pad: usize,
    /// Floats per channel plane of the padded copy (covers every tile's reads).
    plane: usize,
}

impl Wide {
    fn new(g: &Geom, tile: usize) -> Wide {
        let hp = g.h + 2 * g.ph;
        let wp = g.w + 2 * g.pw;
        let len = g.oh * wp;
        let len_pad = round_up(len, tile);
        let need = (len_pad + (g.kh - 1) * wp + g.kw - 1).max(hp * wp + g.pw);
        Wide { wp, len, len_pad, plane: round_up(need, LANES) }
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

/// Tile width in vectors for the forward kernel.
fn fwd_nv(g: &Geom) -> usize {
    let _ = g;
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

/// [`forward`] with an explicit data path (`Direct` requires stride 1).
pub(crate) fn forward_with(x: &[f32], w: &[f32], g: &Geom, path: Path) -> Vec<f32> {
    assert!(path == Path::Im2col || (g.sh == 1 && g.sw == 1), "direct path needs stride 1");
    let mut y = vec![0f32; g.y_len()];
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
            let wd = Wide::new(g, tile);
            let ntiles = wd.len_pad / tile;
            let split = task_split(g.n, ntiles);
            let per = ntiles.div_ceil(split);
            // koff for one group: channel c tap (ky, kx) -> c*plane + ky*wp + kx
            let koff: Vec<usize> = (0..g.cg())
                .flat_map(|c| {
                    (0..g.kh).flat_map(move |ky| (0..g.kw).map(move |kx| c * wd.plane + ky * wd.wp + kx))
                })
                .collect();
            par::for_each(g.n * split, 1, |task| {
                let (n, s) = (task / split, task % split);
                let (t0, t1) = (s * per, ((s + 1) * per).min(ntiles));
                if t0 >= t1 {
                    return;
                }
                let span = (t1 - t0) * tile;
                with_scratch(g.c * wd.plane + g.o * span, |scr| {
                    let [xp, obuf] = split_parts(scr, [g.c * wd.plane, g.o * span]);
                    pad_image(&x[n * g.c * g.h * g.w..], g.c, g.h, g.w, g.ph, g.pw, wd.plane, xp);
                    for gi in 0..g.groups {
                        let xg = xp[gi * g.cg() * wd.plane..].as_ptr();
                        for t in t0..t1 {
                            for b in 0..nb {
                                let mr = MR.min(og - b * MR);
                                let row = gi * og + b * MR;
                                // SAFETY: the padded plane covers every tile's reads (Wide::new);
                                // obuf holds o rows of `span` floats.
                                unsafe {
                                    kernels::bcast(
                                        mr,
                                        nv,
                                        kd,
                                        apack[astart[gi * nb + b]..].as_ptr(),
                                        xg.add(t * tile),
                                        koff.as_ptr(),
                                        obuf.as_mut_ptr().add(row * span + (t - t0) * tile),
                                        span,
                                    );
                                }
                            }
                        }
                    }
                    // Keep the valid columns of the wide rows.
                    let q0 = t0 * tile;
                    let q1 = (t1 * tile).min(wd.len);
                    let yn = yp;
                    for o in 0..g.o {
                        let src = &obuf[o * span..][..span];
                        let mut q = q0;
                        while q < q1 {
                            let (oy, ox) = (q / wd.wp, q % wd.wp);
                            let run_end = (q - ox + wd.wp).min(q1);
                            if ox < g.ow {
                                let cnt = (g.ow - ox).min(run_end - q);
                                let dst = ((n * g.o + o) * g.oh + oy) * g.ow + ox;
                                // SAFETY: each (n, o, oy, ox) is written by exactly one task.
                                unsafe {
                                    std::ptr::copy_nonoverlapping(
                                        src[q - q0..].as_ptr(),
                                        yn.ptr().add(dst),
                                        cnt,
                                    );
                                }
                            }
                            q = run_end;
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
    y
}

/// Whether the input gradient can run as a stride-1 forward convolution of the padded output
/// gradient with the flipped, transposed kernel.
fn bwd_data_as_forward(g: &Geom) -> bool {
    g.sh == 1 && g.sw == 1 && g.ph < g.kh && g.pw < g.kw
}

/// Input gradient `dx[N, C, H, W]` of the convolution `g` given `dy[N, O, OH, OW]`.
pub(crate) fn backward_data(dy: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    backward_data_with(dy, w, g, bwd_data_as_forward(g).then_some(None))
}

/// [`backward_data`]; `as_forward = Some(path)` runs it as a forward convolution (stride 1 and
/// padding < kernel only) on `path` (`None`: chosen per shape), `None` uses col2im.
pub(crate) fn backward_data_with(
    dy: &[f32],
    w: &[f32],
    g: &Geom,
    as_forward: Option<Option<Path>>,
) -> Vec<f32> {
    let (og, cg, kd, taps) = (g.og(), g.cg(), g.kdim(), g.taps());
    if let Some(path) = as_forward {
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
        let gt = Geom {
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
        };
        debug_assert_eq!(gt.oh, g.oh + 2 * gt.ph + 1 - g.kh);
        return forward_with(dy, &wt, &gt, path.unwrap_or_else(|| choose_path(&gt)));
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

/// Weight gradient `dw[O, C/groups, kh, kw]` of the convolution `g`.
pub(crate) fn backward_filter(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    backward_filter_with(x, dy, g, choose_path(g))
}

/// [`backward_filter`] with an explicit data path (`Direct` requires stride 1).
pub(crate) fn backward_filter_with(x: &[f32], dy: &[f32], g: &Geom, path: Path) -> Vec<f32> {
    assert!(path == Path::Im2col || (g.sh == 1 && g.sw == 1), "direct path needs stride 1");
    let (og, cg, kd, taps) = (g.og(), g.cg(), g.kdim(), g.taps());
    let wlen = g.w_len();
    if g.n == 0 || g.y_len() == 0 {
        return vec![0f32; wlen];
    }
    // Per image: `a` = output-gradient rows (o), `b` = input rows per tap (k), both laid out
    // over the same reduction axis (wide grid or im2col pixels), zero where junk.
    let direct = path == Path::Direct;
    let (red_len, b_rows_len, koff): (usize, usize, Vec<usize>) = if direct {
        let wd = Wide::new(g, LANES);
        let koff = (0..cg)
            .flat_map(|c| {
                (0..g.kh).flat_map(move |ky| (0..g.kw).map(move |kx| c * wd.plane + ky * wd.wp + kx))
            })
            .collect();
        (wd.len_pad, g.c * wd.plane, koff)
    } else {
        let ppad = round_up(g.p(), LANES);
        (ppad, g.c * taps * ppad, (0..kd).map(|k| k * ppad).collect())
    };
    let a_len = g.o * red_len;
    let img_floats = a_len + b_rows_len;
    // Images per chunk: keep a chunk's operands around 384 KiB (L2-resident).
    let per_chunk = ((96 * 1024) / img_floats.max(1)).clamp(1, g.n);
    let threads = par::threads();
    let per_chunk = per_chunk.min(g.n.div_ceil(threads)).max(1);
    let nchunks = g.n.div_ceil(per_chunk);
    let wd = Wide::new(g, LANES);
    let p = g.p();
    let (nob, nkb) = (og.div_ceil(MAX_DOT), kd.div_ceil(MAX_DOT));
    // Deterministic reduction: a fixed number of tasks, each summing its run of chunks into
    // its own partial, added up in task order.
    let ntasks = nchunks.min(2 * threads).max(1);
    let chunks_per_task = nchunks.div_ceil(ntasks);
    let mut partials = vec![0f32; ntasks * wlen];
    let pp = SyncPtr(partials.as_mut_ptr());
    par::for_each(ntasks, 1, |task| {
        // SAFETY: each task owns its own partial.
        let acc = unsafe { std::slice::from_raw_parts_mut(pp.ptr().add(task * wlen), wlen) };
        for ch in task * chunks_per_task..((task + 1) * chunks_per_task).min(nchunks) {
            let n0 = ch * per_chunk;
            let nimg = per_chunk.min(g.n - n0);
            with_scratch(nimg * img_floats, |scr| {
                let [abuf, bbuf] = split_parts(scr, [nimg * a_len, nimg * b_rows_len]);
                for i in 0..nimg {
                    let n = n0 + i;
                    let ai = &mut abuf[i * a_len..][..a_len];
                    let bi = &mut bbuf[i * b_rows_len..][..b_rows_len];
                    let xn = &x[n * g.c * g.h * g.w..][..g.c * g.h * g.w];
                    if direct {
                        pad_image(xn, g.c, g.h, g.w, g.ph, g.pw, wd.plane, bi);
                        for o in 0..g.o {
                            let d = &mut ai[o * red_len..][..red_len];
                            d.fill(0.0);
                            for oy in 0..g.oh {
                                d[oy * wd.wp..][..g.ow]
                                    .copy_from_slice(&dy[((n * g.o + o) * g.oh + oy) * g.ow..][..g.ow]);
                            }
                        }
                    } else {
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
                let nvec = red_len / LANES;
                let b_group = if direct { cg * wd.plane } else { cg * taps * red_len };
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
                                    abuf[o * red_len..].as_ptr(),
                                    red_len,
                                    a_len,
                                    bbuf[gi * b_group..].as_ptr(),
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
