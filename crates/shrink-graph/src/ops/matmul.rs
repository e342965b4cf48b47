//! Matrix products: Gemm and MatMul (N-D, batched, broadcast).

use super::{check_arity, per_example_volume, Cost, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{broadcast_shapes, fmt_shape, DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// `alpha·op(A)·op(B) + beta·C`; inputs `[a, b, c?]`, 2-D; `c` broadcasts to `(M, N)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gemm {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

/// NumPy `matmul` (1-D promotion, batch broadcast); inputs `[a, b]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatMul {}

fn check_f32(ins: &[InFact]) -> OpResult<()> {
    for (k, i) in ins.iter().enumerate() {
        if i.fact.dtype != DType::F32 {
            return Err(OpError::Shape(format!("input {k} must be f32, got {:?}", i.fact.dtype)));
        }
    }
    Ok(())
}

/// Two sizes that must agree (the contracted dimension); symbolic ones must be the same symbol.
fn same_dim(a: &Dim, b: &Dim, what: &str, sa: &[Dim], sb: &[Dim]) -> OpResult<()> {
    if a != b {
        return Err(OpError::Shape(format!(
            "{what}: {} and {} do not agree ({a} vs {b})",
            fmt_shape(sa),
            fmt_shape(sb)
        )));
    }
    Ok(())
}

impl Gemm {
    /// Axis of `a` holding M and K, and of `b` holding K and N.
    fn layout(&self) -> ((usize, usize), (usize, usize)) {
        let a = if self.trans_a { (1, 0) } else { (0, 1) };
        let b = if self.trans_b { (1, 0) } else { (0, 1) };
        (a, b)
    }
}

impl OpDef for Gemm {
    fn name(&self) -> &'static str {
        "Gemm"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 2, 3)?;
        check_f32(ins)?;
        let (a, b) = (&ins[0].fact.shape, &ins[1].fact.shape);
        if a.len() != 2 || b.len() != 2 {
            return Err(OpError::Shape(format!("A {} and B {} must be 2-D", fmt_shape(a), fmt_shape(b))));
        }
        let ((am, ak), (bk, bn)) = self.layout();
        same_dim(&a[ak], &b[bk], "inner dimensions of A and B", a, b)?;
        let out = vec![a[am].clone(), b[bn].clone()];
        if let Some(c) = ins.get(2) {
            let c = &c.fact.shape;
            let bc = broadcast_shapes(&[&out, c]).map_err(|_| {
                OpError::Shape(format!("C {} does not broadcast to {}", fmt_shape(c), fmt_shape(&out)))
            })?;
            if bc != out {
                return Err(OpError::Shape(format!(
                    "C {} does not broadcast to {}",
                    fmt_shape(c),
                    fmt_shape(&out)
                )));
            }
        }
        Ok(vec![Fact::dims(DType::F32, out)])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        let ((am, ak), (bk, bn)) = self.layout();
        let mut m = AxesMapping::none()
            .with(AxisRel::Same(Port::input(0, ak), Port::input(1, bk)))
            .with(AxisRel::Same(Port::input(0, am), Port::output(0, 0)))
            .with(AxisRel::Same(Port::input(1, bn), Port::output(0, 1)));
        if let Some(c) = ins.get(2) {
            let off = 2 - c.rank().min(2);
            for (k, d) in c.shape.iter().enumerate() {
                if *d != Dim::Fixed(1) {
                    m.rels.push(AxisRel::Same(Port::input(2, k), Port::output(0, k + off)));
                }
            }
        }
        m
    }
    fn cost(&self, ins: &[&Fact], outs: &[&Fact]) -> Cost {
        let k = ins[0].shape[self.layout().0 .1].fixed().unwrap_or(1) as u64;
        Cost { macs: per_example_volume(outs[0]) * k }
    }
}

/// Output shape of a MatMul: 1-D operands are promoted (a to a row, b to a column) and the
/// promoted axis is dropped again; batch axes broadcast.
fn matmul_shapes(a: &[Dim], b: &[Dim]) -> OpResult<Vec<Dim>> {
    if a.is_empty() || b.is_empty() {
        return Err(OpError::Shape(format!("MatMul of scalars ({} and {})", fmt_shape(a), fmt_shape(b))));
    }
    let pa: Vec<Dim> = if a.len() == 1 { vec![Dim::Fixed(1), a[0].clone()] } else { a.to_vec() };
    let pb: Vec<Dim> = if b.len() == 1 { vec![b[0].clone(), Dim::Fixed(1)] } else { b.to_vec() };
    let (ra, rb) = (pa.len(), pb.len());
    same_dim(&pa[ra - 1], &pb[rb - 2], "inner dimensions", a, b)?;
    let batch = broadcast_shapes(&[&pa[..ra - 2], &pb[..rb - 2]])?;
    let mut out = batch;
    if a.len() > 1 {
        out.push(pa[ra - 2].clone());
    }
    if b.len() > 1 {
        out.push(pb[rb - 1].clone());
    }
    Ok(out)
}

impl OpDef for MatMul {
    fn name(&self) -> &'static str {
        "MatMul"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 2, 2)?;
        check_f32(ins)?;
        let out = matmul_shapes(&ins[0].fact.shape, &ins[1].fact.shape)?;
        Ok(vec![Fact::dims(DType::F32, out)])
    }
    fn axes(&self, ins: &[&Fact], outs: &[&Fact]) -> AxesMapping {
        let (ra, rb, ro) = (ins[0].rank(), ins[1].rank(), outs[0].rank());
        let mut m = AxesMapping::none();
        // Contracted axes.
        let bk = if rb == 1 { 0 } else { rb - 2 };
        m.rels.push(AxisRel::Same(Port::input(0, ra - 1), Port::input(1, bk)));
        // Rows of a and columns of b.
        let n_axis = if rb > 1 { Some(ro - 1) } else { None };
        if ra > 1 {
            let row_out = if rb > 1 { ro - 2 } else { ro - 1 };
            m.rels.push(AxisRel::Same(Port::input(0, ra - 2), Port::output(0, row_out)));
        }
        if let Some(n) = n_axis {
            m.rels.push(AxisRel::Same(Port::input(1, rb - 1), Port::output(0, n)));
        }
        // Batch axes, right-aligned onto the output's batch axes.
        let out_batch = ro - usize::from(ra > 1) - usize::from(rb > 1);
        for (input, fact, r) in [(0, ins[0], ra), (1, ins[1], rb)] {
            let nb = r.saturating_sub(2);
            for k in 0..nb {
                if fact.shape[k] != Dim::Fixed(1) {
                    m.rels.push(AxisRel::Same(Port::input(input, k), Port::output(0, out_batch - nb + k)));
                }
            }
        }
        m
    }
    fn cost(&self, ins: &[&Fact], outs: &[&Fact]) -> Cost {
        let k = ins[0].shape.last().and_then(Dim::fixed).unwrap_or(1) as u64;
        Cost { macs: per_example_volume(outs[0]) * k }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inf(f: &Fact) -> InFact<'_> {
        InFact { fact: f, value: None }
    }
    fn n() -> Dim {
        Dim::Sym("N".into())
    }

    #[test]
    fn gemm_transposes_and_broadcasts_c() {
        let a = Fact::dims(DType::F32, vec![n(), Dim::Fixed(8)]);
        let b = Fact::new(DType::F32, &[5, 8]);
        let c = Fact::new(DType::F32, &[5]);
        let op = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
        let out = op.infer(&[inf(&a), inf(&b), inf(&c)]).unwrap();
        assert_eq!(out[0].shape, vec![n(), Dim::Fixed(5)]);
        assert_eq!(op.cost(&[&a, &b, &c], &[&out[0]]).macs, 40);
        let m = op.axes(&[&a, &b, &c], &[&out[0]]);
        assert!(m.rels.contains(&AxisRel::Same(Port::input(0, 1), Port::input(1, 1))));
        assert!(m.rels.contains(&AxisRel::Same(Port::input(2, 0), Port::output(0, 1))));
        let e = Gemm { trans_b: false, ..op.clone() }.infer(&[inf(&a), inf(&b)]).unwrap_err();
        assert!(e.to_string().contains("inner"), "{e}");
        let e = op.infer(&[inf(&a), inf(&b), inf(&Fact::new(DType::F32, &[3]))]).unwrap_err();
        assert!(e.to_string().contains("broadcast"), "{e}");
    }

    #[test]
    fn matmul_promotes_and_broadcasts_batches() {
        let a = Fact::dims(DType::F32, vec![n(), Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(4)]);
        let b = Fact::new(DType::F32, &[2, 4, 5]);
        let out = MatMul {}.infer(&[inf(&a), inf(&b)]).unwrap();
        assert_eq!(out[0].shape, vec![n(), Dim::Fixed(2), Dim::Fixed(3), Dim::Fixed(5)]);
        let v = Fact::new(DType::F32, &[4]);
        let out = MatMul {}.infer(&[inf(&a), inf(&v)]).unwrap();
        assert_eq!(out[0].shape, vec![n(), Dim::Fixed(1), Dim::Fixed(3)]);
        let out = MatMul {}.infer(&[inf(&v), inf(&b)]).unwrap();
        assert_eq!(out[0].shape, vec![Dim::Fixed(2), Dim::Fixed(5)]);
        let m = MatMul {}.axes(&[&v, &b], &[&out[0]]);
        assert!(m.rels.contains(&AxisRel::Same(Port::input(0, 0), Port::input(1, 1))));
        assert!(m.rels.contains(&AxisRel::Same(Port::input(1, 0), Port::output(0, 0))));
        assert!(MatMul {}.infer(&[inf(&b), inf(&b)]).is_err());
    }
}
