//! Per-layer latency of every representation on simple-dnn's layers (784→1568→3136→6272→10),
//! batch 1 and 64: fp32 dense (the `gemm` crate, shrink's current f32 path) vs int8 (u8 × i8,
//! f32 epilogue) vs int4 weight-only (group 128) vs CSR f32 / CSR i8 at 90 % unstructured
//! sparsity vs block-sparse 1×4 at 90 % (block-pruned).
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p shrink-kernels --bench kernels --
//!  --warm-up-time 1 --measurement-time 3`, then `bench/kernels_table.sh kernels`.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use shrink_kernels::*;

/// simple-dnn's linear layers as (N, K).
const LAYERS: [(usize, usize); 4] = [(1568, 784), (3136, 1568), (6272, 3136), (10, 6272)];

struct Gen(u64);
impl Gen {
    fn f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn bench(c: &mut Criterion) {
    let isa = Isa::detect();
    let threads = rayon::current_num_threads();
    let mut r = Gen(0x9E37_79B9_7F4A_7C15);
    let mut g = c.benchmark_group("kernels");
    for (n, k) in LAYERS {
        let w: Vec<f32> = (0..n * k).map(|_| r.f32() * 0.05).collect();
        let bias: Vec<f32> = (0..n).map(|_| r.f32()).collect();
        // Unstructured 90 %: drop the 90 % smallest magnitudes (~ uniform here: keep |w| > 0.9·max).
        let w90: Vec<f32> = w.iter().map(|&v| if v.abs() > 0.045 { v } else { 0.0 }).collect();
        // Block 1×4 at 90 %: keep whole 1×4 blocks whose first entry is large.
        let mut wb = w.clone();
        for row in wb.chunks_mut(k) {
            for q in row.chunks_mut(4) {
                if q[0].abs() <= 0.045 {
                    q.fill(0.0);
                }
            }
        }
        let qw: Vec<i8> = w.iter().map(|&v| (v / 0.05 * 127.0).round() as i8).collect();
        let packed8 = PackedI8::pack(&qw, n, k).unwrap();
        let sw = vec![0.05 / 127.0; n];
        let ep = Int8Epilogue { weight_scales: &sw, bias: Some(&bias), act: Activation::Relu };
        let packed4 = PackedI4::quantize(&w, n, k, Int4Group::Group(128)).unwrap();
        let csr = Csr::from_dense(&w90, n, k).unwrap();
        let csr8 = CsrI8::quantize(&w90, n, k).unwrap();
        let blk = Block14::from_dense(&wb, n, k).unwrap();
        for m in [1usize, 64] {
            let id = format!("{n}x{k} M={m}");
            let x: Vec<f32> = (0..m * k).map(|_| r.f32()).collect();
            let xq = QuantParams { scale: 1.0 / 127.0, zero_point: 128 };
            let x8: Vec<u8> = x.iter().map(|&v| xq.quantize(v)).collect();
            let mut y = vec![0f32; m * n];
            g.bench_function(BenchmarkId::new("fp32 dense (gemm)", &id), |b| {
                b.iter(|| unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        y.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        x.as_ptr(),
                        1,
                        k as isize,
                        w.as_ptr(),
                        k as isize,
                        1,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::Rayon(threads),
                    )
                })
            });
            g.bench_function(BenchmarkId::new(format!("int8 ({isa})"), &id), |b| {
                b.iter(|| gemm_u8i8_f32(isa, &x8, m, xq, &packed8, &ep, &mut y).unwrap())
            });
            g.bench_function(BenchmarkId::new("int4 g128", &id), |b| {
                b.iter(|| linear_i4(isa, &x, m, &packed4, Some(&bias), Activation::Relu, &mut y).unwrap())
            });
            g.bench_function(BenchmarkId::new("CSR f32 90%", &id), |b| {
                b.iter(|| csr_linear(isa, &x, m, &csr, Some(&bias), Activation::Relu, &mut y).unwrap())
            });
            g.bench_function(BenchmarkId::new("CSR i8 90%", &id), |b| {
                b.iter(|| csr_i8_linear(isa, &x, m, &csr8, Some(&bias), Activation::Relu, &mut y).unwrap())
            });
            g.bench_function(BenchmarkId::new("block 1x4 90%", &id), |b| {
                b.iter(|| block14_linear(isa, &x, m, &blk, Some(&bias), Activation::Relu, &mut y).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
