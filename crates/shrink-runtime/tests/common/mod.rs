//! A small conv + linear model stored with every encoding, shared by the deploy tests and the
//! fuzz seed example.
#![allow(dead_code)]
use shrink_graph::ops::activation::{Unary, UnaryKind};
use shrink_graph::ops::conv::Conv;
use shrink_graph::ops::matmul::Gemm;
use shrink_graph::ops::shape::Flatten;
use shrink_graph::{DType, Dim, Fact, Graph, Tensor};
use shrink_runtime::deploy::{
    BitPacked, Codebook, DeployMeta, DeployModel, Encoding, QuantAxis, Scheme, Sparse,
};

/// Deterministic pseudo-random values in [-1, 1).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// x [N,1,6,6] -> conv 3x3 (4 channels, pad 1) -> relu -> flatten -> gemm (10 outputs).
pub fn graph() -> Graph {
    let mut g = Graph::new();
    let x = g
        .add_input("x", Fact::dims(DType::F32, vec![Dim::Sym("N".into()), 1.into(), 6.into(), 6.into()]))
        .unwrap();
    let cw = g.add_const("conv.weight", Tensor::f32(vec![4, 1, 3, 3], values(36, 1))).unwrap();
    let cb = g.add_const("conv.bias", Tensor::f32(vec![4], values(4, 2))).unwrap();
    let conv = Conv { strides: vec![1, 1], pads: vec![1, 1, 1, 1], dilations: vec![1, 1], groups: 1 };
    let h = g.add_node("conv", conv, &[x, cw, cb], &["h".into()]).unwrap();
    let r = g.add_node("relu", Unary { kind: UnaryKind::Relu }, &h, &["r".into()]).unwrap();
    let f = g.add_node("flatten", Flatten { axis: 1 }, &r, &["f".into()]).unwrap();
    // Mostly zero: a pruned layer.
    let mut w = values(10 * 144, 3);
    w.iter_mut().enumerate().for_each(|(i, v)| {
        if i % 7 != 0 {
            *v = 0.0
        }
    });
    let fw = g.add_const("fc.weight", Tensor::f32(vec![10, 144], w)).unwrap();
    let fb = g.add_const("fc.bias", Tensor::f32(vec![10], values(10, 4))).unwrap();
    let gemm = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
    let y = g.add_node("fc", gemm, &[f[0], fw, fb], &["y".into()]).unwrap();
    g.set_outputs(y);
    g
}

fn f32s(g: &Graph, name: &str) -> Vec<f32> {
    g.const_value(g.find(name).unwrap()).unwrap().as_f32().unwrap().to_vec()
}

/// The graph with conv.weight 8-bit symmetric per channel (Huffman codes), fc.weight sparse
/// (3-bit Huffman gaps, 4-bit codebook values), fc.bias 4-bit affine, conv.bias raw.
pub fn model() -> DeployModel {
    let g = graph();
    let cw = BitPacked::quantize(
        &f32s(&g, "conv.weight"),
        &[4, 1, 3, 3],
        8,
        QuantAxis::PerChannel(0),
        Scheme::Symmetric,
    )
    .unwrap();
    let cw = BitPacked { codes: cw.codes.restored(true).unwrap(), ..cw };
    let fw = Sparse::encode(&f32s(&g, "fc.weight"), 3, true, |v| {
        let cb = Codebook::linear(v, 4)?;
        // Fillers must decode to 0: make the centroid nearest 0 exactly 0.
        let mut c = cb.centroids.clone();
        let k = (0..c.len()).min_by(|&a, &b| c[a].abs().total_cmp(&c[b].abs())).unwrap();
        c[k] = 0.0;
        Ok(Encoding::Codebook(Codebook::nearest(v, c, 4)?))
    })
    .unwrap();
    let fb =
        BitPacked::quantize(&f32s(&g, "fc.bias"), &[10], 4, QuantAxis::PerTensor, Scheme::Affine).unwrap();
    let meta = DeployMeta {
        dataset: Some("toy".into()),
        mean: vec![0.5],
        std: vec![0.25],
        classes: (0..10).map(|i| format!("c{i}")).collect(),
        producer: "shrink test".into(),
        ..Default::default()
    };
    let mut m = DeployModel::from_graph(g, meta);
    m.set_encoding("conv.weight", Encoding::BitPacked(cw)).unwrap();
    m.set_encoding("fc.weight", Encoding::Sparse(fw)).unwrap();
    m.set_encoding("fc.bias", Encoding::BitPacked(fb)).unwrap();
    m
}

/// Recomputes the trailing CRC-32 of a (modified) deploy file.
pub fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let crc = crc32(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

/// Bitwise CRC-32 (IEEE), independent of the crate's.
pub fn crc32(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= x as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}
