//! Quick timing probe for profiling (not a criterion bench; prints medians / minima):
//!
//! ```text
//! cargo bench -p shrink-ir --bench conv_probe -- <what> [iters]
//!   fwd | fwd_bwd | bwd_x | bwd_w   conv batch 256, 16->16, 3x3, 32x32 (GFLOP/s)
//!   resnet | resnet_fwd             ResNet-20 train step (or forward only), batch 128
//!   layers                          every ResNet-20 conv shape (+ PROBE_PASSES=1 per pass)
//!                                   and BN shape, batch 128, times its count per step
//!   one                             PROBE_LAYER="ci co hw stride fwd|dx|dw"
//!   hotspots                        non-conv pieces of the step (candle relu, shortcut, ...)
//!   relu                            candle relu forward / backward
//! ```
//! `CANDLE_NUM_THREADS=1` for single-thread numbers; `SHRINK_CONV_PATH=direct|cvec|im2col` and
//! `SHRINK_CONV_KERNEL=generic` select conv implementations.
use candle_core::{Device, Tensor, Var};
use shrink_ir::{ops, zoo, Mode};
use std::time::Instant;

/// The allocator the `shrink` CLI uses (recycles large tensor buffers between steps), so the
/// benchmark sees what training sees.
#[global_allocator]
static ALLOC: shrink_ir::alloc::RecyclingAlloc = shrink_ir::alloc::RecyclingAlloc::new();

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
    let convs = [
        (3, 16, 32, 1, 1),
        (16, 16, 32, 1, 6),
        (16, 32, 32, 2, 1),
        (32, 32, 16, 1, 5),
        (32, 64, 16, 2, 1),
        (64, 64, 8, 1, 5),
    ];
    let (mut tf, mut tb) = (0.0, 0.0);
    for (ci, co, hw, s, cnt) in convs {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (bs, ci, hw, hw), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&(Tensor::randn(0f32, 1.0, (co, ci, 3, 3), &dev).unwrap() * 0.1).unwrap())
            .unwrap();
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
        if std::env::var("PROBE_PASSES").is_ok() {
            let wd = w.as_tensor().detach();
            let bx = if ci == 3 {
                f64::NAN
            } else {
                min_ms(iters, || {
                    let y = ops::conv2d(x.as_tensor(), &wd, [s, s], [1, 1], 1).unwrap();
                    y.sum_all().unwrap().backward().unwrap();
                })
            };
            let bw = min_ms(iters, || {
                let y = ops::conv2d(&xd, w.as_tensor(), [s, s], [1, 1], 1).unwrap();
                y.sum_all().unwrap().backward().unwrap();
            });
            println!(
                "     passes: fwd {f:.2} ms, dx {:.2} ms ({:.1} GFLOP/s), dw {:.2} ms ({:.1} GFLOP/s) (incl. sum/backward overhead)",
                bx - f,
                gf / (bx - f),
                bw - f,
                gf / (bw - f)
            );
        }
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

/// Costs of the non-conv pieces of a ResNet-20 step (batch 128), each measured as
/// `(op(x) * r).sum().backward()` minus the same without the op, so upstream gradients are
/// contiguous as in the real graph.
fn hotspots(iters: usize) {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (128, 16, 32, 32), &dev).unwrap()).unwrap();
    let r = Tensor::randn(0f32, 1.0, (128, 16, 32, 32), &dev).unwrap();
    let r2 = Tensor::randn(0f32, 1.0, (128, 32, 16, 16), &dev).unwrap();
    let base = min_ms(iters, || {
        (x.as_tensor() * &r).unwrap().sum_all().unwrap().backward().unwrap();
    });
    let relu = min_ms(iters, || {
        (x.as_tensor().relu().unwrap() * &r).unwrap().sum_all().unwrap().backward().unwrap();
    });
    let sc_base = min_ms(iters, || {
        let t = Tensor::zeros((128, 32, 16, 16), candle_core::DType::F32, &dev).unwrap();
        (t * &r2).unwrap().sum_all().unwrap();
    });
    let sc = min_ms(iters, || {
        (ops::shortcut_a(x.as_tensor(), 2, 8, 8).unwrap() * &r2)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
    });
    let acc = min_ms(iters, || {
        let g = r.zeros_like().unwrap();
        g.add(&r).unwrap();
    });
    let x3 = Var::from_tensor(&Tensor::randn(0f32, 1.0, (128, 64, 8, 8), &dev).unwrap()).unwrap();
    let r3 = Tensor::randn(0f32, 1.0, (128, 64, 1, 1), &dev).unwrap();
    let pool = min_ms(iters, || {
        (x3.as_tensor().mean_keepdim((2, 3)).unwrap() * &r3).unwrap().sum_all().unwrap().backward().unwrap();
    });
    println!("[128,16,32,32] (8 MiB) unless noted; ms per call, fwd+bwd:");
    println!("  candle relu            {:6.2}", relu - base);
    println!("  shortcut_a s2 pad 8+8  {:6.2}  (index_select x2 + pad; bwd index_add)", sc - sc_base);
    println!("  grad accumulation      {:6.2}  (zeros_like + add: candle does this per node input)", acc);
    println!("  global avg pool [128,64,8,8] {:6.2}", pool);
}

fn main() {
    shrink_ir::alloc::tune_system_allocator();
    let args: Vec<String> = std::env::args().filter(|a| !a.starts_with("--")).collect();
    let what = args.get(1).map(String::as_str).unwrap_or("fwd");
    let iters: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let dev = Device::Cpu;
    let (n, c, o, hw, k) = (256, 16, 16, 32, 3);
    let flops = (2 * n * o * hw * hw * c * k * k) as f64;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, c, hw, hw), &dev).unwrap()).unwrap();
    let w =
        Var::from_tensor(&(Tensor::randn(0f32, 1.0, (o, c, k, k), &dev).unwrap() * 0.1).unwrap()).unwrap();
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
            let labels =
                Tensor::from_vec((0..bs as u32).map(|i| (i * 7 + 3) % 10).collect::<Vec<_>>(), bs, &dev)
                    .unwrap();
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
        "hotspots" => hotspots(iters),
        "relu" => {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (128, 16, 32, 32), &dev).unwrap()).unwrap();
            time("candle relu fwd+bwd", iters, 1.0, "it/s", || {
                x.as_tensor().relu().unwrap().sum_all().unwrap().backward().unwrap();
            });
            time("sum_all fwd+bwd only", iters, 1.0, "it/s", || {
                x.as_tensor().sum_all().unwrap().backward().unwrap();
            });
            time("candle relu fwd", iters, 1.0, "it/s", || {
                x.as_tensor().relu().unwrap();
            });
        }
        "one" => {
            // PROBE_LAYER="ci co hw stride pass" with pass in fwd|dx|dw
            let spec = std::env::var("PROBE_LAYER").unwrap_or_else(|_| "16 32 32 2 dw".into());
            let v: Vec<&str> = spec.split_whitespace().collect();
            let (ci, co, hw, s): (usize, usize, usize, usize) =
                (v[0].parse().unwrap(), v[1].parse().unwrap(), v[2].parse().unwrap(), v[3].parse().unwrap());
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (128, ci, hw, hw), &dev).unwrap()).unwrap();
            let w =
                Var::from_tensor(&(Tensor::randn(0f32, 1.0, (co, ci, 3, 3), &dev).unwrap() * 0.1).unwrap())
                    .unwrap();
            let (xt, wt) = match v[4] {
                "dx" => (x.as_tensor().clone(), w.as_tensor().detach()),
                "dw" => (x.as_tensor().detach(), w.as_tensor().clone()),
                _ => (x.as_tensor().detach(), w.as_tensor().detach()),
            };
            let bwd = v[4] != "fwd";
            time(&spec, iters, 1.0, "it/s", || {
                let y = ops::conv2d(&xt, &wt, [s, s], [1, 1], 1).unwrap();
                if bwd {
                    y.sum_all().unwrap().backward().unwrap();
                }
            });
        }
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
                let (y, _) =
                    ops::batch_norm_train(x.as_tensor(), g.as_tensor(), b.as_tensor(), 1e-5).unwrap();
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
