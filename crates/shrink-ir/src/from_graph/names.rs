//! Layer names for a graph coming back into the layer IR: a weight called like a PyTorch
//! parameter (`layer1.0.conv1.weight`) names its layer; otherwise the name comes from the node's
//! exporter scope (`/layer1/layer1.0/conv1/Conv` → `layer1.0.conv1`), so imported models have the
//! same stable PyTorch-style names as zoo ones. Names are unique within a model.
use std::collections::HashSet;

/// Hands out unique layer names.
pub(super) struct Names {
    used: HashSet<String>,
    counter: usize,
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' }).collect()
}

/// Splits an exporter node name `/layer1/layer1.0/conv1/Conv` into its module scope
/// (`layer1.0.conv1`: a scope part that extends the previous one replaces it) and leaf (`Conv`).
fn scope_leaf(name: &str) -> (String, String) {
    if !name.contains('/') {
        return (String::new(), name.to_string());
    }
    let parts: Vec<&str> = name.split('/').filter(|s| !s.is_empty()).collect();
    let Some((leaf, scopes)) = parts.split_last() else { return (String::new(), String::new()) };
    let mut scope = String::new();
    for s in scopes {
        if scope.is_empty() || s.starts_with(&format!("{scope}.")) {
            scope = s.to_string();
        } else {
            scope = format!("{scope}.{s}");
        }
    }
    (scope, leaf.to_string())
}

/// Whether `prefix` reads like a PyTorch module path (`layer1.0.conv1`).
pub(super) fn pytorch_like(prefix: &str) -> bool {
    !prefix.is_empty()
        && !prefix.starts_with('.')
        && !prefix.ends_with('.')
        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

impl Names {
    /// No name used but `input` (the layer graph's input node).
    pub(super) fn new() -> Self {
        Names { used: HashSet::from(["input".to_string()]), counter: 0 }
    }

    /// `base`, or `base_1`, `base_2`, … when taken; the result is taken from now on.
    pub(super) fn unique(&mut self, base: String) -> String {
        let mut name = base.clone();
        let mut k = 1;
        while self.used.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }

    fn fallback(&mut self, op: &str) -> String {
        self.counter += 1;
        format!("{}{}", op.to_lowercase(), self.counter)
    }

    /// Name of a layer with weights; `weight` is the name of its weight constant.
    pub(super) fn layer(&mut self, node: &str, op: &str, weight: Option<&str>) -> String {
        if let Some(p) = weight.and_then(|w| w.strip_suffix(".weight")) {
            if pytorch_like(p) && !self.used.contains(p) {
                return self.unique(p.to_string());
            }
        }
        let (scope, leaf) = scope_leaf(node);
        let base = if !scope.is_empty() {
            sanitize(&scope)
        } else if !leaf.is_empty() {
            sanitize(&leaf)
        } else {
            self.fallback(op)
        };
        self.unique(base)
    }

    /// Name of a layer without weights.
    pub(super) fn plain(&mut self, node: &str, op: &str) -> String {
        let (scope, leaf) = scope_leaf(node);
        let base = match (scope.is_empty(), leaf.is_empty()) {
            (_, true) => self.fallback(op),
            (true, false) if node.contains('/') => sanitize(&leaf.to_lowercase()),
            (true, false) => sanitize(&leaf),
            (false, false) => format!("{}.{}", sanitize(&scope), sanitize(&leaf.to_lowercase())),
        };
        self.unique(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_scopes_become_module_paths() {
        assert_eq!(scope_leaf("/layer1/layer1.0/conv1/Conv"), ("layer1.0.conv1".into(), "Conv".into()));
        let mut n = Names::new();
        assert_eq!(n.layer("/layer1/layer1.0/conv1/Conv", "Conv", Some("onnx::Conv_7")), "layer1.0.conv1");
        assert_eq!(n.layer("whatever", "Conv", Some("fc1.weight")), "fc1");
        assert_eq!(n.plain("/layer1/layer1.0/Relu", "Relu"), "layer1.0.relu");
        assert_eq!(n.plain("/Relu", "Relu"), "relu");
        assert_eq!(n.plain("/Relu", "Relu"), "relu_1");
        assert_eq!(n.plain("relu1", "Relu"), "relu1");
    }
}
