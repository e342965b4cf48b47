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
        _ => panic!("unknown probe {what}"),
    }
}
