//! Model files and datasets for shrink: safetensors model files with metadata (atomic writes;
//! every reader recognises the format by content, see [`format`]),
//! PyTorch `.pt` state_dicts (read without executing pickle code, and written),
//! bit-packed quantized model files, and dataset loaders (MNIST IDX, CIFAR-10 binary, image
//! folders and archives).
pub mod atomic;
pub mod data;
pub mod deploy;
pub mod error;
pub mod format;
pub mod graph_weights;
pub mod masks;
pub mod model_file;
pub mod npy;
pub mod onnx;
pub mod packed;
pub mod pt;
pub mod st_write;

pub use error::{IoError, Result};
pub use model_file::{load_model, save_model};
pub use packed::save_packed;
