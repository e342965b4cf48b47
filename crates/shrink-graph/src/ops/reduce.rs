//! Reductions over axes: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd.

use super::{check_arity, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{normalize_axis, DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// Which reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReduceKind {
    Mean,
    Sum,
    Max,
    Min,
    Prod,
}

/// Reduce over `axes` (empty: all axes); `keepdims` keeps each reduced axis with size 1.
/// f32 and i64 (integer `Mean` truncates toward zero).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reduce {
    pub kind: ReduceKind,
    pub axes: Vec<i64>,
    pub keepdims: bool,
}

impl Reduce {
    /// The reduced axes resolved against `rank`, sorted, or an error on a bad or repeated axis.
    pub fn resolved_axes(&self, rank: usize) -> OpResult<Vec<usize>> {
        if self.axes.is_empty() {
            return Ok((0..rank).collect());
        }
        let mut out = Vec::with_capacity(self.axes.len());
        for &a in &self.axes {
            let k =
                normalize_axis(a, rank).map_err(|e| OpError::Attr { name: "axes", msg: e.to_string() })?;
            if out.contains(&k) {
                return Err(OpError::Attr { name: "axes", msg: format!("axis {a} is repeated") });
            }
            out.push(k);
        }
        out.sort_unstable();
        Ok(out)
    }
}

impl OpDef for Reduce {
    fn name(&self) -> &'static str {
        "Reduce"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        let f = ins[0].fact;
        if !matches!(f.dtype, DType::F32 | DType::I64) {
            return Err(OpError::Shape(format!(
                "{:?} needs f32 or i64 values, got {:?}",
                self.kind, f.dtype
            )));
        }
        let axes = self.resolved_axes(f.rank())?;
        let mut shape = Vec::with_capacity(f.rank());
        for (k, d) in f.shape.iter().enumerate() {
            if !axes.contains(&k) {
                shape.push(d.clone());
            } else if self.keepdims {
                shape.push(Dim::Fixed(1));
            }
        }
        Ok(vec![Fact::dims(f.dtype, shape)])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        let rank = ins[0].rank();
        let Ok(axes) = self.resolved_axes(rank) else { return AxesMapping::none() };
        let mut m = AxesMapping::none();
        let mut out_axis = 0;
        for k in 0..rank {
            if axes.contains(&k) {
                m.rels.push(AxisRel::Pinned(Port::input(0, k)));
                out_axis += self.keepdims as usize;
            } else {
                m.rels.push(AxisRel::Same(Port::input(0, k), Port::output(0, out_axis)));
                out_axis += 1;
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x() -> Fact {
        Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(3), Dim::Fixed(4), Dim::Fixed(5)])
    }

    fn run(r: &Reduce, f: &Fact) -> OpResult<Vec<Fact>> {
        r.infer(&[InFact { fact: f, value: None }])
    }

    #[test]
    fn reduce_shapes_keep_symbolic_batch() {
        let f = x();
        let n = Dim::Sym("N".into());
        let r = Reduce { kind: ReduceKind::Mean, axes: vec![2, -1], keepdims: true };
        let out = run(&r, &f).unwrap();
        assert_eq!(out[0].shape, vec![n.clone(), Dim::Fixed(3), Dim::Fixed(1), Dim::Fixed(1)]);
        let r = Reduce { kind: ReduceKind::Sum, axes: vec![1], keepdims: false };
        assert_eq!(run(&r, &f).unwrap()[0].shape, vec![n, Dim::Fixed(4), Dim::Fixed(5)]);
        let r = Reduce { kind: ReduceKind::Max, axes: vec![], keepdims: false };
        assert_eq!(run(&r, &f).unwrap()[0].shape, Vec::<Dim>::new());
        let m = Reduce { kind: ReduceKind::Sum, axes: vec![1], keepdims: false }.axes(&[&f], &[]);
        assert!(m.rels.contains(&AxisRel::Pinned(Port::input(0, 1))));
        assert!(m.rels.contains(&AxisRel::Same(Port::input(0, 3), Port::output(0, 2))));
    }

    #[test]
    fn reduce_rejects_bad_axes_and_dtypes() {
        let f = x();
        let e = run(&Reduce { kind: ReduceKind::Sum, axes: vec![4], keepdims: true }, &f).unwrap_err();
        assert!(e.to_string().contains("axes"), "{e}");
        let e = run(&Reduce { kind: ReduceKind::Sum, axes: vec![1, -3], keepdims: true }, &f).unwrap_err();
        assert!(e.to_string().contains("repeated"), "{e}");
        let b = Fact::new(DType::Bool, &[2]);
        assert!(run(&Reduce { kind: ReduceKind::Sum, axes: vec![], keepdims: true }, &b).is_err());
    }
}
