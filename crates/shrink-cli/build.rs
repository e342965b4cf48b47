//! Sets `cfg(shrink_shared)` when `SHRINK_SHARED` names the shared data directory, so the tests
//! that need its files run then and show as `ignored` (with the reason) otherwise, instead of
//! passing silently.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(shrink_shared)");
    println!("cargo::rerun-if-env-changed=SHRINK_SHARED");
    if std::env::var_os("SHRINK_SHARED").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=shrink_shared");
    }
}
