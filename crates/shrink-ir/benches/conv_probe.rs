//! Quick timing probe for profiling (not a criterion bench):
//! `cargo bench -p shrink-ir --bench conv_probe -- <what> [iters]` with `what` one of
//! `fwd`, `fwd_bwd`, `resnet`, `resnet_fwd`.
use candle_core::{Device, Tensor, Var};
use shrink_ir::{ops, zoo, Mode};
use std::time::Instant;

fn time<F: FnMut()>(name: &str, iters: usize, work: f64, unit: &str, mut f: F) {
    f();
    let mut ts = Vec::new();
    for _ in 0..iters {
        let t = Instant::now();
        f();
        ts.push(t.elapsed().as_secs_f64());
    }
    ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let med = ts[ts.len() / 2];
    println!("{name} {:.2} {unit} ({:.2} ms median, {:.2} ms min)", work / med, med * 1e3, ts[0] * 1e3);
}

/// Min time of `f` over `iters` runs (after one warm-up), in ms.
fn min_ms<F: FnMut()>(iters: usize, mut f: F) -> f64 {
    f();
    (0..iters)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// Per-layer costs of a ResNet-20 step at batch 128 (forward and forward+backward of each
/// distinct conv / BN shape, times how often it occurs).
fn layers(iters: usize) {
    let dev = Device::Cpu;
    let bs = 128;
    // (cin, cout, hw_in, stride, count)
    let convs = [(3, 16, 32, 1, 1), (16, 16, 32, 1, 6), (16, 32, 32, 2, 1), (32, 32, 16, 1, 5), (32, 64, 16, 2, 1), (64, 64, 8, 1, 5)];
    let (mut tf, mut tb) = (0.0, 0.0);
    for (ci, co, hw, s, cnt) in convs {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (bs, ci, hw, hw), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&(Tensor::randn(0f32, 1.0, (co, ci, 3, 3), &dev).unwrap() * 0.1).unwrap()).unwrap();
        let xd = x.as_tensor().detach();
        let f = min_ms(iters, || {
            ops::conv2d(&xd, w.as_tensor(), [s, s], [1, 1], 1).unwrap();
        });
        let xin = if ci == 3 { xd.clone() } else { x.as_tensor().clone() };
        let fb = min_ms(iters, || {
            let y = ops::conv2d(&xin, w.as_tensor(), [s, s], [1, 1], 1).unwrap();
            y.sum_all().unwrap().backward().unwrap();
        });
        let oh = hw / s;
        let gf = 2.0 * (bs * co * oh * oh * ci * 9) as f64 / 1e6;
        println!(
            "conv {ci:>2}->{co:>2} @{hw:>2} s{s} x{cnt}: fwd {f:7.2} ms ({:6.1} GFLOP/s)  fwd+bwd {fb:7.2} ms ({:6.1} GFLOP/s)",
            gf / f,
            if ci == 3 { 2.0 } else { 3.0 } * gf / fb
        );
        tf += f * cnt as f64;
        tb += fb * cnt as f64;
    }
    println!("conv total per step: fwd {tf:.1} ms, fwd+bwd {tb:.1} ms");
    let (mut bf, mut bb) = (0.0, 0.0);
    for (c, hw, cnt) in [(16, 32, 7), (32, 16, 6), (64, 8, 6)] {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (bs, c, hw, hw), &dev).unwrap()).unwrap();
        let g = Var::from_tensor(&Tensor::ones(c, candle_core::DType::F32, &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::zeros(c, candle_core::DType::F32, &dev).unwrap()).unwrap();
        let f = min_ms(iters, || {
            ops::batch_norm_train(&x.as_tensor().detach(), g.as_tensor(), b.as_tensor(), 1e-5).unwrap();
        });
        let fb = min_ms(iters, || {
            let (y, _) = ops::batch_norm_train(x.as_tensor(), g.as_tensor(), b.as_tensor(), 1e-5).unwrap();
            y.sum_all().unwrap().backward().unwrap();
        });
        let r = min_ms(iters, || {
            x.as_tensor().relu().unwrap().sum_all().unwrap().backward().unwrap();
        });
        let s = min_ms(iters, || {
            x.as_tensor().sum_all().unwrap().backward().unwrap();
        });
        println!("bn {c:>2} @{hw:>2} x{cnt}: fwd {f:6.2} ms  fwd+bwd {fb:6.2} ms | candle relu fwd+bwd {r:6.2} ms | sum_all+bwd alone {s:6.2} ms");
        bf += f * cnt as f64;
        bb += fb * cnt as f64;
    }
    println!("bn total per step: fwd {bf:.1} ms, fwd+bwd {bb:.1} ms");
}

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| !a.starts_with("--")).collect();
    let what = args.get(1).map(String::as_str).unwrap_or("fwd");
    let iters: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let dev = Device::Cpu;
    let (n, c, o, hw, k) = (256, 16, 16, 32, 3);
    let flops = (2 * n * o * hw * hw * c * k * k) as f64;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, c, hw, hw), &dev).unwrap()).unwrap();
    let w = Var::from_tensor(&(Tensor::randn(0f32, 1.0, (o, c, k, k), &dev).unwrap() * 0.1).unwrap()).unwrap();
    match what {
        "fwd" => time("conv_fwd", iters, flops / 1e9, "GFLOP/s", || {
            ops::conv2d(&x.as_tensor().detach(), &w.as_tensor().detach(), [1, 1], [1, 1], 1).unwrap();
        }),
        "fwd_bwd" => time("conv_fwd_bwd", iters, 3.0 * flops / 1e9, "GFLOP/s", || {
            let y = ops::conv2d(x.as_tensor(), w.as_tensor(), [1, 1], [1, 1], 1).unwrap();
            y.sum_all().unwrap().backward().unwrap();
        }),
        "resnet" | "resnet_fwd" => {
            let bs = 128;
            let model = zoo::build("resnet20", 0, &dev).unwrap();
            let xb = Tensor::randn(0f32, 1.0, (bs, 3, 32, 32), &dev).unwrap();
            let labels = Tensor::from_vec((0..bs as u32).map(|i| (i * 7 + 3) % 10).collect::<Vec<_>>(), bs, &dev).unwrap();
            let bwd = what == "resnet";
            time(what, iters, bs as f64, "samples/s", || {
                let logits = model.forward(&xb, Mode::Train { seed: 0 }).unwrap();
                let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
                if bwd {
                    loss.backward().unwrap();
                }
            });
        }
        "layers" => layers(iters),
        "bwd_w" | "bwd_x" => {
            let xt = if what == "bwd_w" { x.as_tensor().detach() } else { x.as_tensor().clone() };
            let wt = if what == "bwd_x" { w.as_tensor().detach() } else { w.as_tensor().clone() };
            time(what, iters, 2.0 * flops / 1e9, "GFLOP/s (fwd + this bwd)", || {
                let y = ops::conv2d(&xt, &wt, [1, 1], [1, 1], 1).unwrap();
                y.sum_all().unwrap().backward().unwrap();
            });
        }
        "bn" => {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (128, 16, 32, 32), &dev).unwrap()).unwrap();
            let g = Var::from_tensor(&Tensor::ones(16, candle_core::DType::F32, &dev).unwrap()).unwrap();
            let b = Var::from_tensor(&Tensor::zeros(16, candle_core::DType::F32, &dev).unwrap()).unwrap();
            time("bn_fwd_bwd", iters, 1.0, "it/s", || {
                let (y, _) = ops::batch_norm_train(x.as_tensor(), g.as_tensor(), b.as_tensor(), 1e-5).unwrap();
                y.sum_all().unwrap().backward().unwrap();
            });
        }
        "conv16" => {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (128, 16, 32, 32), &dev).unwrap()).unwrap();
            time("conv16_fwd_bwd", iters, 1.5 * flops / 1e9, "GFLOP/s", || {
                let y = ops::conv2d(x.as_tensor(), w.as_tensor(), [1, 1], [1, 1], 1).unwrap();
                y.sum_all().unwrap().backward().unwrap();
            });
        }
        _ => panic!("unknown probe {what}"),
    }
}
