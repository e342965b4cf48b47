//! Convolution geometry and small shared helpers (scratch buffers, raw output pointers).
use std::cell::RefCell;

/// Shapes of one grouped 2-D convolution, NCHW, PyTorch semantics (dilation 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub groups: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geom {
    /// Checks the configuration and derives the output size.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        x: [usize; 4],
        w: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
        groups: usize,
    ) -> std::result::Result<Geom, String> {
        let [n, c, h, wd] = x;
        let [o, cg, kh, kw] = w;
        if groups == 0 || c % groups != 0 || o % groups != 0 {
            return Err(format!("conv2d: groups {groups} must divide in {c} and out {o} channels"));
        }
        if cg * groups != c {
            return Err(format!("conv2d: weight expects {} input channels, input has {c}", cg * groups));
        }
        if stride[0] == 0 || stride[1] == 0 || kh == 0 || kw == 0 {
            return Err("conv2d: stride and kernel must be positive".into());
        }
        let (hp, wp) = (h + 2 * padding[0], wd + 2 * padding[1]);
        if hp < kh || wp < kw {
            return Err(format!("conv2d: kernel {kh}x{kw} larger than padded input {hp}x{wp}"));
        }
        Ok(Geom {
            n,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            sh: stride[0],
            sw: stride[1],
            ph: padding[0],
            pw: padding[1],
            groups,
            oh: (hp - kh) / stride[0] + 1,
            ow: (wp - kw) / stride[1] + 1,
        })
    }

    /// Input channels per group.
    pub fn cg(&self) -> usize {
        self.c / self.groups
    }
    /// Output channels per group.
    pub fn og(&self) -> usize {
        self.o / self.groups
    }
    /// Kernel taps.
    pub fn taps(&self) -> usize {
        self.kh * self.kw
    }
    /// Reduction length of one group's GEMM (`Cg * kh * kw`).
    pub fn kdim(&self) -> usize {
        self.cg() * self.taps()
    }
    /// Output pixels per image and channel.
    pub fn p(&self) -> usize {
        self.oh * self.ow
    }
    pub fn x_len(&self) -> usize {
        self.n * self.c * self.h * self.w
    }
    pub fn y_len(&self) -> usize {
        self.n * self.o * self.p()
    }
    pub fn w_len(&self) -> usize {
        self.o * self.kdim()
    }
    /// Multiply-adds of the forward pass.
    #[allow(dead_code)]
    pub fn macs(&self) -> usize {
        self.y_len() * self.kdim()
    }
}

pub(crate) fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// A raw pointer that may cross threads; every user writes disjoint ranges.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr(pub *mut f32);
// SAFETY: only used for writes to disjoint regions, joined before the buffer is read.
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    #[inline]
    pub fn ptr(self) -> *mut f32 {
        self.0
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a per-thread scratch buffer of at least `len` floats (contents unspecified).
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                *v = vec![0f32; len];
            }
            f(&mut v[..len])
        }
        Err(_) => f(&mut vec![0f32; len]),
    })
}

/// Splits `buf` into consecutive parts of the given lengths.
pub(crate) fn split_parts<const K: usize>(mut buf: &mut [f32], lens: [usize; K]) -> [&mut [f32]; K] {
    let mut out: [&mut [f32]; K] = std::array::from_fn(|_| &mut [][..]);
    for (i, &l) in lens.iter().enumerate() {
        let (a, b) = std::mem::take(&mut buf).split_at_mut(l);
        out[i] = a;
        buf = b;
    }
    out
}

/// An empty `Vec<f32>` with capacity `len`, for op outputs that are fully overwritten before
/// `set_len` (no memset of memory that is about to be written anyway).
pub(crate) fn alloc_output(len: usize) -> Vec<f32> {
    Vec::with_capacity(len)
}
