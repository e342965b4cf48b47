//! int8 / uint8 / int32 tensors through ONNX: initializers import with their own dtype from both
//! ONNX encodings (`raw_data` little-endian bytes and the `int32_data` varint list), and the
//! open-IR export writes them back with ONNX codes 3 / 2 / 6.

use shrink_graph::ops::combine::Identity;
use shrink_graph::{DType, Fact, Graph, Tensor};
use shrink_io::onnx::graph_export::graph_onnx_bytes;
use shrink_io::onnx::graph_import::import_graph;
use shrink_io::onnx::proto::Message;

/// The tensors every test carries: saturation edges and signs.
fn tensors() -> Vec<(&'static str, Tensor)> {
    vec![
        ("w_i8", Tensor::i8(vec![2, 2], vec![-128, -1, 0, 127])),
        ("w_u8", Tensor::u8(vec![3], vec![0, 128, 255])),
        ("b_i32", Tensor::i32(vec![2], vec![i32::MIN, 70_000])),
    ]
}

/// The value graph output `k` evaluates to (Identity of a constant folds at import, so outputs
/// are found by position).
fn output(g: &Graph, k: usize) -> Tensor {
    let outs = shrink_runtime::exec::run(g, &[Tensor::f32(vec![1], vec![0.0])]).unwrap();
    outs[k].clone()
}

#[test]
fn integer_initializers_round_trip_through_export() {
    let mut g = Graph::new();
    g.add_input("x", Fact::new(DType::F32, &[1])).unwrap();
    let mut outs = Vec::new();
    for (name, t) in tensors() {
        let c = g.add_const(name, t).unwrap();
        outs.extend(g.add_node(&format!("id_{name}"), Identity {}, &[c], &[format!("y_{name}")]).unwrap());
    }
    g.set_outputs(outs);
    let back = import_graph(&graph_onnx_bytes(&g).unwrap()).unwrap();
    for (k, (name, t)) in tensors().into_iter().enumerate() {
        let id = back.find(name).expect("initializer kept");
        assert_eq!(back.values[id].fact.dtype, t.dtype(), "{name}");
        assert_eq!(back.const_value(id), Some(&t), "{name}");
        assert_eq!(output(&back, k), t, "{name}");
    }
}

/// `ValueInfoProto` of a tensor of ONNX type `elem` and fixed `shape`.
fn value_info(name: &str, elem: i64, shape: &[i64]) -> Message {
    let mut dims = Message::new();
    for &d in shape {
        let mut dim = Message::new();
        dim.int(1, d);
        dims.message(1, &dim);
    }
    let mut tt = Message::new();
    tt.int(1, elem).message(2, &dims);
    let mut ty = Message::new();
    ty.message(1, &tt);
    let mut vi = Message::new();
    vi.string(1, name).message(2, &ty);
    vi
}

#[test]
fn int32_data_initializers_keep_their_dtype() {
    // ONNX stores int8, uint8 and int32 in `int32_data` (field 5) when there is no raw_data.
    let mut graph = Message::new();
    let mut output_names = Vec::new();
    for (name, t) in tensors() {
        let mut tp = Message::new();
        for &d in &t.shape {
            tp.int(1, d as i64);
        }
        tp.int(2, t.dtype().onnx_code());
        for v in t.to_i64_vec() {
            tp.int(5, v);
        }
        tp.string(8, name);
        graph.message(5, &tp);
        let mut node = Message::new();
        let y = format!("y_{name}");
        node.string(1, name).string(2, &y).string(3, &format!("id_{name}")).string(4, "Identity");
        graph.message(1, &node);
        let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
        output_names.push((y, t.dtype().onnx_code(), shape));
    }
    graph.string(2, "ints");
    graph.message(11, &value_info("x", 1, &[1]));
    for (y, code, shape) in &output_names {
        graph.message(12, &value_info(y, *code, shape));
    }
    let mut opset = Message::new();
    opset.string(1, "").int(2, 13);
    let mut model = Message::new();
    model.int(1, 8).message(7, &graph).message(8, &opset);
    let g = import_graph(&model.into_bytes()).unwrap();
    for (k, (name, t)) in tensors().into_iter().enumerate() {
        let id = g.find(name).expect("initializer");
        assert_eq!(g.const_value(id), Some(&t), "{name}");
        assert_eq!(output(&g, k), t, "{name}");
    }
}
