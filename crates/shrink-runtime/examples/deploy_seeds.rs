//! Writes small valid deploy files (the fuzz seed corpus):
//! `cargo run --release -p shrink-runtime --example deploy_seeds -- fuzz/corpus/deploy`.
#[path = "../tests/common/mod.rs"]
mod common;

use shrink_runtime::deploy::{DeployMeta, DeployModel};

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus/deploy".into());
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("{dir}: {e}");
        std::process::exit(1);
    }
    let models = [
        ("all_encodings", common::model()),
        ("raw", DeployModel::from_graph(common::graph(), DeployMeta::default())),
    ];
    for (name, m) in models {
        let path = format!("{dir}/{name}.shrink");
        let bytes = m.to_bytes().unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Err(e) = std::fs::write(&path, &bytes) {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
        println!("{path}: {} bytes", bytes.len());
    }
}
