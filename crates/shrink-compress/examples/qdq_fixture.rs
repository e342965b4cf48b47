//! Writes the QDQ fixtures of `tools/onnx_qdq_check.py`: for each NAME, reads the f32 model
//! DIR/NAME.onnx and DIR/NAME.data.safetensors (`calib`), calibrates on `calib` (one batch),
//! quantizes with the default `QdqConfig` (int8 weights per channel, uint8 activations) and
//! writes DIR/NAME.qdq.onnx.
//!
//! Run: cargo run --release -p shrink-compress --example qdq_fixture -- DIR NAME...
use shrink_compress::quant::graph::{calibrate, quantize_graph, QdqConfig};
use shrink_graph::Tensor;
use std::path::Path;

fn f32_tensor(path: &Path, key: &str) -> Tensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let v = st.tensor(key).unwrap_or_else(|_| panic!("{}: no `{key}`", path.display()));
    let data = v.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    Tensor::f32(v.shape().to_vec(), data)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, names) = args.split_first().expect("usage: qdq_fixture DIR NAME...");
    let dir = Path::new(dir);
    for name in names {
        let g = shrink_io::onnx::graph_import::load_graph(&dir.join(format!("{name}.onnx"))).unwrap();
        let calib = f32_tensor(&dir.join(format!("{name}.data.safetensors")), "calib");
        let cfg = QdqConfig::default();
        let ranges = calibrate(&g, &[vec![calib]], &cfg).unwrap();
        let q = quantize_graph(&g, &ranges, &cfg).unwrap();
        let out = dir.join(format!("{name}.qdq.onnx"));
        shrink_io::onnx::graph_export::save_graph_onnx(&q, &out).unwrap();
        println!("wrote {} ({} nodes)", out.display(), q.nodes.len());
    }
}
