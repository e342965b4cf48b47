//! ONNX export: the written protobuf decodes to the expected graph (ops, initializers, shapes).
//! (onnxruntime agreement on real data is checked by tools/onnx_compare.py, outside CI.)
use candle_core::Device;
use shrink_ir::zoo;

/// Decodes one protobuf message into (field, wire type, payload) triples.
fn fields(mut b: &[u8]) -> Vec<(u64, u8, Vec<u8>, u64)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[0];
            *b = &b[1..];
            v |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return v;
            }
            shift += 7;
        }
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        let (field, wire) = (key >> 3, (key & 7) as u8);
        match wire {
            0 => {
                let v = varint(&mut b);
                out.push((field, 0, vec![], v));
            }
            2 => {
                let n = varint(&mut b) as usize;
                out.push((field, 2, b[..n].to_vec(), 0));
                b = &b[n..];
            }
            5 => {
                out.push((field, 5, b[..4].to_vec(), 0));
                b = &b[4..];
            }
            w => panic!("unexpected wire type {w}"),
        }
    }
    out
}

fn sub(msg: &[u8], field: u64) -> Vec<Vec<u8>> {
    fields(msg).into_iter().filter(|f| f.0 == field && f.1 == 2).map(|f| f.2).collect()
}

#[test]
fn resnet20_exports_every_layer_with_its_weights() {
    let model = zoo::build("resnet20", 0, &Device::Cpu).unwrap();
    let bytes = shrink_io::onnx::onnx_bytes(&model).unwrap();
    let graph = &sub(&bytes, 7)[0];
    let ops: Vec<String> =
        sub(graph, 1).iter().map(|n| String::from_utf8(sub(n, 4)[0].clone()).unwrap()).collect();
    let count = |op: &str| ops.iter().filter(|o| *o == op).count();
    assert_eq!(count("Conv"), 19);
    assert_eq!(count("BatchNormalization"), 19);
    assert_eq!(count("Add"), 9);
    assert_eq!(count("Slice"), 2, "two option-A shortcuts");
    assert_eq!(count("Pad"), 2);
    assert_eq!(count("Gemm"), 1);
    // Float initializers hold every parameter exactly once.
    let mut floats = 0usize;
    for t in sub(graph, 5) {
        let f = fields(&t);
        if f.iter().any(|x| x.0 == 2 && x.3 == 1) {
            floats += f.iter().find(|x| x.0 == 9).unwrap().2.len() / 4;
        }
    }
    let expected: usize = model.params.iter().map(|(_, p)| p.var.elem_count()).sum();
    assert_eq!(floats, expected);
    // The graph output is `logits`; opset 17 is imported.
    assert_eq!(sub(&sub(graph, 12)[0], 1)[0], b"logits");
    let opset = &sub(&bytes, 8)[0];
    assert!(fields(opset).iter().any(|f| f.0 == 2 && f.3 == 17));
}
