//! ONNX ops of the `array` family → IR ops.

use super::{Ctx, ImportFn, R};
use crate::onnx::decode::NodeProto;

/// The mapping of `op_type`, if this family has it.
pub fn lookup(op_type: &str) -> Option<ImportFn> {
    Some(match op_type {
        "__none__" => none,
        _ => return None,
    })
}

fn none(_ctx: &mut Ctx, _node: &NodeProto) -> R<()> {
    Err("TODO(helper)".into())
}
