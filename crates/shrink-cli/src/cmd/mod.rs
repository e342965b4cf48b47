//! One module per subcommand.
pub mod bench;
pub mod eval;
pub mod info;
pub mod sparseopt;
pub mod train;
