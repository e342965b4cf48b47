//! What an ONNX op mapping sees while importing: the graph built so far, the ONNX names of its
//! values, attribute readers and constant folding.

use super::tensor_proto::{Const, Data};
use crate::onnx::decode::{AttributeProto, NodeProto};
use shrink_graph::{DType, Dim, Fact, Graph, Op, Tensor, ValueId};
use std::collections::HashMap;

/// Result of an import step; the message is completed with the node's name by the driver.
pub type R<T> = Result<T, String>;

/// An element of a 1-D integer tensor computed from shapes: a number, or a symbolic dimension
/// (the batch) whose value is known only when the graph runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymInt {
    Int(i64),
    Sym(String),
}

impl SymInt {
    /// The dimension this element stands for (a negative or zero number is a Reshape marker).
    pub fn to_dim(&self) -> Option<Dim> {
        match self {
            SymInt::Int(v) if *v > 0 => Some(Dim::Fixed(*v as usize)),
            SymInt::Int(_) => None,
            SymInt::Sym(s) => Some(Dim::Sym(s.clone())),
        }
    }
}

/// The import state.
pub struct Ctx {
    /// The graph being built.
    pub graph: Graph,
    /// The default-domain opset of the model.
    pub opset: i64,
    names: HashMap<String, ValueId>,
    sym_ints: HashMap<ValueId, Vec<SymInt>>,
    counter: usize,
}

impl Ctx {
    /// An empty import of a model with `opset`.
    pub fn new(opset: i64) -> Self {
        Ctx { graph: Graph::new(), opset, names: HashMap::new(), sym_ints: HashMap::new(), counter: 0 }
    }

    /// The value an ONNX name refers to.
    pub fn lookup(&self, onnx_name: &str) -> Option<ValueId> {
        self.names.get(onnx_name).copied()
    }

    /// Make an ONNX name refer to an existing value (Identity, Dropout, folded no-ops).
    pub fn alias(&mut self, onnx_name: &str, id: ValueId) {
        self.names.insert(onnx_name.to_string(), id);
    }

    /// Record that `onnx_name` is `id` (graph inputs, initializers).
    pub fn bind(&mut self, onnx_name: &str, id: ValueId) {
        self.alias(onnx_name, id)
    }

    /// Input `k` of `node`; `None` when absent or given as the empty name (optional inputs).
    pub fn input(&self, node: &NodeProto, k: usize) -> R<Option<ValueId>> {
        match node.inputs.get(k).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(name) => self.lookup(name).map(Some).ok_or_else(|| format!("input `{name}` is not defined")),
        }
    }

    /// Input `k` of `node`, which must be present.
    pub fn req(&self, node: &NodeProto, k: usize) -> R<ValueId> {
        self.input(node, k)?.ok_or_else(|| format!("input {k} is missing"))
    }

    /// The fact of a value.
    pub fn fact(&self, id: ValueId) -> &Fact {
        &self.graph.values[id].fact
    }

    /// The data of a value when it is a constant.
    pub fn const_of(&self, id: ValueId) -> Option<&Tensor> {
        self.graph.const_value(id)
    }

    /// Input `k` as constant integers (`None` when the input is absent); an error when present
    /// but not constant.
    pub fn const_ints(&self, node: &NodeProto, k: usize) -> R<Option<Vec<i64>>> {
        let Some(id) = self.input(node, k)? else { return Ok(None) };
        match self.const_of(id) {
            Some(t) => Ok(Some(t.to_i64_vec())),
            None => Err(format!("input {k} (`{}`) must be a constant", self.graph.values[id].name)),
        }
    }

    /// Input `k` as constant floats (`None` when absent).
    pub fn const_floats(&self, node: &NodeProto, k: usize) -> R<Option<Vec<f32>>> {
        let Some(id) = self.input(node, k)? else { return Ok(None) };
        match self.const_of(id) {
            Some(t) => Ok(Some(t.to_f32_vec())),
            None => Err(format!("input {k} (`{}`) must be a constant", self.graph.values[id].name)),
        }
    }

    /// The elements of a 1-D integer value computed from shapes: constants, or values recorded
    /// with [`Ctx::set_sym_ints`] (e.g. `Shape` of an input with a symbolic batch).
    pub fn sym_ints(&self, id: ValueId) -> Option<Vec<SymInt>> {
        if let Some(v) = self.sym_ints.get(&id) {
            return Some(v.clone());
        }
        let t = self.const_of(id)?;
        if t.shape.len() > 1 || t.dtype() == shrink_graph::DType::F32 {
            return None;
        }
        Some(t.to_i64_vec().into_iter().map(SymInt::Int).collect())
    }

    /// Record the symbolic elements of a 1-D integer value.
    pub fn set_sym_ints(&mut self, id: ValueId, v: Vec<SymInt>) {
        self.sym_ints.insert(id, v);
    }

    /// Add a constant named `name` (made unique) and return it.
    pub fn add_const(&mut self, name: &str, t: Tensor) -> R<ValueId> {
        let name = self.unique(name);
        self.graph.add_const(&name, t).map_err(|e| e.to_string())
    }

    fn unique(&mut self, base: &str) -> String {
        let base = if base.is_empty() { "v" } else { base };
        if self.graph.find(base).is_none() {
            return base.to_string();
        }
        loop {
            self.counter += 1;
            let n = format!("{base}.{}", self.counter);
            if self.graph.find(&n).is_none() {
                return n;
            }
        }
    }

    /// Add `op` reading `inputs` for ONNX `node`; its outputs take the node's output names (the
    /// first as many as the op has). When every input is a constant the op is evaluated now and
    /// its outputs become constants. Returns the output values.
    pub fn add(&mut self, node: &NodeProto, op: impl Into<Op>, inputs: &[ValueId]) -> R<Vec<ValueId>> {
        let op = op.into();
        let facts = self.graph.infer(&node.name, &op, inputs).map_err(|e| strip_node(&e.to_string()))?;
        let onnx_outs: Vec<String> =
            (0..facts.len()).map(|k| node.outputs.get(k).cloned().unwrap_or_default()).collect();
        // Arithmetic on shape values holding a symbolic dimension (`N * heads`, `C // groups`).
        let symbolic = inputs.iter().any(|v| self.sym_ints.contains_key(v));
        if let (true, Some(vals), [fact]) = (symbolic, self.sym_eval(&op, inputs), facts.as_slice()) {
            if let (true, Ok(shape)) = (vals.iter().all(|v| matches!(v, SymInt::Int(_))), fact.fixed_shape())
            {
                let ints: Vec<i64> =
                    vals.iter().map(|v| if let SymInt::Int(i) = v { *i } else { 0 }).collect();
                if shape.iter().product::<usize>() == ints.len() {
                    let t = Tensor::from_i64s(fact.dtype, shape, &ints);
                    let base = if onnx_outs[0].is_empty() {
                        format!("{}.out", node.name)
                    } else {
                        onnx_outs[0].clone()
                    };
                    let id = self.add_const(&base, t)?;
                    if !onnx_outs[0].is_empty() {
                        self.alias(&onnx_outs[0], id);
                    }
                    return Ok(vec![id]);
                }
            }
            let ids = self.add_plain(node, op, inputs, &onnx_outs)?;
            self.set_sym_ints(ids[0], vals);
            return Ok(ids);
        }
        self.add_plain(node, op, inputs, &onnx_outs)
    }

    /// The elements of `op` applied to shape values, when every input's elements are known
    /// (numbers or symbolic dimensions) and the result can be written with them.
    fn sym_eval(&self, op: &Op, inputs: &[ValueId]) -> Option<Vec<SymInt>> {
        let vals: Vec<Vec<SymInt>> = inputs.iter().map(|&v| self.sym_ints(v)).collect::<Option<_>>()?;
        let n = vals.iter().map(Vec::len).max()?;
        if vals.iter().any(|v| v.len() != n && v.len() != 1) {
            return None;
        }
        let at = |k: usize, i: usize| -> &SymInt {
            if vals[k].len() == 1 {
                &vals[k][0]
            } else {
                &vals[k][i]
            }
        };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let r = match op {
                Op::Binary(b) => sym_binary(b.kind, at(0, i), at(1, i))?,
                Op::Where(_) => match at(0, i) {
                    SymInt::Int(0) => at(2, i).clone(),
                    SymInt::Int(_) => at(1, i).clone(),
                    SymInt::Sym(_) => return None,
                },
                _ => return None,
            };
            out.push(r);
        }
        Some(out)
    }

    fn add_plain(
        &mut self,
        node: &NodeProto,
        op: Op,
        inputs: &[ValueId],
        onnx_outs: &[String],
    ) -> R<Vec<ValueId>> {
        // DequantizeLinear of constant codes stays a node: a QDQ model keeps its int8 weights.
        let foldable = !matches!(op, Op::DequantizeLinear(_))
            && !inputs.is_empty()
            && inputs.iter().all(|&v| self.const_of(v).is_some());
        let ids = if foldable {
            let ins: Vec<&Tensor> = inputs.iter().map(|&v| self.const_of(v).expect("checked")).collect();
            let outs =
                shrink_runtime::exec::eval_op(&op, &ins, &Default::default()).map_err(|e| e.to_string())?;
            let mut ids = Vec::with_capacity(outs.len());
            for (t, name) in outs.into_iter().zip(onnx_outs) {
                let base = if name.is_empty() { format!("{}.out", node.name) } else { name.clone() };
                ids.push(self.add_const(&base, t)?);
            }
            ids
        } else {
            let names: Vec<String> = onnx_outs
                .iter()
                .enumerate()
                .map(|(k, n)| if n.is_empty() { format!("{}.out{k}", node.name) } else { n.clone() })
                .map(|n| self.unique(&n))
                .collect();
            let name = self.node_name(node);
            self.graph.add_node(&name, op, inputs, &names).map_err(|e| strip_node(&e.to_string()))?
        };
        for (name, &id) in onnx_outs.iter().zip(&ids) {
            if !name.is_empty() {
                self.alias(name, id);
            }
        }
        Ok(ids)
    }

    /// Add a helper node that has no ONNX node of its own (a decomposition step).
    pub fn add_internal(&mut self, base: &str, op: impl Into<Op>, inputs: &[ValueId]) -> R<ValueId> {
        let op = op.into();
        let out = self.unique(base);
        let probe = NodeProto { name: out.clone(), outputs: vec![out.clone()], ..Default::default() };
        let ids = self.add(&probe, op, inputs)?;
        Ok(ids[0])
    }

    fn node_name(&mut self, node: &NodeProto) -> String {
        if node.name.is_empty() {
            self.counter += 1;
            format!("{}_{}", node.op_type, self.counter)
        } else {
            node.name.clone()
        }
    }
}

/// Shape errors from the graph say "node `x` (Op): msg"; the driver adds the node itself.
fn strip_node(msg: &str) -> String {
    match msg.find("): ") {
        Some(k) if msg.starts_with("node `") => msg[k + 3..].to_string(),
        _ => msg.to_string(),
    }
}

/// The attribute `name` of `node`.
pub fn attr<'n, 'a>(node: &'n NodeProto<'a>, name: &str) -> Option<&'n AttributeProto<'a>> {
    node.attributes.iter().find(|a| a.name == name)
}

/// Integer attribute.
pub fn attr_i(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name).and_then(|a| a.i)
}

/// Float attribute.
pub fn attr_f(node: &NodeProto, name: &str) -> Option<f32> {
    attr(node, name).and_then(|a| a.f)
}

/// Integer-list attribute.
pub fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

/// Float-list attribute.
pub fn attr_floats(node: &NodeProto, name: &str) -> Option<Vec<f32>> {
    attr(node, name).map(|a| a.floats.clone())
}

/// String attribute.
pub fn attr_s(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).and_then(|a| a.s).map(|s| String::from_utf8_lossy(s).into_owned())
}

/// Tensor attribute (Constant's `value`).
pub fn attr_t(node: &NodeProto, name: &str) -> R<Option<Tensor>> {
    match attr(node, name).and_then(|a| a.t.as_ref()) {
        None => Ok(None),
        Some(t) => Const::from_proto(t).map(|c| Some(to_tensor(c, t.data_type))),
    }
}

/// Convert a decoded ONNX constant of ONNX type `data_type` to an IR tensor: floats become f32,
/// bool bool, int8 / uint8 / int32 keep their type (quantization codes, zero points, biases),
/// the other integers become i64.
pub fn to_tensor(c: Const, data_type: i64) -> Tensor {
    match c.data {
        Data::F(v) => Tensor::f32(c.dims, v),
        Data::I(v) => match DType::from_onnx_code(data_type) {
            Some(d @ (DType::Bool | DType::I8 | DType::U8 | DType::I32)) => Tensor::from_i64s(d, c.dims, &v),
            _ => Tensor::i64(c.dims, v),
        },
    }
}

/// The number and symbols whose product a shape element is.
fn sym_factors(v: &SymInt) -> (i128, Vec<String>) {
    match v {
        SymInt::Int(i) => (*i as i128, vec![]),
        SymInt::Sym(s) => {
            let (f, syms) = Dim::Sym(s.clone()).factors();
            (f as i128, syms)
        }
    }
}

/// `fixed · Π syms` as a shape element.
fn sym_from(f: i128, syms: Vec<String>) -> Option<SymInt> {
    if syms.is_empty() {
        return i64::try_from(f).ok().map(SymInt::Int);
    }
    match Dim::product(u128::try_from(f).ok()?, syms)? {
        Dim::Sym(s) => Some(SymInt::Sym(s)),
        Dim::Fixed(k) => Some(SymInt::Int(k as i64)),
    }
}

/// One binary operation on shape elements; `None` when the result has no closed form.
fn sym_binary(kind: shrink_graph::ops::binary::BinaryKind, x: &SymInt, y: &SymInt) -> Option<SymInt> {
    use shrink_graph::ops::binary::BinaryKind as K;
    if let (SymInt::Int(a), SymInt::Int(c)) = (x, y) {
        let (a, c) = (*a, *c);
        return Some(SymInt::Int(match kind {
            K::Add => a.checked_add(c)?,
            K::Sub => a.checked_sub(c)?,
            K::Mul => a.checked_mul(c)?,
            K::Div if c != 0 => a / c,
            K::Mod if c != 0 => {
                let r = a % c;
                if r != 0 && ((r < 0) != (c < 0)) {
                    r + c
                } else {
                    r
                }
            }
            K::Fmod if c != 0 => a % c,
            K::Max => a.max(c),
            K::Min => a.min(c),
            K::Equal => (a == c) as i64,
            K::Less => (a < c) as i64,
            K::Greater => (a > c) as i64,
            K::LessOrEqual => (a <= c) as i64,
            K::GreaterOrEqual => (a >= c) as i64,
            _ => return None,
        }));
    }
    let (fx, sx) = sym_factors(x);
    let (fy, sy) = sym_factors(y);
    match kind {
        K::Mul => sym_from(fx.checked_mul(fy)?, [sx, sy].concat()),
        K::Div if sy.is_empty() && fy > 0 && fx % fy == 0 => sym_from(fx / fy, sx),
        K::Div if sx == sy && fy > 0 && fx % fy == 0 => Some(SymInt::Int((fx / fy) as i64)),
        // A symbolic dimension is positive: never equal to a number below 1.
        K::Equal if (sx.is_empty() && fx < 1) || (sy.is_empty() && fy < 1) => Some(SymInt::Int(0)),
        K::Equal if sx == sy && fx == fy => Some(SymInt::Int(1)),
        _ => None,
    }
}
