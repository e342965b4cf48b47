//! Evaluation of maintained int8 GEMM crates against shrink-kernels' own int8 GEMM, on the
//! shapes shrink runs: simple-dnn's linear layers (M = 1 and 64) and ResNet-20's convolutions
//! as GEMM (M = 1024 output pixels). All compute u8/i8 × i8 → i32 with weights prepacked once;
//! activations are packed inside the timed call when a library needs it (as at inference).
//!
//! `RAYON_NUM_THREADS=2 cargo bench -p shrink-kernels --features compare --bench int8_gemm --
//!  --warm-up-time 1 --measurement-time 3`
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use shrink_kernels::{gemm_u8i8_i32, Isa, PackedI8};

/// (label, M, N, K).
fn shapes() -> Vec<(&'static str, usize, usize, usize)> {
    vec![
        ("fc 1568x784", 1, 1568, 784),
        ("fc 1568x784", 64, 1568, 784),
        ("fc 6272x3136", 1, 6272, 3136),
        ("fc 6272x3136", 64, 6272, 3136),
        ("conv N16 K144", 1024, 16, 144),
        ("conv N32 K288", 1024, 32, 288),
        ("conv N64 K576", 1024, 64, 576),
    ]
}

fn data(m: usize, n: usize, k: usize) -> (Vec<u8>, Vec<i8>) {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 32) as u32
    };
    let x = (0..m * k).map(|_| next() as u8).collect();
    let w = (0..n * k).map(|_| (next() % 255) as i32 as i8).collect();
    (x, w)
}

fn bench(c: &mut Criterion) {
    tract_linalg::multithread::set_default_executor(tract_linalg::multithread::Executor::RayonGlobal);
    let mut g = c.benchmark_group("int8_gemm");
    for (label, m, n, k) in shapes() {
        let id = format!("{label} M={m}");
        let (x, w) = data(m, n, k);

        // shrink-kernels, best ISA (VNNI here).
        let packed = PackedI8::pack(&w, n, k).unwrap();
        let mut y = vec![0i32; m * n];
        let isa = Isa::detect();
        gemm_u8i8_i32(isa, &x, m, 3, &packed, &mut y).unwrap();
        g.bench_function(BenchmarkId::new(format!("shrink-kernels ({isa})"), &id), |b| {
            b.iter(|| gemm_u8i8_i32(isa, &x, m, 3, &packed, &mut y).unwrap())
        });

        // rten-gemm: A = X [M, K] u8, B = Wᵀ [K, N] i8 (a transposed view of W), zero points.
        {
            use rten_gemm::{GemmExecutor, GemmInputA, GemmInputB, GemmOptions, QuantParams};
            use rten_tensor::prelude::*;
            use rten_tensor::NdTensor;
            let gemm = GemmExecutor::<u8, i8, i32>::default();
            let a = NdTensor::from_data([m, k], x.clone());
            let mut bt = NdTensor::from_data([n, k], w.clone());
            bt.permute([1, 0]);
            let pb = gemm.prepack_b(bt.view());
            let za = vec![3u8; m];
            let zb = vec![0i8; n];
            let mut out = vec![0i32; m * n];
            let opts = || GemmOptions {
                a_quant: Some(QuantParams { zero_point: &za }),
                b_quant: Some(QuantParams { zero_point: &zb }),
                ..Default::default()
            };
            gemm.gemm(&mut out, GemmInputA::Unpacked(a.view()), GemmInputB::Packed(&pb), opts()).unwrap();
            assert_eq!(out, y, "rten-gemm disagrees on {id}");
            g.bench_function(BenchmarkId::new(format!("rten-gemm ({})", gemm.kernel_name()), &id), |b| {
                b.iter(|| {
                    gemm.gemm(&mut out, GemmInputA::Unpacked(a.view()), GemmInputB::Packed(&pb), opts())
                        .unwrap()
                })
            });
        }

        // tract-linalg: i8 × i8 → i32 (its int8 kernels are signed × signed), A = W [N, K]
        // packed once, B = X packed per call, C = Yᵀ [N, M].
        {
            use tract_data::internal::*;
            use tract_linalg::mmm::{AsInputValue, FusedSpec};
            let mmm = tract_linalg::MmmDispatch::native()
                .preferred_kernel(DatumType::I32, Some(n), Some(k), Some(m))
                .unwrap();
            let wt = Tensor::from_shape::<i8>(&[n, k], &w).unwrap();
            let xs: Vec<i8> = x.iter().map(|&v| (v as i32 - 128) as i8).collect();
            let xt = Tensor::from_shape::<i8>(&[m, k], &xs).unwrap();
            let packing = &mmm.packings()[1];
            let pa = packing.0.prepare_one(&wt, 1, 0).unwrap();
            let mut c = Tensor::zero::<i32>(&[n, m]).unwrap();
            let run = |c: &mut Tensor| unsafe {
                let pb = packing.1.prepare_one(&xt, 1, 0).unwrap();
                mmm.run(
                    n,
                    m,
                    &[
                        FusedSpec::AddMatMul {
                            a: AsInputValue::Borrowed(&*pa),
                            b: AsInputValue::Borrowed(&*pb),
                            packing: 1,
                        },
                        FusedSpec::Store(mmm.c_view(Some(0), Some(1)).wrap(&c.view_mut())),
                    ],
                )
                .unwrap()
            };
            run(&mut c);
            let mut want = vec![0i32; m * n];
            gemm_u8i8_i32(isa, &x, m, 128, &packed, &mut want).unwrap();
            let got: Vec<i32> = c.to_plain_array_view::<i32>().unwrap().iter().copied().collect();
            for i in 0..m {
                for j in 0..n {
                    assert_eq!(got[j * m + i], want[i * n + j], "tract-linalg disagrees on {id}");
                }
            }
            g.bench_function(BenchmarkId::new(format!("tract-linalg ({})", mmm.name()), &id), |b| {
                b.iter(|| run(&mut c))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
