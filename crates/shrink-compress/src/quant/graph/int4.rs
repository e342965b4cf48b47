//! Int4 weight-only quantization of any open-IR graph (`shrink export --int4`): the constant
//! rank-2 weight of every Gemm and MatMul becomes int8 codes in `[-7, 7]` (4-bit symmetric,
//! narrow range: [`super::weight_params`] at 4 bits), a per-output-channel scale
//! (`max|w_c| / 7`), a zero point 0 and a `DequantizeLinear` (Gemm axis 0 with `transB`, 1
//! without; MatMul axis 1). Activations stay f32: no calibration. The deploy writer stores such
//! codes at 4 bits, and the runtime plan runs them with int4 kernels; onnxruntime reads the
//! same graph as an ordinary int8 QDQ weight.

use super::QdqError;
use shrink_graph::{DType, Graph, Op, ValueDef, ValueId};
use std::collections::HashMap;

/// The weight input (index 1) of node `k` and its output-channel axis, when it is a rank-2
/// f32 constant of a Gemm (not `transA`) or a MatMul.
fn weight_of(g: &Graph, k: usize) -> Option<(ValueId, usize)> {
    let n = &g.nodes[k];
    let axis = match &n.op {
        Op::Gemm(gm) if !gm.trans_a => usize::from(!gm.trans_b),
        Op::MatMul(_) => 1,
        _ => return None,
    };
    let &w = n.inputs.get(1)?;
    let is_w =
        matches!(&g.values[w].def, ValueDef::Const(t) if t.dtype() == DType::F32 && t.shape.len() == 2);
    is_w.then_some((w, axis))
}

/// The graph with every Gemm / MatMul weight as int4 codes + `DequantizeLinear` (nodes named
/// in `skip` keep f32 weights); returns it and the number of weights quantized.
pub fn quantize_weights_int4(graph: &Graph, skip: &[String]) -> Result<(Graph, usize), QdqError> {
    if let Some(s) = skip.iter().find(|s| !graph.nodes.iter().any(|n| &n.name == *s)) {
        return Err(QdqError::UnknownSkip(s.clone()));
    }
    let gerr = |e: shrink_graph::GraphError| QdqError::Graph(e.to_string());
    let mut out = Graph::new();
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    for &i in &graph.inputs {
        let v = &graph.values[i];
        map.insert(i, out.add_input(&v.name, v.fact.clone()).map_err(gerr)?);
    }
    let copy =
        |out: &mut Graph, map: &mut HashMap<ValueId, ValueId>, v: ValueId| -> Result<ValueId, QdqError> {
            if let Some(&n) = map.get(&v) {
                return Ok(n);
            }
            let val = &graph.values[v];
            let ValueDef::Const(t) = &val.def else {
                return Err(QdqError::Graph(format!("value `{}` is read before it is defined", val.name)));
            };
            let n = out.add_const(&val.name, t.as_ref().clone()).map_err(gerr)?;
            map.insert(v, n);
            Ok(n)
        };
    // Quantized weights by old id (a weight shared by two nodes is quantized once).
    let mut dq: HashMap<ValueId, ValueId> = HashMap::new();
    for (k, node) in graph.nodes.iter().enumerate() {
        let mut inputs = Vec::with_capacity(node.inputs.len());
        for &v in &node.inputs {
            inputs.push(copy(&mut out, &mut map, v)?);
        }
        if let Some((w, axis)) = weight_of(graph, k).filter(|_| !skip.contains(&node.name)) {
            let d = match dq.get(&w) {
                Some(&d) => d,
                None => {
                    let d = super::qdq::quantize_weight(graph, &mut out, w, axis, 4, "_int4")?;
                    dq.insert(w, d);
                    d
                }
            };
            inputs[1] = d;
        }
        let names: Vec<String> = node.outputs.iter().map(|&o| graph.values[o].name.clone()).collect();
        let outs = out.add_node(&node.name, node.op.clone(), &inputs, &names).map_err(gerr)?;
        for (&o, n) in node.outputs.iter().zip(outs) {
            map.insert(o, n);
        }
    }
    let outputs =
        graph.outputs.iter().map(|&o| copy(&mut out, &mut map, o)).collect::<Result<Vec<_>, _>>()?;
    out.set_outputs(outputs);
    out.remove_dead();
    out.check().map_err(gerr)?;
    Ok((out, dq.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrink_graph::ops::matmul::{Gemm, MatMul};
    use shrink_graph::{Dim, Fact, Tensor};

    #[test]
    fn gemm_and_matmul_weights_become_int4_codes_and_the_graph_still_runs() {
        let mut g = Graph::new();
        let x = g.add_input("x", Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(6)])).unwrap();
        let w0: Vec<f32> = (0..24).map(|i| (i as f32 * 0.7).sin()).collect();
        let w0 = g.add_const("fc.weight", Tensor::f32(vec![4, 6], w0)).unwrap();
        let gemm = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
        let h = g.add_node("fc", gemm, &[x, w0], &["h".into()]).unwrap()[0];
        let w1 = g.add_const("head.weight", Tensor::f32(vec![4, 3], vec![0.5; 12])).unwrap();
        let y = g.add_node("head", MatMul {}, &[h, w1], &["y".into()]).unwrap()[0];
        g.set_outputs(vec![y]);
        let (q, n) = quantize_weights_int4(&g, &[]).unwrap();
        assert_eq!(n, 2);
        let codes = q.const_value(q.find("fc.weight_int4").unwrap()).unwrap();
        assert!(codes.as_i8().unwrap().iter().all(|c| (-7..=7).contains(c)));
        assert!(codes.as_i8().unwrap().iter().any(|&c| c.abs() == 7));
        assert!(q.find("fc.weight").is_none(), "the f32 weight is dropped");
        let x = Tensor::f32(vec![2, 6], (0..12).map(|i| i as f32 * 0.1).collect());
        let want = shrink_runtime::exec::run(&g, std::slice::from_ref(&x)).unwrap().remove(0);
        let got = shrink_runtime::exec::run(&q, &[x]).unwrap().remove(0);
        for (a, b) in got.as_f32().unwrap().iter().zip(want.as_f32().unwrap()) {
            assert!((a - b).abs() < 0.15 * b.abs().max(1.0), "{a} vs {b}");
        }
        assert!(matches!(quantize_weights_int4(&g, &["nope".into()]), Err(QdqError::UnknownSkip(_))));
    }
}
