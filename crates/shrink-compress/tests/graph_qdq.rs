//! Static PTQ of open-IR graphs into QDQ graphs (`shrink_compress::quant::graph`):
//! * scales, zero points and codes equal numpy's / onnxruntime's tool's formulas on a golden
//!   tensor (tools/onnx_qdq_check.py → tests/fixtures/qdq_golden.safetensors);
//! * a small conv net and an MLP quantized by shrink (calibration data in the fixture) give the
//!   committed QDQ files byte for byte, which onnxruntime ran: shrink-runtime's evaluation of
//!   the QDQ graph agrees with onnxruntime's outputs (same argmax on ≥ 99.9 % of 1000 rows, max
//!   |diff| within two steps of the last activation's scale). Not exact: onnxruntime fuses
//!   DequantizeLinear → MatMul/Gemm into integer kernels (int32 accumulation, one rescale at the
//!   end) where shrink dequantizes and accumulates in f32, so sums round differently.
use shrink_compress::quant::graph::{activation_params, calibrate, quantize_graph, weight_params, QdqConfig};
use shrink_graph::{DType, Graph, Op, Tensor, ValueDef};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load(path: &Path) -> Vec<(String, Tensor)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(k, v)| {
            let shape = v.shape().to_vec();
            let b = v.data();
            let t = match v.dtype() {
                safetensors::Dtype::F32 => Tensor::f32(
                    shape,
                    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
                ),
                safetensors::Dtype::I8 => Tensor::i8(shape, b.iter().map(|&x| x as i8).collect()),
                safetensors::Dtype::U8 => Tensor::u8(shape, b.to_vec()),
                d => panic!("unexpected fixture dtype {d:?}"),
            };
            (k, t)
        })
        .collect()
}

fn get<'a>(ts: &'a [(String, Tensor)], key: &str) -> &'a Tensor {
    &ts.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("fixture has no `{key}`")).1
}

#[test]
fn scales_zero_points_and_codes_match_numpy() {
    let g = load(&fixtures().join("qdq_golden.safetensors"));
    let w = get(&g, "w");
    let (scales, codes) = weight_params(w.as_f32().unwrap(), &w.shape, 0, 8);
    assert_eq!(scales.as_slice(), get(&g, "w_scale").as_f32().unwrap());
    assert_eq!(codes.as_slice(), get(&g, "w_codes").as_i8().unwrap());
    let r = get(&g, "a_range").as_f32().unwrap();
    let (scale, zp) = activation_params(r[0], r[1], 8);
    assert_eq!(scale, get(&g, "a_scale").as_f32().unwrap()[0]);
    assert_eq!(zp, get(&g, "a_zero_point").as_u8().unwrap()[0]);
    // The runtime's QuantizeLinear with these parameters gives numpy's codes.
    let a = get(&g, "a");
    let q = shrink_runtime::exec::eval_op(
        &Op::QuantizeLinear(shrink_graph::ops::quant::QuantizeLinear { axis: 1, dtype: DType::U8 }),
        &[a, &Tensor::f32(vec![], vec![scale]), &Tensor::u8(vec![], vec![zp])],
        &Default::default(),
    )
    .unwrap();
    assert_eq!(q[0].as_u8(), get(&g, "a_codes").as_u8());
}

/// The f32 model, its calibration batch and test rows, the QDQ graph shrink makes of it.
fn quantized(name: &str) -> (Graph, Graph, Tensor) {
    let dir = fixtures().join("qdq");
    let g = shrink_io::onnx::graph_import::load_graph(&dir.join(format!("{name}.onnx"))).unwrap();
    let data = load(&dir.join(format!("{name}.data.safetensors")));
    let cfg = QdqConfig::default();
    let ranges = calibrate(&g, &[vec![get(&data, "calib").clone()]], &cfg).unwrap();
    let q = quantize_graph(&g, &ranges, &cfg).unwrap();
    (g, q, get(&data, "x").clone())
}

/// Row-wise argmax.
fn argmax(t: &Tensor) -> Vec<usize> {
    let v = t.as_f32().unwrap();
    let c = t.shape[1];
    v.chunks(c)
        .map(|r| {
            r.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0
        })
        .collect()
}

fn check_against_onnxruntime(name: &str) {
    let (_, q, x) = quantized(name);
    let dir = fixtures().join("qdq");
    let bytes = shrink_io::onnx::graph_export::graph_onnx_bytes(&q).unwrap();
    let committed = std::fs::read(dir.join(format!("{name}.qdq.onnx"))).unwrap();
    assert!(bytes == committed, "{name}: the QDQ export differs from the file onnxruntime ran");
    // Every weight is int8 codes + DequantizeLinear; every quantized op's activation is Q → DQ.
    for n in q.nodes.iter().filter(|n| matches!(n.op, Op::Conv(_) | Op::Gemm(_) | Op::MatMul(_))) {
        for (k, &v) in n.inputs.iter().take(2).enumerate() {
            let ValueDef::Node { node, .. } = q.values[v].def else {
                panic!("{name}: {} input {k} not quantized", n.name)
            };
            assert!(matches!(q.nodes[node].op, Op::DequantizeLinear(_)), "{name}: {} input {k}", n.name);
        }
        // The bias is int32 codes at s_x · s_w (onnxruntime's convention: it rewrites an f32 bias so).
        if let Some(&b) = n.inputs.get(2) {
            let ValueDef::Node { node, .. } = q.values[b].def else {
                panic!("{name}: {} bias stays f32", n.name)
            };
            let dq = &q.nodes[node];
            assert!(matches!(dq.op, Op::DequantizeLinear(_)), "{name}: {} bias", n.name);
            let codes = q.const_value(dq.inputs[0]).unwrap();
            assert_eq!(codes.dtype(), shrink_graph::DType::I32, "{name}: {} bias codes", n.name);
        }
    }
    let got = shrink_runtime::run(&q, &[x]).unwrap().remove(0);
    let ort = load(&dir.join(format!("{name}.ort.safetensors")));
    let want = get(&ort, "qdq");
    assert_eq!(got.shape, want.shape);
    let same = argmax(&got).iter().zip(argmax(want)).filter(|(a, b)| **a == *b).count();
    let rows = got.shape[0];
    assert!(same as f64 >= 0.999 * rows as f64, "{name}: argmax agrees on {same} of {rows} rows");
    // Two steps of the scale of the last activation quantizer.
    let last_scale = q
        .nodes
        .iter()
        .rev()
        .find(|n| matches!(n.op, Op::QuantizeLinear(_)))
        .and_then(|n| q.const_value(n.inputs[1]))
        .map(|t| t.as_f32().unwrap()[0])
        .unwrap();
    let diff = got
        .as_f32()
        .unwrap()
        .iter()
        .zip(want.as_f32().unwrap())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    eprintln!("{name}: max |shrink - onnxruntime| = {diff} (last activation scale {last_scale}), argmax {same}/{rows}");
    assert!(diff <= 2.0 * last_scale, "{name}: max |diff| {diff} > 2 steps of {last_scale}");
}

#[test]
fn conv_net_qdq_runs_as_in_onnxruntime() {
    check_against_onnxruntime("conv");
}

#[test]
fn mlp_qdq_runs_as_in_onnxruntime() {
    check_against_onnxruntime("mlp");
}

#[test]
fn skipped_nodes_and_bad_settings() {
    let dir = fixtures().join("qdq");
    let g = shrink_io::onnx::graph_import::load_graph(&dir.join("mlp.onnx")).unwrap();
    let data = load(&dir.join("mlp.data.safetensors"));
    let batches = vec![vec![get(&data, "calib").clone()]];
    let cfg = QdqConfig { skip: vec!["fc2".into()], ..QdqConfig::default() };
    let q = quantize_graph(&g, &calibrate(&g, &batches, &cfg).unwrap(), &cfg).unwrap();
    let fc2 = q.nodes.iter().find(|n| n.name == "fc2").unwrap();
    assert!(fc2.inputs.iter().all(|&v| !matches!(q.values[v].def, ValueDef::Node { node, .. } if matches!(q.nodes[node].op, Op::DequantizeLinear(_)))));
    assert_eq!(q.nodes.iter().filter(|n| matches!(n.op, Op::QuantizeLinear(_))).count(), 1);
    let bad = QdqConfig { skip: vec!["nope".into()], ..QdqConfig::default() };
    assert!(calibrate(&g, &batches, &bad).unwrap_err().to_string().contains("`nope`"));
    let bad = QdqConfig { weight_bits: 9, ..QdqConfig::default() };
    assert!(calibrate(&g, &batches, &bad).unwrap_err().to_string().contains("2 to 8"));
    assert!(calibrate(&g, &[], &QdqConfig::default()).is_err());
}
