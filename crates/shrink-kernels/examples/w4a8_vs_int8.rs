//! Int4 × u8 (W4A8) against the int8 GEMM and the f32-activation int4 kernel on simple-dnn's
//! linear layers (784→1568→3136→6272→10), batch 1 and 64: the kernels run in turn, round after
//! round (a loaded machine slows all of them alike), and the medians are printed as a markdown
//! table with the whole-model sums.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release -p shrink-kernels --example w4a8_vs_int8 [ROUNDS]`
use shrink_kernels::*;
use std::time::Instant;

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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(21);
    let isa = Isa::detect();
    let mut r = Gen(0x9E37_79B9_7F4A_7C15);
    println!(
        "ISA {isa}, {} threads, {rounds} rounds (median of per-call times)\n",
        rayon::current_num_threads()
    );
    println!("| layer | batch | int8 u8×i8 | int4 f32-act | int4 × u8 (W4A8) | int8 / W4A8 |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut tot = [[0f64; 3]; 2];
    for (n, k) in LAYERS {
        let w: Vec<f32> = (0..n * k).map(|_| r.f32() * 0.05).collect();
        let bias: Vec<f32> = (0..n).map(|_| r.f32()).collect();
        let qw: Vec<i8> = w.iter().map(|&v| (v / 0.05 * 127.0).round() as i8).collect();
        let p8 = PackedI8::pack(&qw, n, k).unwrap();
        let sw = vec![0.05 / 127.0; n];
        let ep = Int8Epilogue { weight_scales: &sw, bias: Some(&bias), act: Activation::Relu };
        let p4 = PackedI4::quantize(&w, n, k, Int4Group::PerChannel).unwrap();
        let p4u8 = PackedI4U8::quantize(&w, n, k, Int4Group::PerChannel).unwrap();
        for (bi, m) in [1usize, 64].into_iter().enumerate() {
            let x: Vec<f32> = (0..m * k).map(|_| r.f32().max(0.0)).collect();
            let mut y = vec![0f32; m * n];
            let mut t = [Vec::new(), Vec::new(), Vec::new()];
            let reps = if m == 1 { 20 } else { 2 };
            for _ in 0..rounds {
                for (i, ti) in t.iter_mut().enumerate() {
                    let s = Instant::now();
                    for _ in 0..reps {
                        match i {
                            // int8 includes quantizing its activations (as a QDQ layer must).
                            0 => {
                                let (x8, xq) = quantize_row_u8(&x);
                                gemm_u8i8_f32(isa, &x8, m, xq, &p8, &ep, &mut y).unwrap()
                            }
                            1 => linear_i4(isa, &x, m, &p4, Some(&bias), Activation::Relu, &mut y).unwrap(),
                            _ => {
                                linear_i4u8(isa, &x, m, &p4u8, Some(&bias), Activation::Relu, &mut y).unwrap()
                            }
                        }
                    }
                    ti.push(s.elapsed().as_secs_f64() * 1e3 / reps as f64);
                }
            }
            let med: Vec<f64> = t.into_iter().map(median).collect();
            for i in 0..3 {
                tot[bi][i] += med[i];
            }
            println!(
                "| {n}x{k} | {m} | {:.3} ms | {:.3} ms | {:.3} ms | {:.2}x |",
                med[0],
                med[1],
                med[2],
                med[0] / med[2]
            );
        }
    }
    for (bi, m) in [1, 64].into_iter().enumerate() {
        let s = tot[bi];
        println!(
            "| **all four** | {m} | {:.3} ms | {:.3} ms | {:.3} ms | **{:.2}x** |",
            s[0],
            s[1],
            s[2],
            s[0] / s[2]
        );
    }
}
