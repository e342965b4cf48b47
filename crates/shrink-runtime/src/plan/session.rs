//! A plan bound to input shapes: concrete shapes, the memory plan, the arena (allocated once),
//! the conv geometries, the chosen linear kernels; runs the steps.

use super::conv::{scratch_workers, ConvGeo};
use super::int8_conv::Int8ConvGeo;
use super::int8_linear::Int8LinearStep;
use super::linear::{candidates, default_kernel, LinearKernel};
use super::memory::{assign, Interval};
use super::{Plan, StepKind};
use crate::eval::EvalCtx;
use crate::exec::{eval_op, EvalError};
use shrink_graph::{Tensor, ValueDef};
use std::time::Instant;

/// Where a value lives while a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    /// Input `k` of the call.
    Input(usize),
    /// A constant of the plan's graph.
    Const,
    /// Arena slot `s` (outputs of conv / linear steps).
    Arena(usize),
    /// A tensor made by a reference step, dropped after its last reader.
    Owned,
}

/// A plan ready to run on inputs of fixed shapes. Create with [`Plan::session`].
pub struct Session<'p> {
    plan: &'p Plan,
    input_shapes: Vec<Vec<usize>>,
    ctx: EvalCtx,
    loc: Vec<Loc>,
    /// Concrete shape of each arena value (empty for the others).
    shapes: Vec<Vec<usize>>,
    /// The arena: one buffer per slot, allocated here and never resized.
    slots: Vec<Vec<f32>>,
    owned: Vec<Option<Tensor>>,
    /// Last step reading each value (`steps.len()` for graph outputs).
    last_use: Vec<usize>,
    conv_geo: Vec<Option<ConvGeo>>,
    /// The kernel of each linear step.
    kernels: Vec<Option<LinearKernel>>,
    /// im2col scratch of the conv steps (one per parallel worker); also the f32 GEMM results
    /// of the int8 conv steps.
    scratch: Vec<f32>,
    /// The geometry of each int8 conv step.
    int8_geo: Vec<Option<Int8ConvGeo>>,
    /// u8 scratch of the int8 steps (quantized inputs, im2col rows).
    scratch_u8: Vec<u8>,
}

fn err_at(plan: &Plan, step: usize, msg: String) -> EvalError {
    let s = &plan.steps[step];
    EvalError::Node { node: s.name.clone(), op: "plan", msg: format!("{}: {msg}", s.op) }
}

impl<'p> Session<'p> {
    pub(super) fn new(plan: &'p Plan, input_shapes: &[Vec<usize>]) -> Result<Session<'p>, EvalError> {
        let g = &plan.graph;
        if input_shapes.len() != g.inputs.len() {
            return Err(EvalError::Input {
                name: "(inputs)".into(),
                msg: format!(
                    "the graph has {} inputs, {} shapes were given",
                    g.inputs.len(),
                    input_shapes.len()
                ),
            });
        }
        // Bind symbols through the reference executor's checks, on empty stand-in tensors.
        let stand_ins: Vec<Tensor> =
            g.inputs.iter().zip(input_shapes).map(|(&i, s)| empty_like(g.values[i].fact.dtype, s)).collect();
        let syms = crate::exec::bind_inputs(g, &stand_ins)?;
        let ctx = EvalCtx { syms, exact_accumulation: false };
        let nv = g.values.len();
        let mut loc = vec![Loc::Owned; nv];
        for (k, &i) in g.inputs.iter().enumerate() {
            loc[i] = Loc::Input(k);
        }
        for (i, v) in g.values.iter().enumerate() {
            if matches!(v.def, ValueDef::Const(_)) {
                loc[i] = Loc::Const;
            }
        }
        let steps = plan.steps();
        let mut last_use = vec![0usize; nv];
        let mut first = vec![0usize; nv];
        for (i, s) in steps.iter().enumerate() {
            for &v in &s.inputs {
                last_use[v] = last_use[v].max(i);
            }
            for &v in &s.outputs {
                first[v] = i;
                last_use[v] = last_use[v].max(i);
            }
        }
        for &o in &g.outputs {
            last_use[o] = steps.len();
        }
        let resolve = |v: usize, step: usize| -> Result<Vec<usize>, EvalError> {
            g.values[v]
                .fact
                .shape
                .iter()
                .map(|d| ctx.dim(d))
                .collect::<Result<_, _>>()
                .map_err(|e| err_at(plan, step, format!("shape of `{}`: {e}", g.values[v].name)))
        };
        // Arena values: the outputs of kernel steps.
        let mut shapes = vec![Vec::new(); nv];
        let mut arena_values = Vec::new();
        let mut conv_geo = Vec::with_capacity(steps.len());
        let mut kernels = Vec::with_capacity(steps.len());
        let mut scratch_len = 0;
        let (mut int8_geo, mut scratch_u8_len) = (Vec::with_capacity(steps.len()), 0);
        for (i, s) in steps.iter().enumerate() {
            let (mut geo, mut kernel, mut geo8) = (None, None, None);
            match &s.kind {
                StepKind::Reference(_) | StepKind::Elementwise(_) => {}
                StepKind::Conv(c) => {
                    let (x, o) = (resolve(s.inputs[0], i)?, resolve(s.outputs[0], i)?);
                    let cg = c.geometry(&x, &o).map_err(|e| err_at(plan, i, e.to_string()))?;
                    scratch_len = scratch_len.max(cg.col_len * scratch_workers(cg.geo.batch).max(1));
                    geo = Some(cg);
                }
                StepKind::Linear(l) => {
                    let x = resolve(s.inputs[0], i)?;
                    let rows = x.iter().product::<usize>().checked_div(l.k).unwrap_or(1);
                    kernel = Some(default_kernel(&l.weights, rows));
                }
                StepKind::Int8Linear(l) => {
                    let x = resolve(s.inputs[0], i)?;
                    let rows = x.iter().product::<usize>() / l.k;
                    scratch_u8_len = scratch_u8_len.max(l.scratch_len(rows));
                }
                StepKind::Int8Conv(c) => {
                    let (x, o) = (resolve(s.inputs[0], i)?, resolve(s.outputs[0], i)?);
                    let g = c.geometry(&x, &o).map_err(|e| err_at(plan, i, e))?;
                    let (nu8, nf32) = g.scratch_len();
                    scratch_u8_len = scratch_u8_len.max(nu8);
                    scratch_len = scratch_len.max(nf32);
                    geo8 = Some(g);
                }
            }
            if !matches!(s.kind, StepKind::Reference(_)) {
                let o = s.outputs[0];
                shapes[o] = resolve(o, i)?;
                arena_values.push(o);
            }
            conv_geo.push(geo);
            kernels.push(kernel);
            int8_geo.push(geo8);
        }
        let intervals: Vec<Interval> = arena_values
            .iter()
            .map(|&v| Interval { len: shapes[v].iter().product(), first: first[v], last: last_use[v] })
            .collect();
        let a = assign(&intervals);
        for (&v, &s) in arena_values.iter().zip(&a.slot_of) {
            loc[v] = Loc::Arena(s);
        }
        let slots = a.slot_len.iter().map(|&n| vec![0f32; n]).collect();
        let mut session = Session {
            plan,
            input_shapes: input_shapes.to_vec(),
            ctx,
            loc,
            shapes,
            slots,
            owned: vec![None; nv],
            last_use,
            conv_geo,
            kernels,
            scratch: vec![0f32; scratch_len],
            int8_geo,
            scratch_u8: vec![0u8; scratch_u8_len],
        };
        if plan.options.tune {
            session.tune();
        }
        session.apply_forced_kernel();
        Ok(session)
    }

    /// Time each candidate kernel of every linear step on this session's batch; keep the fastest.
    fn tune(&mut self) {
        for (i, s) in self.plan.steps.iter().enumerate() {
            let StepKind::Linear(l) = &s.kind else { continue };
            let out_len: usize = self.shapes[s.outputs[0]].iter().product();
            let rows = out_len / l.n.max(1);
            let x: Vec<f32> = (0..rows * l.k).map(|t| (t % 7) as f32 * 0.1).collect();
            let mut out = vec![0f32; out_len];
            let cands = candidates(&l.weights);
            self.kernels[i] = Some(pick_fastest(cands, |kern| {
                l.run(kern, &x, &mut out);
                (0..3)
                    .map(|_| {
                        let t = Instant::now();
                        l.run(kern, &x, &mut out);
                        t.elapsed().as_secs_f64()
                    })
                    .fold(f64::INFINITY, f64::min)
            }));
        }
    }

    /// `SHRINK_PLAN_KERNEL=NAME` (benchmarks, accuracy checks): every linear step that has
    /// kernel `NAME` among its candidates runs it, whatever the default or the tuning chose.
    fn apply_forced_kernel(&mut self) {
        let Some(k) = super::linear::forced_kernel() else { return };
        for (i, s) in self.plan.steps.iter().enumerate() {
            if matches!(&s.kind, StepKind::Linear(l) if candidates(&l.weights).contains(&k)) {
                self.kernels[i] = Some(k);
            }
        }
    }

    /// The kernel each step runs (`reference` for reference-evaluated operators).
    pub fn kernel_name(&self, step: usize) -> &'static str {
        match (&self.plan.steps[step].kind, self.kernels[step], &self.conv_geo[step]) {
            (StepKind::Linear(_), Some(k), _) => k.name(),
            (StepKind::Conv(_), _, Some(g)) => g.kernel.name(),
            (StepKind::Int8Linear(_), _, _) => Int8LinearStep::KERNEL,
            (StepKind::Elementwise(e), _, _) => e.kernel_name(),
            (StepKind::Int8Conv(_), _, _) => match &self.int8_geo[step] {
                Some(g) => g.kernel.name(),
                None => "int8",
            },
            _ => "reference",
        }
    }

    /// The kernel chosen for linear step `step`, if it is one.
    pub fn linear_kernel(&self, step: usize) -> Option<LinearKernel> {
        self.kernels[step]
    }

    /// Choose the kernel of linear step `step` (it must be one of its candidates).
    pub fn set_linear_kernel(&mut self, step: usize, kernel: LinearKernel) -> Result<(), EvalError> {
        match &self.plan.steps[step].kind {
            StepKind::Linear(l) if candidates(&l.weights).contains(&kernel) => {
                self.kernels[step] = Some(kernel);
                Ok(())
            }
            _ => Err(err_at(self.plan, step, format!("{kernel:?} cannot run this step"))),
        }
    }

    /// The plan this session runs.
    pub fn plan(&self) -> &'p Plan {
        self.plan
    }

    /// Start address and length of every arena buffer (they never move between runs).
    pub fn arena_buffers(&self) -> Vec<(usize, usize)> {
        self.slots.iter().map(|b| (b.as_ptr() as usize, b.len())).collect()
    }

    /// Floats held by the arena.
    pub fn arena_len(&self) -> usize {
        self.slots.iter().map(Vec::len).sum()
    }

    /// Run on `inputs` (in the order of the graph's inputs, of the session's shapes).
    pub fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
        self.run_inner(inputs, None)
    }

    /// Run and add each step's wall time (seconds) to `times[step]`.
    pub fn run_timed(&mut self, inputs: &[Tensor], times: &mut [f64]) -> Result<Vec<Tensor>, EvalError> {
        self.run_inner(inputs, Some(times))
    }

    fn check_inputs(&self, inputs: &[Tensor]) -> Result<(), EvalError> {
        let g = &self.plan.graph;
        if inputs.len() != self.input_shapes.len() {
            return Err(EvalError::Input {
                name: "(inputs)".into(),
                msg: format!("the graph has {} inputs, {} were given", self.input_shapes.len(), inputs.len()),
            });
        }
        for ((t, want), &id) in inputs.iter().zip(&self.input_shapes).zip(&g.inputs) {
            let v = &g.values[id];
            if &t.shape != want || t.dtype() != v.fact.dtype {
                return Err(EvalError::Input {
                    name: v.name.clone(),
                    msg: format!(
                        "the session was made for {:?} {want:?}, got {:?} {:?}",
                        v.fact.dtype,
                        t.dtype(),
                        t.shape
                    ),
                });
            }
        }
        Ok(())
    }

    /// The f32 data of value `v`.
    fn f32_of<'a>(&'a self, inputs: &'a [Tensor], v: usize) -> Option<&'a [f32]> {
        match self.loc[v] {
            Loc::Arena(s) => Some(&self.slots[s][..self.shapes[v].iter().product::<usize>()]),
            _ => self.tensor_of(inputs, v)?.as_f32(),
        }
    }

    /// Value `v` as a tensor, unless it lives in the arena.
    fn tensor_of<'a>(&'a self, inputs: &'a [Tensor], v: usize) -> Option<&'a Tensor> {
        match self.loc[v] {
            Loc::Input(k) => inputs.get(k),
            Loc::Const => self.plan.graph.const_value(v),
            Loc::Owned => self.owned[v].as_ref(),
            Loc::Arena(_) => None,
        }
    }

    /// Runs the steps on a thread of the rayon pool: one hand-off per run, after which each
    /// step's parallel kernel starts from a worker (no wake-up and wait of the calling thread
    /// per step: four per simple-dnn call before, a few µs each against 0.2–3 ms calls).
    fn run_inner(&mut self, inputs: &[Tensor], times: Option<&mut [f64]>) -> Result<Vec<Tensor>, EvalError> {
        rayon::scope(|_| self.run_steps(inputs, times))
    }

    fn run_steps(
        &mut self,
        inputs: &[Tensor],
        mut times: Option<&mut [f64]>,
    ) -> Result<Vec<Tensor>, EvalError> {
        self.check_inputs(inputs)?;
        let plan = self.plan;
        for (i, step) in plan.steps.iter().enumerate() {
            let start = times.as_ref().map(|_| Instant::now());
            match &step.kind {
                StepKind::Reference(op) => self.reference_step(inputs, i, op)?,
                StepKind::Conv(c) => {
                    let Loc::Arena(s) = self.loc[step.outputs[0]] else {
                        unreachable!("kernel outputs are in the arena")
                    };
                    let mut out = std::mem::take(&mut self.slots[s]);
                    let mut scratch = std::mem::take(&mut self.scratch);
                    let geo = self.conv_geo[i].as_ref().expect("conv steps have a geometry");
                    let want = geo.geo.batch * geo.geo.c * geo.geo.in_size();
                    let n = self.shapes[step.outputs[0]].iter().product();
                    let r = match (self.f32_of(inputs, step.inputs[0]), self.residual(inputs, i, n)) {
                        (_, Err(e)) => Err(err_at(plan, i, e)),
                        (Some(x), Ok(res)) if x.len() == want => {
                            c.run(geo, x, res, &mut out[..n], &mut scratch);
                            Ok(())
                        }
                        (Some(x), _) => {
                            Err(err_at(plan, i, format!("input has {} values, {want} expected", x.len())))
                        }
                        (None, _) => Err(err_at(plan, i, "input is not f32".into())),
                    };
                    self.slots[s] = out;
                    self.scratch = scratch;
                    r?;
                }
                StepKind::Linear(l) => {
                    let Loc::Arena(s) = self.loc[step.outputs[0]] else {
                        unreachable!("kernel outputs are in the arena")
                    };
                    let mut out = std::mem::take(&mut self.slots[s]);
                    let n: usize = self.shapes[step.outputs[0]].iter().product();
                    let kernel = self.kernels[i].expect("linear steps have a kernel");
                    let want = n / l.n.max(1) * l.k;
                    let r = match self.f32_of(inputs, step.inputs[0]) {
                        Some(x) if x.len() == want => {
                            l.run(kernel, x, &mut out[..n]);
                            Ok(())
                        }
                        Some(x) => {
                            Err(err_at(plan, i, format!("input has {} values, {want} expected", x.len())))
                        }
                        None => Err(err_at(plan, i, "input is not f32".into())),
                    };
                    self.slots[s] = out;
                    r?;
                }
                StepKind::Int8Linear(l) => self.int8_step(inputs, i, |x, _, out, _, su8, _| {
                    if x.len() % l.k != 0 || x.len() / l.k * l.n != out.len() {
                        return Err(format!("input has {} values for {} outputs", x.len(), out.len()));
                    }
                    l.run(x, out, su8)
                })?,
                StepKind::Int8Conv(c) => self.int8_step(inputs, i, |x, res, out, geo, su8, sf32| {
                    let geo = geo.ok_or("int8 conv step without a geometry")?;
                    c.run(geo, x, res, out, su8, sf32)
                })?,
                StepKind::Elementwise(e) => self.elementwise_step(inputs, i, e)?,
            }
            // Drop reference results after their last reader.
            for &v in &step.inputs {
                if self.last_use[v] == i && self.loc[v] == Loc::Owned {
                    self.owned[v] = None;
                }
            }
            if let (Some(t), Some(start)) = (times.as_deref_mut(), start) {
                t[i] += start.elapsed().as_secs_f64();
            }
        }
        let g = &plan.graph;
        let outs =
            g.outputs
                .iter()
                .map(|&o| match self.loc[o] {
                    Loc::Arena(_) => {
                        let data = self.f32_of(inputs, o).unwrap_or(&[]).to_vec();
                        Ok(Tensor::f32(self.shapes[o].clone(), data))
                    }
                    _ => self.tensor_of(inputs, o).cloned().ok_or_else(|| {
                        EvalError::Op(format!("output `{}` was not computed", g.values[o].name))
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?;
        for &o in &g.outputs {
            if self.loc[o] == Loc::Owned {
                self.owned[o] = None;
            }
        }
        Ok(outs)
    }

    /// The residual input of conv step `i` (its second input), checked to hold `n` values.
    fn residual<'a>(&'a self, inputs: &'a [Tensor], i: usize, n: usize) -> Result<Option<&'a [f32]>, String> {
        let Some(&v) = self.plan.steps[i].inputs.get(1) else { return Ok(None) };
        match self.f32_of(inputs, v) {
            Some(r) if r.len() == n => Ok(Some(r)),
            Some(r) => Err(format!("residual has {} values, {n} expected", r.len())),
            None => Err("residual is not f32".into()),
        }
    }

    /// The concrete shape of value `v`.
    fn shape_of<'a>(&'a self, inputs: &'a [Tensor], v: usize) -> Option<&'a [usize]> {
        match self.loc[v] {
            Loc::Arena(_) => Some(&self.shapes[v]),
            _ => self.tensor_of(inputs, v).map(|t| t.shape.as_slice()),
        }
    }

    /// Run element-wise step `i` into its arena slot.
    fn elementwise_step(
        &mut self,
        inputs: &[Tensor],
        i: usize,
        e: &super::ElementwiseStep,
    ) -> Result<(), EvalError> {
        let plan = self.plan;
        let step = &plan.steps[i];
        let Loc::Arena(s) = self.loc[step.outputs[0]] else {
            unreachable!("element-wise outputs are in the arena")
        };
        let mut out = std::mem::take(&mut self.slots[s]);
        let n: usize = self.shapes[step.outputs[0]].iter().product();
        let data: Option<Vec<(&[f32], &[usize])>> =
            step.inputs.iter().map(|&v| Some((self.f32_of(inputs, v)?, self.shape_of(inputs, v)?))).collect();
        let r = match data {
            Some(d) => {
                let (ins, shapes): (Vec<&[f32]>, Vec<&[usize]>) = d.into_iter().unzip();
                e.run(&ins, &shapes, &mut out[..n])
            }
            None => Err("an input is not an f32 value".into()),
        };
        self.slots[s] = out;
        r.map_err(|m| err_at(plan, i, m))
    }

    /// Run int8 step `i`: `f(input, residual, output, int8 conv geometry, u8 scratch, f32
    /// scratch)` with the output in its arena slot; an error names the step.
    #[allow(clippy::type_complexity)]
    fn int8_step(
        &mut self,
        inputs: &[Tensor],
        i: usize,
        f: impl FnOnce(
            &[f32],
            Option<&[f32]>,
            &mut [f32],
            Option<&Int8ConvGeo>,
            &mut [u8],
            &mut [f32],
        ) -> Result<(), String>,
    ) -> Result<(), EvalError> {
        let plan = self.plan;
        let step = &plan.steps[i];
        let Loc::Arena(s) = self.loc[step.outputs[0]] else {
            unreachable!("kernel outputs are in the arena")
        };
        let mut out = std::mem::take(&mut self.slots[s]);
        let mut su8 = std::mem::take(&mut self.scratch_u8);
        let mut sf32 = std::mem::take(&mut self.scratch);
        let n: usize = self.shapes[step.outputs[0]].iter().product();
        let r = match (self.f32_of(inputs, step.inputs[0]), self.residual(inputs, i, n)) {
            (_, Err(e)) => Err(e),
            (Some(x), Ok(res)) => f(x, res, &mut out[..n], self.int8_geo[i].as_ref(), &mut su8, &mut sf32),
            (None, _) => Err("input is not f32".into()),
        };
        self.slots[s] = out;
        self.scratch_u8 = su8;
        self.scratch = sf32;
        r.map_err(|m| err_at(plan, i, m))
    }

    /// Evaluate step `i` with the reference operator (arena inputs are copied into tensors).
    fn reference_step(
        &mut self,
        inputs: &[Tensor],
        i: usize,
        op: &shrink_graph::Op,
    ) -> Result<(), EvalError> {
        let plan = self.plan;
        let step = &plan.steps[i];
        let g = &plan.graph;
        let copies: Vec<Option<Tensor>> = step
            .inputs
            .iter()
            .map(|&v| match self.loc[v] {
                Loc::Arena(_) => {
                    self.f32_of(inputs, v).map(|d| Tensor::f32(self.shapes[v].clone(), d.to_vec()))
                }
                _ => None,
            })
            .collect();
        let ins: Vec<&Tensor> = step
            .inputs
            .iter()
            .zip(&copies)
            .map(|(&v, c)| {
                c.as_ref()
                    .or_else(|| self.tensor_of(inputs, v))
                    .ok_or_else(|| err_at(plan, i, format!("input `{}` has no value", g.values[v].name)))
            })
            .collect::<Result<_, _>>()?;
        let outs = eval_op(op, &ins, &self.ctx).map_err(|e| match e {
            EvalError::Op(msg) => EvalError::Node { node: step.name.clone(), op: op.def().name(), msg },
            other => other,
        })?;
        if outs.len() != step.outputs.len() {
            return Err(err_at(
                plan,
                i,
                format!("produced {} outputs, {} expected", outs.len(), step.outputs.len()),
            ));
        }
        for (&o, t) in step.outputs.iter().zip(outs) {
            if self.last_use[o] > i || g.outputs.contains(&o) {
                self.owned[o] = Some(t);
            }
        }
        Ok(())
    }
}

/// An empty-data tensor standing in for an input of `shape` (only its shape is read).
fn empty_like(dtype: shrink_graph::DType, shape: &[usize]) -> Tensor {
    // bind_inputs reads dtype and shape only; the data must still match the shape's volume,
    // so a zero-volume shape of the same rank is not usable: build real (zeroed) data.
    let n: usize = shape.iter().product();
    match dtype {
        shrink_graph::DType::F32 => Tensor::f32(shape.to_vec(), vec![0.0; n]),
        shrink_graph::DType::Bool => Tensor::bool(shape.to_vec(), vec![false; n]),
        d => Tensor::from_i64s(d, shape.to_vec(), &vec![0; n]),
    }
}

/// The candidate with the smallest time (the first on ties).
pub(crate) fn pick_fastest<K: Copy>(cands: &[K], mut time: impl FnMut(K) -> f64) -> K {
    let mut best = (cands[0], f64::INFINITY);
    for &c in cands {
        let t = time(c);
        if t < best.1 {
            best = (c, t);
        }
    }
    best.0
}
