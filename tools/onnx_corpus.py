"""Generate the model corpus of crates/shrink-io/tests/graph_corpus.rs.

Real architectures (torchvision and small hand-built PyTorch modules, random weights, fixed
seed), exported to ONNX by both PyTorch exporters (TorchScript at opsets 11/13/17, dynamo at
18+), with onnxruntime's outputs as the reference. Widths are reduced where noted so each
fixture stays small; the topology (inverted residuals, SE, hard-swish, channel shuffle, concat,
grouped convs, attention) is the real one.

    /work/venv/bin/python tools/onnx_corpus.py [OUT_DIR]
    /work/venv/bin/python tools/onnx_corpus.py --trainable DIR   # MobileNetV2 with BN kept, for finetune
"""
import io
import zlib
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision.models as tvm
from torchvision.models.densenet import _DenseBlock
from torchvision.models.shufflenetv2 import ShuffleNetV2
from torchvision.models.resnet import BasicBlock, Bottleneck

sys.path.insert(0, os.path.dirname(__file__))
from onnx_cases import save_case  # noqa: E402

OUT = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else "crates/shrink-io/tests/fixtures/graph_corpus"


def export(model, args, opset, dynamo, dynamic_batch=True, input_names=("x",)):
    model.eval()
    buf = io.BytesIO()
    kw = dict(opset_version=opset, input_names=list(input_names), output_names=["y"])
    if dynamo:
        if dynamic_batch:
            kw["dynamic_shapes"] = tuple({0: torch.export.Dim("N", min=1, max=1024)} for _ in args)
        prog = torch.onnx.export(model, args, dynamo=True, **kw)
        return prog.model_proto.SerializeToString()
    if dynamic_batch:
        kw["dynamic_axes"] = {n: {0: "N"} for n in list(input_names) + ["y"]}
    torch.onnx.export(model, args, buf, dynamo=False, **kw)
    return buf.getvalue()


def randomize(model, seed):
    """Random, non-trivial BatchNorm statistics (fresh modules have mean 0 / var 1), and weights
    snapped to 15 levels per tensor so the committed files compress well (the values stay
    arbitrary floats to every kernel)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.abs().max() == 0:
                # Zero-initialised parameters (torchvision's ViT head, class token) would make
                # the output constant: give them values too.
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            if p.dim() >= 2 and p.abs().max() > 0:
                s = p.abs().max() / 7
                p.copy_(torch.round(p / s) * s)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


class ResNet18Narrow(nn.Module):
    """torchvision's ResNet-18 layout (BasicBlock ×[2,2,2,2], stride-2 downsample convs) at 1/8 width."""

    def __init__(self, widths=(8, 16, 32, 64), num_classes=10):
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers = []
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or self.inplanes != w:
                down = nn.Sequential(nn.Conv2d(self.inplanes, w, 1, stride, bias=False), nn.BatchNorm2d(w))
            blocks = [BasicBlock(self.inplanes, w, stride, down), BasicBlock(w, w)]
            self.inplanes = w
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class DenseNetBlock(nn.Module):
    """One torchvision DenseNet block (BN-ReLU-Conv1x1-BN-ReLU-Conv3x3, concatenated features) and a transition."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.block = _DenseBlock(num_layers=3, num_input_features=16, bn_size=2, growth_rate=8, drop_rate=0.0)
        self.norm = nn.BatchNorm2d(40)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(40 * 8 * 8, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.norm(self.block(self.stem(x)))))
        return self.fc(x.view(x.size(0), -1))


class ResNeXtBlock(nn.Module):
    """Two torchvision Bottleneck blocks with groups=4, width_per_group=8 (ResNeXt cardinality)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        down = nn.Sequential(nn.Conv2d(32, 64, 1, 2, bias=False), nn.BatchNorm2d(64))
        self.b1 = Bottleneck(32, 16, stride=2, downsample=down, groups=4, base_width=8)
        self.b2 = Bottleneck(64, 16, groups=4, base_width=8)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        x = self.b2(self.b1(self.stem(x)))
        return self.head(x.mean(dim=(2, 3)))


class TinyBert(nn.Module):
    """A BERT-style encoder fed token ids: embeddings + positions, 2 post-norm layers (GELU), pooled head."""

    def __init__(self, vocab=100, seq=16, d=32, heads=4):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(1, seq, d) * 0.1)
        self.norm = nn.LayerNorm(d)
        layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=64, dropout=0.0, activation="gelu", batch_first=True)
        self.enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(d, 3)

    def forward(self, ids):
        h = self.norm(self.tok(ids) + self.pos)
        h = self.enc(h)
        return self.head(torch.tanh(h[:, 0]))


class LeNetBN1d(nn.Module):
    """A third-party style MNIST MLP: BatchNorm1d on a 2-D input, softmax head."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 32)
        self.bn1 = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = x.view(-1, 784)
        return torch.softmax(self.fc2(torch.relu(self.bn1(self.fc1(x)))), dim=1)


def efficientnet_b0_narrow():
    """torchvision EfficientNet-B0 (MBConv, SE, SiLU, stochastic depth off in eval) at width 0.25."""
    from torchvision.models.efficientnet import _efficientnet_conf, EfficientNet

    setting, last = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.5)
    return EfficientNet(setting, dropout=0.2, last_channel=last, num_classes=10)


def image(seed, n=2, c=3, hw=32):
    return np.random.default_rng(seed).standard_normal((n, c, hw, hw)).astype(np.float32)


def main():
    torch.manual_seed(0)
    cases = [
        # name, module factory, input, opset, dynamo
        ("mobilenet_v2", lambda: tvm.mobilenet_v2(width_mult=0.25, num_classes=10), image(1), 13, False),
        ("mobilenet_v3_small", lambda: tvm.mobilenet_v3_small(width_mult=0.5, num_classes=10), image(2), 17, False),
        ("efficientnet_b0", efficientnet_b0_narrow, image(3), 18, True),
        ("shufflenet_v2", lambda: ShuffleNetV2([2, 4, 2], [16, 32, 64, 128, 256], num_classes=10), image(4), 11, False),
        ("squeezenet1_1", lambda: tvm.squeezenet1_1(num_classes=10), image(5, hw=64), 13, False),
        ("densenet_block", DenseNetBlock, image(6, hw=16), 17, False),
        ("resnext_block", ResNeXtBlock, image(7), 18, True),
        ("resnet18", ResNet18Narrow, image(8), 13, False),
        ("vit_tiny", lambda: tvm.VisionTransformer(32, 8, 2, 4, 32, 64, num_classes=10), image(9), 17, False),
        ("mobilenet_v2_dynamo", lambda: tvm.mobilenet_v2(width_mult=0.25, num_classes=10), image(10), 18, True),
    ]
    for name, make, x, opset, dynamo in cases:
        model = randomize(make(), zlib.crc32(name.encode()) % 1000).eval()
        onnx_bytes = export(model, (torch.from_numpy(x),), opset, dynamo)
        out = save_case(OUT, name, onnx_bytes, [x])
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        print(f"{name}: {len(onnx_bytes) / 1e3:.0f} kB, |torch - ort| = {np.abs(ref - out[0]).max():.2e}")

    bert = randomize(TinyBert(), 11).eval()
    ids = np.random.default_rng(11).integers(0, 100, (2, 16)).astype(np.int64)
    onnx_bytes = export(bert, (torch.from_numpy(ids),), 17, False, input_names=("ids",))
    save_case(OUT, "bert_tiny", onnx_bytes, [ids])
    print(f"bert_tiny: {len(onnx_bytes) / 1e3:.0f} kB")

    # Third-party shapes the v1 importer refused: BatchNorm1d on 2-D input with a softmax head,
    # and a fixed batch dimension of 10.
    lenet = randomize(LeNetBN1d(), 12).eval()
    x = np.random.default_rng(12).standard_normal((10, 1, 28, 28)).astype(np.float32)
    save_case(OUT, "lenet_bn1d_softmax", export(lenet, (torch.from_numpy(x),), 13, False), [x])
    save_case(OUT, "lenet_bn1d_batch10", export(lenet, (torch.from_numpy(x),), 11, False, dynamic_batch=False), [x])


def export_trainable(out_dir):
    """MobileNetV2 (width 0.5, torchvision's own initialisation) with its BatchNormalization
    nodes kept (no constant folding), for `shrink finetune`: a BN-folded random network does not
    train (its gradients vanish through 50 plain convolutions)."""
    torch.manual_seed(0)
    model = tvm.mobilenet_v2(width_mult=0.5, num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=13, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "mobilenet_v2_bn.onnx"), "wb") as f:
        f.write(buf.getvalue())


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--trainable":
        export_trainable(sys.argv[2])
    else:
        main()
