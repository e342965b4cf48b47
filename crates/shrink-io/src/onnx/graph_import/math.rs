//! ONNX ops of the `math` family → IR ops: element-wise activations, Clip, Softmax and
//! LogSoftmax, binary arithmetic/comparison/logic (variadic Max/Min/Sum/Mean folded into
//! chains), PRelu, Where, Cast and the reductions.
//!
//! Attributes that moved to inputs across opsets: Clip `min`/`max` (inputs from opset 11; an
//! empty name is unbounded), Reduce* `axes` (input from opset 18, ReduceSum from 13).
//! Softmax/LogSoftmax before opset 13 normalize over the input flattened to 2-D at `axis`.

use super::ctx::{attr, attr_f, attr_i, attr_ints, attr_s};
use super::{Ctx, ImportFn, SymInt, R};
use crate::onnx::decode::NodeProto;
use shrink_graph::ops::activation::{
    Clip, Elu, Gelu, HardSigmoid, LeakyRelu, LogSoftmax, Softmax, Unary, UnaryKind,
};
use shrink_graph::ops::binary::{Binary, BinaryKind, Cast, Where};
use shrink_graph::ops::reduce::{Reduce, ReduceKind};
use shrink_graph::{DType, Tensor, ValueId};

/// The mapping of `op_type`, if this family has it.
pub fn lookup(op_type: &str) -> Option<ImportFn> {
    Some(match op_type {
        "Relu" | "Sigmoid" | "Tanh" | "Erf" | "Exp" | "Log" | "Sqrt" | "Neg" | "Abs" | "Reciprocal"
        | "Floor" | "Ceil" | "Round" | "HardSwish" | "Softplus" | "Sin" | "Cos" | "Not" => unary,
        "LeakyRelu" => leaky_relu,
        "HardSigmoid" => hard_sigmoid,
        "Elu" => elu,
        "Gelu" => gelu,
        "Clip" => clip,
        "Softmax" | "LogSoftmax" => softmax,
        "Add" | "Sub" | "Mul" | "Div" | "Mod" | "Pow" | "Equal" | "Less" | "Greater" | "LessOrEqual"
        | "GreaterOrEqual" | "And" | "Or" => binary,
        "Max" | "Min" | "Sum" | "Mean" => variadic,
        "PRelu" => prelu,
        "Where" => where_op,
        "Cast" => cast,
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1" | "ReduceL2"
        | "ReduceSumSquare" | "ReduceLogSumExp" => reduce,
        _ => return None,
    })
}

/// Check the number of inputs (empty optional names count) of `node`.
fn arity(node: &NodeProto, min: usize, max: usize) -> R<()> {
    let n = node.inputs.len();
    if n < min || n > max {
        let want = if min == max { min.to_string() } else { format!("{min} to {max}") };
        return Err(format!("expects {want} inputs, got {n}"));
    }
    Ok(())
}

/// The ONNX output name of `node` (`k`-th), or an error.
fn output_name<'n>(node: &'n NodeProto, k: usize) -> R<&'n str> {
    node.outputs
        .get(k)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("output {k} is missing"))
}

/// A float attribute with a default; NaN or infinite values are rejected by the op's inference.
fn attr_f_or(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr_f(node, name).unwrap_or(default)
}

fn unary(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    arity(node, 1, 1)?;
    let kind = match node.op_type.as_str() {
        "Relu" => UnaryKind::Relu,
        "Sigmoid" => UnaryKind::Sigmoid,
        "Tanh" => UnaryKind::Tanh,
        "Erf" => UnaryKind::Erf,
        "Exp" => UnaryKind::Exp,
        "Log" => UnaryKind::Log,
        "Sqrt" => UnaryKind::Sqrt,
        "Neg" => UnaryKind::Neg,
        "Abs" => UnaryKind::Abs,
        "Reciprocal" => UnaryKind::Reciprocal,
        "Floor" => UnaryKind::Floor,
        "Ceil" => UnaryKind::Ceil,
        "Round" => UnaryKind::Round,
        "HardSwish" => UnaryKind::HardSwish,
        "Softplus" => UnaryKind::Softplus,
        "Sin" => UnaryKind::Sin,
        "Cos" => UnaryKind::Cos,
        "Not" => UnaryKind::Not,
        t => return Err(format!("`{t}` is not an element-wise function")),
    };
    let x = ctx.req(node, 0)?;
    ctx.add(node, Unary { kind }, &[x])?;
    Ok(())
}

fn leaky_relu(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    arity(node, 1, 1)?;
    let x = ctx.req(node, 0)?;
    ctx.add(node, LeakyRelu { alpha: attr_f_or(node, "alpha", 0.01) }, &[x])?;
    Ok(())
}

fn hard_sigmoid(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    arity(node, 1, 1)?;
    let x = ctx.req(node, 0)?;
    let op = HardSigmoid { alpha: attr_f_or(node, "alpha", 0.2), beta: attr_f_or(node, "beta", 0.5) };
    ctx.add(node, op, &[x])?;
    Ok(())
}

fn elu(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    arity(node, 1, 1)?;
    let x = ctx.req(node, 0)?;
    ctx.add(node, Elu { alpha: attr_f_or(node, "alpha", 1.0) }, &[x])?;
    Ok(())
}

fn gelu(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    arity(node, 1, 1)?;
    let tanh = match attr_s(node, "approximate").as_deref() {
        None | Some("none") => false,
        Some("tanh") => true,
        Some(s) => return Err(format!("approximate=`{s}` is not supported (none, tanh)")),
    };
    let x = ctx.req(node, 0)?;
    ctx.add(node, Gelu { tanh }, &[x])?;
    Ok(())
}

/// Clip: bounds are attributes before opset 11, optional inputs from 11 on. Constant bounds of
/// an f32 input make one Clip; a computed bound, or an i64 input, becomes Max/Min with the
/// bounds as given.
fn clip(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    if ctx.opset < 11 {
        arity(node, 1, 1)?;
        let op = Clip { min: attr_f(node, "min"), max: attr_f(node, "max") };
        ctx.add(node, op, &[x])?;
        return Ok(());
    }
    arity(node, 1, 3)?;
    if attr(node, "min").is_some() || attr(node, "max").is_some() {
        return Err(format!(
            "attributes `min`/`max` are inputs from opset 11 (this model is opset {})",
            ctx.opset
        ));
    }
    let mut bounds = [None, None];
    let mut computed = false;
    for (k, name) in [(1, "min"), (2, "max")] {
        let Some(id) = ctx.input(node, k)? else { continue };
        match ctx.const_of(id) {
            Some(t) if t.len() == 1 => bounds[k - 1] = Some(t.to_f32_vec()[0]),
            Some(t) => return Err(format!("`{name}` must be a scalar, got shape {:?}", t.shape)),
            None => computed = true,
        }
    }
    if !computed && ctx.fact(x).dtype == DType::F32 {
        ctx.add(node, Clip { min: bounds[0], max: bounds[1] }, &[x])?;
        return Ok(());
    }
    // A computed bound, or integers (exact bounds): Max(x, min) then Min(·, max).
    let mut steps = Vec::new();
    for (k, kind) in [(1, BinaryKind::Max), (2, BinaryKind::Min)] {
        if let Some(id) = ctx.input(node, k)? {
            steps.push((kind, id));
        }
    }
    chain(ctx, node, x, &steps)
}

/// Apply `steps` (binary op with a second operand) to `x` in order; the last is the node's
/// output.
fn chain(ctx: &mut Ctx, node: &NodeProto, x: ValueId, steps: &[(BinaryKind, ValueId)]) -> R<()> {
    let base = output_name(node, 0)?.to_string();
    let mut acc = x;
    for (k, &(kind, b)) in steps.iter().enumerate() {
        if k + 1 == steps.len() {
            ctx.add(node, Binary { kind }, &[acc, b])?;
        } else {
            acc = ctx.add_internal(&format!("{base}.{k}"), Binary { kind }, &[acc, b])?;
        }
    }
    if steps.is_empty() {
        ctx.alias(&base, x);
    }
    Ok(())
}

fn softmax(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    arity(node, 1, 1)?;
    let x = ctx.req(node, 0)?;
    let legacy = ctx.opset < 13;
    let axis = attr_i(node, "axis").unwrap_or(if legacy { 1 } else { -1 });
    // Flattening at the last axis is the same as normalizing over it.
    let rank = ctx.fact(x).rank() as i64;
    let flatten = legacy && axis != -1 && axis != rank - 1;
    if node.op_type == "Softmax" {
        ctx.add(node, Softmax { axis, flatten }, &[x])?;
    } else {
        ctx.add(node, LogSoftmax { axis, flatten }, &[x])?;
    }
    Ok(())
}

fn binary_kind(node: &NodeProto) -> R<BinaryKind> {
    Ok(match node.op_type.as_str() {
        "Add" | "Sum" | "Mean" => BinaryKind::Add,
        "Sub" => BinaryKind::Sub,
        "Mul" => BinaryKind::Mul,
        "Div" => BinaryKind::Div,
        "Mod" if attr_i(node, "fmod") == Some(1) => BinaryKind::Fmod,
        "Mod" => BinaryKind::Mod,
        "Pow" => BinaryKind::Pow,
        "Max" => BinaryKind::Max,
        "Min" => BinaryKind::Min,
        "Equal" => BinaryKind::Equal,
        "Less" => BinaryKind::Less,
        "Greater" => BinaryKind::Greater,
        "LessOrEqual" => BinaryKind::LessOrEqual,
        "GreaterOrEqual" => BinaryKind::GreaterOrEqual,
        "And" => BinaryKind::And,
        "Or" => BinaryKind::Or,
        t => return Err(format!("`{t}` is not a binary operation")),
    })
}

fn binary(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    arity(node, 2, 2)?;
    let kind = binary_kind(node)?;
    if attr(node, "broadcast").is_some() {
        return Err("attribute `broadcast` (opset < 7) is not supported".into());
    }
    let a = ctx.req(node, 0)?;
    let mut b = ctx.req(node, 1)?;
    // Pow's exponent may have another type (opset 12+): an integer exponent of a float base is
    // cast to f32; an integer base with a float exponent is raised in f32, then truncated.
    let (ta, tb) = (ctx.fact(a).dtype, ctx.fact(b).dtype);
    if kind == BinaryKind::Pow && ta != tb && ta != DType::Bool && tb != DType::Bool {
        let base = output_name(node, 0)?.to_string();
        b = ctx.add_internal(&format!("{base}.exponent"), Cast { to: DType::F32 }, &[b])?;
        if ta == DType::I64 {
            let af = ctx.add_internal(&format!("{base}.base"), Cast { to: DType::F32 }, &[a])?;
            let p = ctx.add_internal(&format!("{base}.f32"), Binary { kind }, &[af, b])?;
            ctx.add(node, Cast { to: DType::I64 }, &[p])?;
            return Ok(());
        }
    }
    ctx.add(node, Binary { kind }, &[a, b])?;
    Ok(())
}

/// Max/Min/Sum (and Mean: Sum, then divided by the count) of one or more inputs, as a chain.
fn variadic(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    if node.inputs.is_empty() {
        return Err("expects at least 1 input, got 0".into());
    }
    let kind = binary_kind(node)?;
    let ins: Vec<ValueId> = (0..node.inputs.len()).map(|k| ctx.req(node, k)).collect::<R<_>>()?;
    let mut steps: Vec<(BinaryKind, ValueId)> = ins[1..].iter().map(|&v| (kind, v)).collect();
    if node.op_type == "Mean" {
        if ctx.fact(ins[0]).dtype != DType::F32 {
            return Err(format!("needs f32 values, got {:?}", ctx.fact(ins[0]).dtype));
        }
        if ins.len() > 1 {
            let n = format!("{}.count", output_name(node, 0)?);
            let count = ctx.add_const(&n, Tensor::f32(vec![], vec![ins.len() as f32]))?;
            steps.push((BinaryKind::Div, count));
        }
    }
    chain(ctx, node, ins[0], &steps)
}

/// PRelu as `x < 0 ? slope·x : x` (slope broadcast to x).
fn prelu(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    arity(node, 2, 2)?;
    let x = ctx.req(node, 0)?;
    let slope = ctx.req(node, 1)?;
    let base = output_name(node, 0)?.to_string();
    let zero = match ctx.fact(x).dtype {
        DType::F32 => Tensor::f32(vec![], vec![0.0]),
        DType::I64 => Tensor::i64(vec![], vec![0]),
        d => return Err(format!("needs f32 or i64 values, got {d:?}")),
    };
    let zero = ctx.add_const(&format!("{base}.zero"), zero)?;
    let neg = ctx.add_internal(&format!("{base}.negative"), Binary { kind: BinaryKind::Less }, &[x, zero])?;
    let scaled =
        ctx.add_internal(&format!("{base}.scaled"), Binary { kind: BinaryKind::Mul }, &[x, slope])?;
    ctx.add(node, Where {}, &[neg, scaled, x])?;
    Ok(())
}

fn where_op(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    arity(node, 3, 3)?;
    let ins = [ctx.req(node, 0)?, ctx.req(node, 1)?, ctx.req(node, 2)?];
    ctx.add(node, Where {}, &ins)?;
    Ok(())
}

/// ONNX `TensorProto.DataType` → IR dtype: floats are f32, integers i64, bool bool.
fn onnx_dtype(code: i64) -> R<DType> {
    Ok(match code {
        1 | 10 | 11 | 16 => DType::F32,
        2..=7 | 12 | 13 => DType::I64,
        9 => DType::Bool,
        8 => return Err("Cast to string (type 8) is not supported".into()),
        c => {
            return Err(format!(
            "Cast to ONNX type {c} is not supported (float, double, float16, bfloat16, integers, bool are)"
        ))
        }
    })
}

fn cast(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    arity(node, 1, 1)?;
    let to = onnx_dtype(attr_i(node, "to").ok_or("attribute `to` is missing")?)?;
    let x = ctx.req(node, 0)?;
    let sym = if to == DType::I64 { ctx.sym_ints(x) } else { None };
    let out = ctx.add(node, Cast { to }, &[x])?;
    // Shape values keep their symbolic elements through an integer cast.
    if let Some(v) = sym.filter(|v| v.iter().any(|s| matches!(s, SymInt::Sym(_)))) {
        ctx.set_sym_ints(out[0], v);
    }
    Ok(())
}

/// The reduced axes of a Reduce* node: an attribute before `input_from`, input 1 from then on.
fn reduce_axes(ctx: &Ctx, node: &NodeProto, input_from: i64) -> R<Vec<i64>> {
    if ctx.opset < input_from {
        arity(node, 1, 1)?;
        return Ok(attr_ints(node, "axes").unwrap_or_default());
    }
    arity(node, 1, 2)?;
    if attr(node, "axes").is_some() {
        return Err(format!(
            "attribute `axes` is input 1 from opset {input_from} (this model is opset {})",
            ctx.opset
        ));
    }
    Ok(ctx.const_ints(node, 1)?.unwrap_or_default())
}

/// ReduceMean/Sum/Max/Min/Prod map to one Reduce; ReduceL1/L2/SumSquare/LogSumExp decompose
/// into element-wise ops around a Reduce.
fn reduce(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let input_from = if node.op_type == "ReduceSum" { 13 } else { 18 };
    let axes = reduce_axes(ctx, node, input_from)?;
    let keepdims = match attr_i(node, "keepdims").unwrap_or(1) {
        0 => false,
        1 => true,
        v => return Err(format!("keepdims={v} must be 0 or 1")),
    };
    let noop = attr_i(node, "noop_with_empty_axes").unwrap_or(0) != 0;
    let x = ctx.req(node, 0)?;
    if axes.is_empty() && noop {
        // No axes with noop_with_empty_axes: the input unchanged.
        if !matches!(
            node.op_type.as_str(),
            "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd"
        ) {
            return Err("noop_with_empty_axes=1 without axes is not supported for this reduction".into());
        }
        ctx.alias(output_name(node, 0)?, x);
        return Ok(());
    }
    let simple = |kind| Reduce { kind, axes: axes.clone(), keepdims };
    let base = output_name(node, 0)?.to_string();
    let unary = |ctx: &mut Ctx, name: &str, kind, v| {
        ctx.add_internal(&format!("{base}.{name}"), Unary { kind }, &[v])
    };
    match node.op_type.as_str() {
        "ReduceMean" => ctx.add(node, simple(ReduceKind::Mean), &[x]).map(drop),
        "ReduceSum" => ctx.add(node, simple(ReduceKind::Sum), &[x]).map(drop),
        "ReduceMax" => ctx.add(node, simple(ReduceKind::Max), &[x]).map(drop),
        "ReduceMin" => ctx.add(node, simple(ReduceKind::Min), &[x]).map(drop),
        "ReduceProd" => ctx.add(node, simple(ReduceKind::Prod), &[x]).map(drop),
        "ReduceL1" => {
            let a = unary(ctx, "abs", UnaryKind::Abs, x)?;
            ctx.add(node, simple(ReduceKind::Sum), &[a]).map(drop)
        }
        "ReduceSumSquare" | "ReduceL2" => {
            let sq =
                ctx.add_internal(&format!("{base}.square"), Binary { kind: BinaryKind::Mul }, &[x, x])?;
            if node.op_type == "ReduceSumSquare" {
                return ctx.add(node, simple(ReduceKind::Sum), &[sq]).map(drop);
            }
            let s = ctx.add_internal(&format!("{base}.sum"), simple(ReduceKind::Sum), &[sq])?;
            ctx.add(node, Unary { kind: UnaryKind::Sqrt }, &[s]).map(drop)
        }
        "ReduceLogSumExp" => {
            // max + log(sum(exp(x − max))), stable for large inputs.
            let m = ctx.add_internal(
                &format!("{base}.max"),
                Reduce { kind: ReduceKind::Max, axes: axes.clone(), keepdims: true },
                &[x],
            )?;
            let d =
                ctx.add_internal(&format!("{base}.shifted"), Binary { kind: BinaryKind::Sub }, &[x, m])?;
            let e = unary(ctx, "exp", UnaryKind::Exp, d)?;
            let s = ctx.add_internal(&format!("{base}.sum"), simple(ReduceKind::Sum), &[e])?;
            let l = unary(ctx, "log", UnaryKind::Log, s)?;
            let m_out = if keepdims {
                m
            } else {
                ctx.add_internal(&format!("{base}.max_out"), simple(ReduceKind::Max), &[x])?
            };
            ctx.add(node, Binary { kind: BinaryKind::Add }, &[l, m_out]).map(drop)
        }
        t => Err(format!("`{t}` is not a reduction")),
    }
}
