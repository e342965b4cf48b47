//! Conv2d / ResNet-20 training-step benchmarks (compare with `bench/conv_torch.py`).
//!
//! ```text
//! cargo bench -p shrink-ir --bench conv                 # everything
//! cargo bench -p shrink-ir --bench conv -- conv/fwd     # one benchmark (criterion filter)
//! ```
//! Throughput is reported as "elem/s": for the conv groups one element is one FLOP
//! (so `Gelem/s` reads GFLOP/s; forward+backward counts 3x the forward FLOPs), for the
//! ResNet group one element is one sample.
use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shrink_ir::{ops, zoo, Mode};
use std::hint::black_box;
use std::time::Duration;

/// The allocator the `shrink` CLI uses (recycles large tensor buffers between steps), so the
/// benchmark sees what training sees.
#[global_allocator]
static ALLOC: shrink_ir::alloc::RecyclingAlloc = shrink_ir::alloc::RecyclingAlloc::new();

const N: usize = 256;
const C: usize = 16;
const O: usize = 16;
const HW: usize = 32;
const K: usize = 3;

fn conv_flops() -> u64 {
    (2 * N * O * HW * HW * C * K * K) as u64
}

fn conv_inputs() -> (Var, Var) {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (N, C, HW, HW), &dev).unwrap();
    let w = (Tensor::randn(0f32, 1.0, (O, C, K, K), &dev).unwrap() * 0.1).unwrap();
    (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap())
}

fn bench_conv(c: &mut Criterion) {
    shrink_ir::alloc::tune_system_allocator();
    let (x, w) = conv_inputs();
    let mut g = c.benchmark_group("conv");
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(conv_flops()));
    g.bench_function("fwd", |b| {
        let (x, w) = (x.as_tensor().detach(), w.as_tensor().detach());
        b.iter(|| black_box(ops::conv2d(&x, &w, [1, 1], [1, 1], 1).unwrap()))
    });
    g.bench_function("fwd_candle", |b| {
        let (x, w) = (x.as_tensor().detach(), w.as_tensor().detach());
        b.iter(|| black_box(x.conv2d(&w, 1, 1, 1, 1).unwrap()))
    });
    g.throughput(Throughput::Elements(3 * conv_flops()));
    g.bench_function("fwd_bwd", |b| {
        b.iter(|| {
            let y = ops::conv2d(x.as_tensor(), w.as_tensor(), [1, 1], [1, 1], 1).unwrap();
            black_box(y.sum_all().unwrap().backward().unwrap())
        })
    });
    g.bench_function("fwd_bwd_candle", |b| {
        b.iter(|| {
            let y = x.as_tensor().conv2d(w.as_tensor(), 1, 1, 1, 1).unwrap();
            black_box(y.sum_all().unwrap().backward().unwrap())
        })
    });
    g.finish();
}

/// One ResNet-20 training step: forward (train mode), cross-entropy, backward, plain SGD.
pub fn resnet_step(model: &shrink_ir::Model, x: &Tensor, labels: &Tensor, sgd: bool) {
    let logits = model.forward(x, Mode::Train { seed: 0 }).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, labels).unwrap();
    let grads = loss.backward().unwrap();
    if sgd {
        for (_, p) in model.params.iter() {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                p.var.set(&(p.var.as_tensor() - (g * 0.01).unwrap()).unwrap()).unwrap();
            }
        }
    }
}

fn bench_resnet(c: &mut Criterion) {
    const BS: usize = 128;
    let dev = Device::Cpu;
    let model = zoo::build("resnet20", 0, &dev).unwrap();
    let x = Tensor::randn(0f32, 1.0, (BS, 3, 32, 32), &dev).unwrap();
    // Pseudo-random labels in 0..10 (fixed LCG so runs are comparable).
    let mut state = 0x2545_f491_u32;
    let labels: Vec<u32> = (0..BS)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 16) % 10
        })
        .collect();
    let labels = Tensor::from_vec(labels, BS, &dev).unwrap();
    let mut g = c.benchmark_group("resnet20");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(BS as u64));
    g.bench_function("train_step_b128", |b| b.iter(|| resnet_step(&model, &x, &labels, false)));
    g.finish();
}

criterion_group!(benches, bench_conv, bench_resnet);
criterion_main!(benches);
