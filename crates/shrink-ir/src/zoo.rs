//! The model zoo: graphs of the architectures the labs use, with PyTorch module names.
use crate::error::{IrError, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::init::init_params;
use crate::model::{Model, ModelMeta};
use candle_core::Device;

/// Names accepted by [`build`] / `--arch`.
pub const ARCHS: &[&str] = &[
    "simple-dnn",
    "lenet-300-100",
    "lenet5",
    "lenet5-bn",
    "lenet5-caffe",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "vgg11-bn",
    "vgg16-bn",
    "vgg9-bn",
];

/// CIFAR-10 class names in label order.
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// Metadata for a 28x28 grayscale digit model (normalization as in the MNIST lab).
pub fn mnist_meta(arch: &str) -> ModelMeta {
    ModelMeta {
        arch: arch.to_string(),
        input_shape: vec![1, 28, 28],
        mean: vec![0.5],
        std: vec![0.5],
        classes: (0..10).map(|d| d.to_string()).collect(),
    }
}

/// Metadata for a CIFAR-10 model (normalization of the shared pretrained ResNets).
pub fn cifar_meta(arch: &str) -> ModelMeta {
    ModelMeta {
        arch: arch.to_string(),
        input_shape: vec![3, 32, 32],
        mean: vec![0.485, 0.456, 0.406],
        std: vec![0.229, 0.224, 0.225],
        classes: CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
    }
}

/// The graph of a zoo architecture.
pub fn graph(arch: &str) -> Result<Graph> {
    match arch {
        "simple-dnn" => Ok(mlp(&[784, 1568, 3136, 6272, 10])),
        "lenet-300-100" => Ok(mlp(&[784, 300, 100, 10])),
        "lenet5" => Ok(lenet5()),
        "lenet5-bn" => Ok(lenet5_bn()),
        "lenet5-caffe" => Ok(lenet5_caffe()),
        "resnet20" => Ok(resnet(3)),
        "resnet32" => Ok(resnet(5)),
        "resnet44" => Ok(resnet(7)),
        "resnet56" => Ok(resnet(9)),
        "vgg11-bn" => Ok(vgg(&[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0])),
        "vgg16-bn" => {
            Ok(vgg(&[64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0]))
        }
        "vgg9-bn" => Ok(vgg9_bn()),
        _ => Err(IrError::UnknownArch(arch.to_string(), ARCHS.join(", "))),
    }
}

/// Metadata matching a zoo architecture's expected input.
pub fn meta(arch: &str) -> Result<ModelMeta> {
    match arch {
        "simple-dnn" | "lenet-300-100" | "lenet5" | "lenet5-bn" | "lenet5-caffe" => Ok(mnist_meta(arch)),
        a if ARCHS.contains(&a) => Ok(cifar_meta(arch)),
        _ => Err(IrError::UnknownArch(arch.to_string(), ARCHS.join(", "))),
    }
}

/// A freshly initialized zoo model (PyTorch default init, seeded).
pub fn build(arch: &str, seed: u64, device: &Device) -> Result<Model> {
    let g = graph(arch)?;
    let params = init_params(&g, seed, device)?;
    Model::new(g, params, meta(arch)?)
}

/// Flatten followed by Linear+ReLU layers `fc1..fcN` (no ReLU after the last).
fn mlp(sizes: &[usize]) -> Graph {
    let mut g = Graph::new();
    let mut x = g.push("flatten", Op::Flatten, vec![0]);
    for (i, w) in sizes.windows(2).enumerate() {
        let name = format!("fc{}", i + 1);
        x = g.push(&name, Op::Linear { in_features: w[0], out_features: w[1], bias: true }, vec![x]);
        if i + 2 < sizes.len() {
            x = g.push(format!("relu{}", i + 1), Op::Relu, vec![x]);
        }
    }
    g
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, pad: usize, bias: bool) -> Op {
    Op::Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel: [k, k],
        stride: [stride, stride],
        padding: [pad, pad],
        groups: 1,
        bias,
    }
}

fn bn(c: usize) -> Op {
    Op::BatchNorm { num_features: c, eps: 1e-5, momentum: 0.1 }
}

fn max_pool(k: usize) -> Op {
    Op::MaxPool2d { kernel: [k, k], stride: [k, k], padding: [0, 0] }
}

fn lenet5() -> Graph {
    let mut g = Graph::new();
    let mut x = g.push("conv1", conv(1, 6, 5, 1, 2, true), vec![0]);
    x = g.push("relu1", Op::Relu, vec![x]);
    x = g.push("pool1", max_pool(2), vec![x]);
    x = g.push("conv2", conv(6, 16, 5, 1, 0, true), vec![x]);
    x = g.push("relu2", Op::Relu, vec![x]);
    x = g.push("pool2", max_pool(2), vec![x]);
    x = g.push("flatten", Op::Flatten, vec![x]);
    x = g.push("fc1", Op::Linear { in_features: 400, out_features: 120, bias: true }, vec![x]);
    x = g.push("relu3", Op::Relu, vec![x]);
    x = g.push("fc2", Op::Linear { in_features: 120, out_features: 84, bias: true }, vec![x]);
    x = g.push("relu4", Op::Relu, vec![x]);
    g.push("fc3", Op::Linear { in_features: 84, out_features: 10, bias: true }, vec![x]);
    g
}

/// Caffe's MNIST LeNet (`examples/mnist/lenet.prototxt`), the LeNet-5 of Deep Compression's 39x
/// (Han et al. 2016, Table 4): conv1 1→20 5x5 (no padding) → max-pool 2 → conv2 20→50 5x5 →
/// max-pool 2 → flatten 800 → fc1 800→500 → ReLU → fc2 500→10; no ReLU after the convolutions,
/// as in Caffe. 431,080 parameters.
fn lenet5_caffe() -> Graph {
    let mut g = Graph::new();
    let mut x = g.push("conv1", conv(1, 20, 5, 1, 0, true), vec![0]);
    x = g.push("pool1", max_pool(2), vec![x]);
    x = g.push("conv2", conv(20, 50, 5, 1, 0, true), vec![x]);
    x = g.push("pool2", max_pool(2), vec![x]);
    x = g.push("flatten", Op::Flatten, vec![x]);
    x = g.push("fc1", Op::Linear { in_features: 800, out_features: 500, bias: true }, vec![x]);
    x = g.push("relu1", Op::Relu, vec![x]);
    g.push("fc2", Op::Linear { in_features: 500, out_features: 10, bias: true }, vec![x]);
    g
}

/// CIFAR ResNet (He et al. 2016) with `n` basic blocks per stage and option-A shortcuts.
fn resnet(n: usize) -> Graph {
    let mut g = Graph::new();
    let mut x = g.push("conv1", conv(3, 16, 3, 1, 1, false), vec![0]);
    x = g.push("bn1", bn(16), vec![x]);
    x = g.push("relu", Op::Relu, vec![x]);
    let mut in_planes = 16;
    for (stage, planes) in [16usize, 32, 64].into_iter().enumerate() {
        for block in 0..n {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            x = basic_block(&mut g, &format!("layer{}.{block}", stage + 1), x, in_planes, planes, stride);
            in_planes = planes;
        }
    }
    x = g.push("avgpool", Op::GlobalAvgPool, vec![x]);
    x = g.push("flatten", Op::Flatten, vec![x]);
    g.push("linear", Op::Linear { in_features: 64, out_features: 10, bias: true }, vec![x]);
    g
}

fn basic_block(g: &mut Graph, p: &str, x: NodeId, cin: usize, planes: usize, stride: usize) -> NodeId {
    let mut y = g.push(format!("{p}.conv1"), conv(cin, planes, 3, stride, 1, false), vec![x]);
    y = g.push(format!("{p}.bn1"), bn(planes), vec![y]);
    y = g.push(format!("{p}.relu1"), Op::Relu, vec![y]);
    y = g.push(format!("{p}.conv2"), conv(planes, planes, 3, 1, 1, false), vec![y]);
    y = g.push(format!("{p}.bn2"), bn(planes), vec![y]);
    let shortcut = if stride != 1 || cin != planes {
        let extra = planes - cin;
        g.push(
            format!("{p}.shortcut"),
            Op::ShortcutA { stride, pad_before: extra / 2, pad_after: extra - extra / 2 },
            vec![x],
        )
    } else {
        x
    };
    y = g.push(format!("{p}.add"), Op::Add, vec![y, shortcut]);
    g.push(format!("{p}.relu2"), Op::Relu, vec![y])
}

/// CIFAR VGG with BatchNorm (`features.i` sequential indices, `classifier` Linear 512→10);
/// `0` in `cfg` marks a 2x2 max-pool.
fn vgg(cfg: &[usize]) -> Graph {
    let mut g = Graph::new();
    let mut x = 0;
    let mut idx = 0;
    let mut cin = 3;
    for &v in cfg {
        if v == 0 {
            x = g.push(format!("features.{idx}"), max_pool(2), vec![x]);
            idx += 1;
        } else {
            x = g.push(format!("features.{idx}"), conv(cin, v, 3, 1, 1, true), vec![x]);
            x = g.push(format!("features.{}", idx + 1), bn(v), vec![x]);
            x = g.push(format!("features.{}", idx + 2), Op::Relu, vec![x]);
            idx += 3;
            cin = v;
        }
    }
    x = g.push(
        format!("features.{idx}"),
        Op::AvgPool2d { kernel: [1, 1], stride: [1, 1], padding: [0, 0] },
        vec![x],
    );
    x = g.push("flatten", Op::Flatten, vec![x]);
    g.push("classifier", Op::Linear { in_features: 512, out_features: 10, bias: true }, vec![x]);
    g
}

/// Seed 004's LeNet-5 with BatchNorm (61,750 trainable parameters): `layer1`/`layer2` =
/// Conv(5x5, bias) + BatchNorm + ReLU + MaxPool(2) (conv1 padded by 2 so 28x28 digits stay
/// 28x28), then `fc` 400→120, `fc1` 120→84, `fc2` 84→10 with ReLUs between.
fn lenet5_bn() -> Graph {
    let mut g = Graph::new();
    let mut x = 0;
    for (i, (cin, cout, pad)) in [(1, 6, 2), (6, 16, 0)].into_iter().enumerate() {
        let p = format!("layer{}", i + 1);
        x = g.push(format!("{p}.0"), conv(cin, cout, 5, 1, pad, true), vec![x]);
        x = g.push(format!("{p}.1"), bn(cout), vec![x]);
        x = g.push(format!("{p}.2"), Op::Relu, vec![x]);
        x = g.push(format!("{p}.3"), max_pool(2), vec![x]);
    }
    x = g.push("flatten", Op::Flatten, vec![x]);
    x = g.push("fc", Op::Linear { in_features: 400, out_features: 120, bias: true }, vec![x]);
    x = g.push("relu", Op::Relu, vec![x]);
    x = g.push("fc1", Op::Linear { in_features: 120, out_features: 84, bias: true }, vec![x]);
    x = g.push("relu1", Op::Relu, vec![x]);
    g.push("fc2", Op::Linear { in_features: 84, out_features: 10, bias: true }, vec![x]);
    g
}

/// The MIT 6.5940 lab-1 VGG (seed 002): `backbone.conv{i}` (3x3, no bias), `backbone.bn{i}`
/// and `backbone.relu{i}` over `[64, 128, M, 256, 256, M, 512, 512, M, 512, 512, M]`
/// (`backbone.pool{j}` = MaxPool(2)), global average, `classifier` Linear 512→10:
/// 9,228,362 parameters.
fn vgg9_bn() -> Graph {
    let mut g = Graph::new();
    let (mut x, mut cin, mut convs, mut pools) = (0, 3, 0, 0);
    for v in [64, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0] {
        if v == 0 {
            x = g.push(format!("backbone.pool{pools}"), max_pool(2), vec![x]);
            pools += 1;
            continue;
        }
        x = g.push(format!("backbone.conv{convs}"), conv(cin, v, 3, 1, 1, false), vec![x]);
        x = g.push(format!("backbone.bn{convs}"), bn(v), vec![x]);
        x = g.push(format!("backbone.relu{convs}"), Op::Relu, vec![x]);
        convs += 1;
        cin = v;
    }
    x = g.push("avgpool", Op::GlobalAvgPool, vec![x]);
    x = g.push("flatten", Op::Flatten, vec![x]);
    g.push("classifier", Op::Linear { in_features: 512, out_features: 10, bias: true }, vec![x]);
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trainable parameters (running statistics excluded), as PyTorch's `numel` sum counts them.
    fn trainable_params(arch: &str) -> usize {
        graph(arch)
            .unwrap()
            .nodes
            .iter()
            .flat_map(|n| n.op.params())
            .filter(|p| p.kind.trainable())
            .map(|p| p.shape.iter().product::<usize>())
            .sum()
    }

    #[test]
    fn lab_models_have_the_labs_parameter_counts() {
        assert_eq!(trainable_params("lenet5-bn"), 61_750);
        assert_eq!(trainable_params("vgg9-bn"), 9_228_362);
        // Both build and infer shapes down to 10 logits.
        for arch in ["lenet5-bn", "vgg9-bn"] {
            let m = build(arch, 0, &Device::Cpu).unwrap();
            assert_eq!(m.shapes().unwrap().last().unwrap(), &vec![10], "{arch}");
        }
        // MACs: the lab's ≈ 606 M for the VGG; seed 004's torchprofile figure for a batch of 64.
        let vgg = build("vgg9-bn", 0, &Device::Cpu).unwrap();
        assert_eq!(crate::stats::model_stats(&vgg).unwrap().macs, 605_754_368);
        let lenet = build("lenet5-bn", 0, &Device::Cpu).unwrap();
        assert_eq!(crate::stats::model_stats(&lenet).unwrap().macs, 416_520);
        assert_eq!(64 * crate::stats::torchprofile_macs(&lenet).unwrap(), 27_060_736);
    }

    #[test]
    fn lenet5_caffe_is_deep_compressions_lenet5() {
        // Han et al. 2016, Table 4: 431K weights (conv1 500, conv2 25K, fc1 400K, fc2 5K) + biases.
        assert_eq!(trainable_params("lenet5-caffe"), 431_080);
        let m = build("lenet5-caffe", 0, &Device::Cpu).unwrap();
        let shapes = m.shapes().unwrap();
        assert!(shapes.contains(&vec![50, 4, 4]), "conv2 + pool2 give 50x4x4 = 800 features: {shapes:?}");
        assert_eq!(shapes.last().unwrap(), &vec![10]);
        assert_eq!(meta("lenet5-caffe").unwrap().input_shape, vec![1, 28, 28]);
        assert!(ARCHS.contains(&"lenet5-caffe"));
    }
}
