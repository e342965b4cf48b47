//! One module per subcommand.
pub mod bench;
pub mod compare;
pub mod eval;
pub mod export;
pub mod finetune;
pub mod histogram;
pub mod info;
pub mod merge;
pub mod mixed;
pub mod prune;
pub mod quantize;
pub mod sensitivity;
pub mod share;
pub mod sparseopt;
pub mod sweep;
pub mod sweep_quant;
pub mod train;
