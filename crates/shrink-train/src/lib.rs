//! Training, fine-tuning and evaluation of shrink models: cross-entropy, SGD/Adam with PyTorch's
//! update rules, LR schedules, seeded shuffling/augmentation, best-by-validation selection,
//! resumable checkpoints and progress bars.
pub mod checkpoint;
pub mod eval;
pub mod graph_eval;
pub mod graph_train;
pub mod kd;
pub mod optim;
pub mod prune_schedule;
pub mod qat;
pub mod schedule;
mod sharing;
pub mod sparsity;
pub mod trainer;

pub use eval::{evaluate, evaluate_prepared, EvalResult};
pub use optim::{Optimizer, OptimizerConfig};
pub use schedule::Schedule;
pub use sparsity::{Penalty, SparsityConfig};
pub use trainer::{
    train, train_distilled, train_with_hooks, EpochRecord, EpochTally, HookContext, StepHook, TrainConfig,
    TrainReport,
};

/// Errors raised while training or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Ir(#[from] shrink_ir::IrError),
    #[error(transparent)]
    Io(#[from] shrink_io::IoError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias for training.
pub type Result<T> = std::result::Result<T, TrainError>;
