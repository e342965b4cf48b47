//! Optimizer updates applied inside the backward pass ("optimizer in backward").
//!
//! An optimizer registers an [`InBackwardUpdate`] for each weight before the forward pass (an
//! [`UpdateSession`]). When the backward pass of a fused linear layer reaches a registered weight
//! that the forward used exactly once, it computes the weight's gradient strip by strip and
//! applies the update in place ([`super::weight_grad`]) instead of producing a gradient tensor.
//! That saves the gradient's memory and two passes over it. Weights used more than once, through
//! other ops, or on CPUs without the kernel get ordinary gradients, and the optimizer updates them
//! afterwards as usual.
use super::weight_grad::StripUpdate;
use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, TensorId, Var};
use std::cell::RefCell;
use std::collections::HashMap;

/// One weight's pending update: the rule, its state buffers (each the length of the weight) and,
/// after the backward pass, whether it was applied.
pub struct InBackwardUpdate {
    pub var: Var,
    pub rule: Box<dyn StripUpdate + Send>,
    pub state: Vec<Vec<f32>>,
    /// Set when the backward pass applied the update.
    pub applied: bool,
    uses: usize,
}

impl InBackwardUpdate {
    /// An update of `var` by `rule` with `state` (buffers the length of `var`, may be empty).
    pub fn new(var: Var, rule: Box<dyn StripUpdate + Send>, state: Vec<Vec<f32>>) -> Self {
        InBackwardUpdate { var, rule, state, applied: false, uses: 0 }
    }
}

thread_local! {
    /// The updates of the session running on this thread, by weight id.
    static ACTIVE: RefCell<Option<HashMap<TensorId, InBackwardUpdate>>> = const { RefCell::new(None) };
}

/// Updates registered for one forward + backward pass on this thread.
pub struct UpdateSession {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl UpdateSession {
    /// Registers `updates` for the next forward and backward pass on this thread. Errors when a
    /// session is already active here.
    pub fn begin(updates: Vec<InBackwardUpdate>) -> Result<UpdateSession> {
        ACTIVE.with(|a| {
            let mut a = a.borrow_mut();
            if a.is_some() {
                candle_core::bail!("an in-backward update session is already active on this thread");
            }
            *a = Some(updates.into_iter().map(|u| (u.var.as_tensor().id(), u)).collect());
            Ok(())
        })?;
        Ok(UpdateSession { _not_send: std::marker::PhantomData })
    }

    /// Runs the backward pass of `loss` ([`super::backward`]), applying registered updates on
    /// the way. Returns the gradients of everything not updated, and the updates (with their
    /// state and `applied` flag, in no particular order) even when the pass failed.
    pub fn backward(self, loss: &Tensor) -> (Result<GradStore>, Vec<InBackwardUpdate>) {
        let grads = super::backward(loss);
        let updates = end();
        let grads = grads.and_then(|grads| {
            if updates.iter().any(|u| u.applied && grads.get(u.var.as_tensor()).is_some()) {
                candle_core::bail!(
                    "a weight updated in the backward pass also received a gradient from another op"
                );
            }
            Ok(grads)
        });
        (grads, updates)
    }

    /// Ends the session without a backward pass, returning the updates (none applied).
    pub fn cancel(self) -> Vec<InBackwardUpdate> {
        end()
    }
}

impl Drop for UpdateSession {
    fn drop(&mut self) {
        end();
    }
}

fn end() -> Vec<InBackwardUpdate> {
    ACTIVE.with(|a| a.borrow_mut().take()).map(|m| m.into_values().collect()).unwrap_or_default()
}

/// Notes a forward use of `w` by a fused op (weights used more than once are not updated in
/// the backward pass: a later use would read the updated values).
pub(crate) fn note_use(w: &Tensor) {
    if !w.is_variable() {
        return;
    }
    ACTIVE.with(|a| {
        if let Some(u) = a.borrow_mut().as_mut().and_then(|m| m.get_mut(&w.id())) {
            u.uses += 1;
        }
    });
}

/// Runs `f` on `w`'s registered update when it may be applied now (registered, used once, not
/// yet applied); `f` returns whether it applied it.
pub(crate) fn with_update(w: &Tensor, f: impl FnOnce(&mut InBackwardUpdate) -> Result<bool>) -> Result<bool> {
    if !w.is_variable() {
        return Ok(false);
    }
    // Take the entry out while `f` runs so the thread-local is not borrowed across the kernel.
    let Some(mut u) = ACTIVE.with(|a| {
        let mut a = a.borrow_mut();
        let m = a.as_mut()?;
        match m.get(&w.id()) {
            Some(u) if u.uses == 1 && !u.applied => m.remove(&w.id()),
            _ => None,
        }
    }) else {
        return Ok(false);
    };
    let result = f(&mut u);
    if let Ok(true) = result {
        u.applied = true;
    }
    ACTIVE.with(|a| {
        if let Some(m) = a.borrow_mut().as_mut() {
            m.insert(w.id(), u);
        }
    });
    result
}
