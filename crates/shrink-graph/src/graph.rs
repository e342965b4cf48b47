//! The graph: values, nodes in topological order, inputs and outputs.

use crate::error::GraphError;
use crate::fact::Fact;
use crate::ops::{Cost, InFact, Op};
use crate::tensor::{Tensor, TensorData};
use std::collections::HashMap;
use std::sync::Arc;

/// Index of a value in [`Graph::values`].
pub type ValueId = usize;
/// Index of a node in [`Graph::nodes`].
pub type NodeId = usize;

/// Where a value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueDef {
    /// A graph input, fed when the graph runs.
    Input,
    /// A named constant (a weight, a folded shape).
    Const(Arc<Tensor>),
    /// Output `slot` of node `node`.
    Node { node: NodeId, slot: usize },
}

/// A typed value.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub name: String,
    pub fact: Fact,
    pub def: ValueDef,
}

/// One operator application.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

/// A computation graph. Nodes are kept in topological order: a node only reads inputs,
/// constants and outputs of earlier nodes, so a graph built through [`Graph::add_node`] can have
/// no cycle and no dangling edge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
    names: HashMap<String, ValueId>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    fn push_value(&mut self, name: &str, fact: Fact, def: ValueDef) -> Result<ValueId, GraphError> {
        if self.names.contains_key(name) {
            return Err(GraphError::Duplicate(name.to_string()));
        }
        let id = self.values.len();
        self.values.push(Value { name: name.to_string(), fact, def });
        self.names.insert(name.to_string(), id);
        Ok(id)
    }

    /// Declare a graph input.
    pub fn add_input(&mut self, name: &str, fact: Fact) -> Result<ValueId, GraphError> {
        let id = self.push_value(name, fact, ValueDef::Input)?;
        self.inputs.push(id);
        Ok(id)
    }

    /// Add a named constant.
    pub fn add_const(&mut self, name: &str, tensor: Tensor) -> Result<ValueId, GraphError> {
        let fact = tensor.fact();
        self.push_value(name, fact, ValueDef::Const(Arc::new(tensor)))
    }

    /// Append a node reading `inputs`; infers its outputs' facts and names them `out_names`.
    pub fn add_node(
        &mut self,
        name: &str,
        op: impl Into<Op>,
        inputs: &[ValueId],
        out_names: &[String],
    ) -> Result<Vec<ValueId>, GraphError> {
        let op = op.into();
        let facts = self.infer(name, &op, inputs)?;
        if facts.len() != out_names.len() {
            return Err(GraphError::Op {
                node: name.to_string(),
                op: op.def().name(),
                source: crate::OpError::Shape(format!(
                    "has {} outputs, {} named",
                    facts.len(),
                    out_names.len()
                )),
            });
        }
        let node = self.nodes.len();
        let mut outputs = Vec::with_capacity(facts.len());
        for (slot, (fact, out)) in facts.into_iter().zip(out_names).enumerate() {
            outputs.push(self.push_value(out, fact, ValueDef::Node { node, slot })?);
        }
        self.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs: inputs.to_vec(),
            outputs: outputs.clone(),
        });
        Ok(outputs)
    }

    /// Infer the output facts of `op` applied to `inputs` (errors name node `name`).
    pub fn infer(&self, name: &str, op: &Op, inputs: &[ValueId]) -> Result<Vec<Fact>, GraphError> {
        let ins: Vec<InFact> = inputs
            .iter()
            .map(|&v| InFact { fact: &self.values[v].fact, value: self.const_value(v) })
            .collect();
        op.def().infer(&ins).map_err(|source| GraphError::Op {
            node: name.to_string(),
            op: op.def().name(),
            source,
        })
    }

    /// Mark the graph outputs.
    pub fn set_outputs(&mut self, outputs: Vec<ValueId>) {
        self.outputs = outputs;
    }

    /// The value with this name.
    pub fn find(&self, name: &str) -> Option<ValueId> {
        self.names.get(name).copied()
    }

    /// The data of a constant value.
    pub fn const_value(&self, id: ValueId) -> Option<&Tensor> {
        match &self.values[id].def {
            ValueDef::Const(t) => Some(t),
            _ => None,
        }
    }

    /// Replace a constant's data (same dtype; the shape may change, e.g. after pruning).
    /// Re-run [`Graph::check`] afterwards when the shape changed.
    pub fn set_const(&mut self, id: ValueId, tensor: Tensor) {
        let v = &mut self.values[id];
        v.fact = tensor.fact();
        v.def = ValueDef::Const(Arc::new(tensor));
    }

    /// Named constants in definition order.
    pub fn consts(&self) -> impl Iterator<Item = (ValueId, &str, &Tensor)> {
        self.values.iter().enumerate().filter_map(|(i, v)| match &v.def {
            ValueDef::Const(t) => Some((i, v.name.as_str(), t.as_ref())),
            _ => None,
        })
    }

    /// Number of f32 and 8-bit (quantized weight codes) constant elements read by some node
    /// (the parameters).
    pub fn params(&self) -> usize {
        let used = self.used_values();
        self.consts()
            .filter(|(id, _, t)| {
                used[*id] && matches!(t.data, TensorData::F32(_) | TensorData::I8(_) | TensorData::U8(_))
            })
            .map(|(_, _, t)| t.len())
            .sum()
    }

    /// Total cost per example.
    pub fn cost(&self) -> Cost {
        let mut total = Cost::default();
        for n in &self.nodes {
            let ins: Vec<&Fact> = n.inputs.iter().map(|&v| &self.values[v].fact).collect();
            let outs: Vec<&Fact> = n.outputs.iter().map(|&v| &self.values[v].fact).collect();
            total.macs += n.op.def().cost(&ins, &outs).macs;
        }
        total
    }

    /// For each value, the nodes reading it.
    pub fn consumers(&self) -> Vec<Vec<NodeId>> {
        let mut c = vec![Vec::new(); self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &v in &n.inputs {
                if !c[v].contains(&i) {
                    c[v].push(i);
                }
            }
        }
        c
    }

    fn used_values(&self) -> Vec<bool> {
        let mut used = vec![false; self.values.len()];
        for n in &self.nodes {
            for &v in &n.inputs {
                used[v] = true;
            }
        }
        for &v in &self.outputs {
            used[v] = true;
        }
        used
    }

    /// Re-run shape inference over every node in order and check the stored facts agree, that
    /// every input is defined earlier (no cycle, no dangling edge) and outputs exist.
    pub fn check(&mut self) -> Result<(), GraphError> {
        let mut defined = vec![false; self.values.len()];
        for (i, v) in self.values.iter().enumerate() {
            defined[i] = !matches!(v.def, ValueDef::Node { .. });
        }
        for k in 0..self.nodes.len() {
            let node = &self.nodes[k];
            for &v in &node.inputs {
                if v >= self.values.len() || !defined[v] {
                    let value = self.values.get(v).map(|x| x.name.clone()).unwrap_or_default();
                    return Err(GraphError::Dangling { node: node.name.clone(), value });
                }
            }
            let facts = self.infer(&node.name, &node.op, &node.inputs)?;
            let outs = self.nodes[k].outputs.clone();
            for (&o, f) in outs.iter().zip(facts) {
                self.values[o].fact = f;
                defined[o] = true;
            }
        }
        for &o in &self.outputs {
            if o >= self.values.len() {
                return Err(GraphError::MissingOutput(o.to_string()));
            }
        }
        Ok(())
    }

    /// Drop nodes no output depends on (and constants nobody reads). Value ids are renumbered.
    pub fn remove_dead(&mut self) {
        let mut live = vec![false; self.values.len()];
        for &o in &self.outputs {
            live[o] = true;
        }
        for &i in &self.inputs {
            live[i] = true;
        }
        let mut keep_node = vec![false; self.nodes.len()];
        for (k, n) in self.nodes.iter().enumerate().rev() {
            if n.outputs.iter().any(|&o| live[o]) {
                keep_node[k] = true;
                for &v in &n.inputs {
                    live[v] = true;
                }
                for &o in &n.outputs {
                    live[o] = true;
                }
            }
        }
        let mut remap = vec![usize::MAX; self.values.len()];
        let mut values = Vec::new();
        for (i, v) in self.values.iter().enumerate() {
            if live[i] {
                remap[i] = values.len();
                values.push(v.clone());
            }
        }
        let mut node_remap = vec![usize::MAX; self.nodes.len()];
        let mut nodes = Vec::new();
        for (k, n) in self.nodes.iter().enumerate() {
            if keep_node[k] {
                node_remap[k] = nodes.len();
                let mut n = n.clone();
                n.inputs.iter_mut().for_each(|v| *v = remap[*v]);
                n.outputs.iter_mut().for_each(|v| *v = remap[*v]);
                nodes.push(n);
            }
        }
        for v in &mut values {
            if let ValueDef::Node { node, .. } = &mut v.def {
                *node = node_remap[*node];
            }
        }
        self.inputs.iter_mut().for_each(|v| *v = remap[*v]);
        self.outputs.iter_mut().for_each(|v| *v = remap[*v]);
        self.names = values.iter().enumerate().map(|(i, v)| (v.name.clone(), i)).collect();
        self.values = values;
        self.nodes = nodes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fact::{DType, Dim};
    use crate::ops::activation::{Unary, UnaryKind};

    fn relu() -> Unary {
        Unary { kind: UnaryKind::Relu }
    }

    #[test]
    fn builds_and_infers_with_a_symbolic_batch() {
        let mut g = Graph::new();
        let x = g.add_input("x", Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(3)])).unwrap();
        let y = g.add_node("r", relu(), &[x], &["y".into()]).unwrap();
        g.set_outputs(y.clone());
        assert_eq!(g.values[y[0]].fact.shape[0], Dim::Sym("N".into()));
        g.check().unwrap();
    }

    #[test]
    fn duplicate_names_and_dangling_inputs_are_errors() {
        let mut g = Graph::new();
        let x = g.add_input("x", Fact::new(DType::F32, &[2])).unwrap();
        assert!(matches!(g.add_input("x", Fact::new(DType::F32, &[2])), Err(GraphError::Duplicate(_))));
        let y = g.add_node("r", relu(), &[x], &["y".into()]).unwrap();
        // Make node 0 read its own output: a cycle.
        g.nodes[0].inputs = vec![y[0]];
        let err = g.check().unwrap_err();
        assert!(err.to_string().contains("node `r` reads `y`"), "{err}");
    }

    #[test]
    fn dead_nodes_are_removed() {
        let mut g = Graph::new();
        let x = g.add_input("x", Fact::new(DType::F32, &[2])).unwrap();
        let y = g.add_node("a", relu(), &[x], &["y".into()]).unwrap();
        let _z = g.add_node("b", relu(), &[x], &["z".into()]).unwrap();
        g.add_const("unused", Tensor::f32(vec![1], vec![1.0])).unwrap();
        g.set_outputs(y);
        g.remove_dead();
        assert_eq!(g.nodes.len(), 1);
        assert_eq!(g.values.len(), 2);
        assert_eq!(g.find("y"), Some(1));
        g.check().unwrap();
    }
}
