"""PyTorch weight import: every supported torchvision/timm architecture computes the same logits
in lightjax, wrong state dicts are one-line errors, the CLI writes a run load_run restores, and
the opt-in PyTorch running-variance update matches torch.nn.BatchNorm2d."""
import functools
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import timm
import torch
import torchvision
from PIL import Image

from lightjax import cli
from lightjax.errors import ValidationError
from lightjax.interop import state_dict_files, torch_architectures, torch_run, torch_weights
from lightjax.layers import LayerFactory
from lightjax.layers import batch_norm as bn_lib
from lightjax.train import experiment, validate
from lightjax.train import run as run_lib

#: source -> (constructor of the PyTorch model, convert() keyword arguments)
MODELS = {
    "torchvision:mobilenet_v2": (torchvision.models.mobilenet_v2, {}),
    "torchvision:mobilenet_v2@0.5": (
        functools.partial(torchvision.models.mobilenet_v2, width_mult=0.5), {"width_mult": 0.5}),
    "torchvision:shufflenet_v2_x0_5": (torchvision.models.shufflenet_v2_x0_5, {}),
    "torchvision:shufflenet_v2_x1_0": (torchvision.models.shufflenet_v2_x1_0, {}),
    "torchvision:shufflenet_v2_x1_5": (torchvision.models.shufflenet_v2_x1_5, {}),
    "torchvision:shufflenet_v2_x2_0": (torchvision.models.shufflenet_v2_x2_0, {}),
    "timm:mobilenetv1_100": (functools.partial(timm.create_model, "mobilenetv1_100"), {}),
    "timm:mobilenetv1_125": (functools.partial(timm.create_model, "mobilenetv1_125"), {}),
    "timm:mobilenetv1_100h": (functools.partial(timm.create_model, "mobilenetv1_100h"), {}),
}
#: Odd sizes down to the last stride-2 layer: every padding case of PyTorch's k // 2 rule.
IMAGES = np.random.RandomState(0).randn(1, 33, 33, 3).astype(np.float32)


def randomized(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """``model`` in eval mode with random BN affine parameters and running statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(c, generator=g))
                m.bias.copy_(0.1 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
    return model.eval()


@functools.lru_cache(maxsize=None)
def torch_model(key: str) -> torch.nn.Module:
    """Each PyTorch model built once per test process."""
    torch.manual_seed(0)
    return randomized(MODELS[key][0]())


@functools.lru_cache(maxsize=None)
def converted(key: str) -> torch_weights.Converted:
    """The lightjax conversion of ``torch_model(key)``, once per test process."""
    return torch_weights.convert(key.split("@")[0], torch_model(key).state_dict(),
                                 **MODELS[key][1])


def torch_logits(key: str) -> np.ndarray:
    with torch.no_grad():
        return torch_model(key)(torch.from_numpy(IMAGES.transpose(0, 3, 1, 2))).numpy()


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("key", torch_architectures.sources())
def test_imported_model_computes_the_pytorch_logits(key):
    sd = torch_model(key).state_dict()
    result = converted(key)
    assert result.tensors == sum(not k.endswith("num_batches_tracked") for k in sd)
    model = result.model(layers=LayerFactory(depthwise_impl="xla"))  # XLA's compiles fastest
    logits = jax.jit(model.apply)(result.variables, jnp.asarray(IMAGES))
    assert logits.shape == (1, 1000)
    assert rel_err(logits, torch_logits(key)) <= 1e-4


def test_mobilenet_v2_width_mult_converts_torchvision_widths():
    """Every shape of torchvision's width_mult=0.5 model matches (the same table as width 1.0,
    whose logits are compared above)."""
    result = converted("torchvision:mobilenet_v2@0.5")
    assert result.architecture.hyperparameters["alpha"] == 0.5
    assert result.variables["params"]["head_conv"]["conv"]["kernel"].shape == (1, 1, 160, 1280)


@pytest.mark.parametrize("source, key, kwargs, message", [
    ("torchvision:shufflenet_v2_x0_5", "torchvision:shufflenet_v2_x1_0", {},
     "tensor stage2.0.branch1.2.weight has shape (58, 24, 1, 1), expected (24, 24, 1, 1)"),
    ("torchvision:shufflenet_v2_x1_0", "torchvision:mobilenet_v2", {},
     "missing tensor conv1.0.weight (expected shape (24, 3, 3, 3))"),
    ("timm:mobilenetv1_125", "timm:mobilenetv1_100", {},
     "tensor conv_stem.weight has shape (32, 3, 3, 3), expected (40, 3, 3, 3)"),
    ("torchvision:mobilenet_v2", "torchvision:mobilenet_v2", {"width_mult": 0.5},
     "tensor features.0.0.weight has shape (32, 3, 3, 3), expected (16, 3, 3, 3)"),
    ("timm:mobilenetv1_100", "timm:mobilenetv1_100h", {},
     "unexpected tensors conv_head.weight, bn2.weight, bn2.bias and 2 more"),
])
def test_another_architecture_or_width_is_one_line_naming_the_first_mismatch(
        source, key, kwargs, message):
    with pytest.raises(ValidationError) as err:
        torch_weights.convert(source, torch_model(key).state_dict(), **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_source_and_misplaced_width_mult_are_refused():
    with pytest.raises(ValidationError, match="mobilenetv1_100h has a 1x1 head conv"):
        torch_architectures.get("timm:mobilenetv1_100h")
    with pytest.raises(ValidationError, match="width_mult applies to torchvision:mobilenet_v2"):
        torch_architectures.get("timm:mobilenetv1_100", width_mult=0.5)


def test_configs_carry_hyperparameters_normalization_and_pytorch_bn():
    timm_cfg = torch_run.run_config(torch_architectures.get("timm:mobilenetv1_125"))
    assert dict(timm_cfg.model) == dict(name="mobilenet_v1", num_classes=1000, alpha=1.25,
                                        activation="relu6", variant="standard", stem_stride=2,
                                        dropout=0.0)
    assert timm_cfg.data.name == "imagenet2012" and timm_cfg.data.resolution == 224
    assert tuple(timm_cfg.data.mean) == (0.5,) * 3 and tuple(timm_cfg.data.std) == (0.5,) * 3
    tv = torch_run.run_config(torch_architectures.get("torchvision:mobilenet_v2"))
    assert tv.model.activation == "relu6" and tv.model.dropout == 0.2
    assert tuple(tv.data.std) == (0.229, 0.224, 0.225)
    assert (tv.train.bn_epsilon, tv.train.bn_momentum) == (1e-5, 0.9)
    for bad in (dict(data="cifar10"), dict(data="folder"),
                dict(root="/data", data="imagenet2012"), dict(resolution=8)):
        with pytest.raises(ValidationError):
            torch_run.run_config(torch_architectures.get("torchvision:mobilenet_v2"), **bad)


def _imagenet_folder(root) -> None:
    """1000 class folders of one 8x8 image (val: the first two classes)."""
    pixels = np.random.RandomState(1).randint(0, 256, (8, 8, 3), np.uint8)
    for split, classes in (("train", 1000), ("val", 2)):
        for c in range(classes):
            os.makedirs(root / split / f"n{c:08d}")
            Image.fromarray(pixels).save(root / split / f"n{c:08d}" / "a.png")


def test_cli_writes_a_run_that_load_run_restores_and_refuses_an_existing_out(tmp_path, capsys):
    key = "timm:mobilenetv1_100"
    state_dict = torch_model(key).state_dict()
    weights = tmp_path / "weights.pth"
    torch.save({"state_dict": state_dict, "epoch": 3}, weights)  # a wrapped training checkpoint
    _imagenet_folder(tmp_path / "imagenet")
    out = str(tmp_path / "run")
    argv = ["import-weights", "--from", key, "--state-dict", str(weights), "--out", out,
            "--data", "folder", "--root", str(tmp_path / "imagenet"), "--resolution", "32"]
    assert cli.main(argv) == 0
    assert f"lightjax eval --workdir {out}" in capsys.readouterr().out
    cfg, exp, state = run_lib.load_run(out)
    assert dict(cfg.model) == dict(name="mobilenet_v1", num_classes=1000, alpha=1.0,
                                   activation="relu6", variant="standard", stem_stride=2,
                                   dropout=0.0)
    assert tuple(cfg.data.mean) == (0.5, 0.5, 0.5) and exp.dataset.num_classes == 1000
    assert exp.base_model.layers.bn_epsilon == 1e-5 and int(state.step) == 0
    # the restored variables are exactly the converted ones (whose logits are tested above)
    expected = converted(key).variables
    restored = {"params": state.params, "batch_stats": state.batch_stats}
    assert jax.tree.structure(restored) == jax.tree.structure(expected)
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(np.asarray(got), want)
    imported = json.loads((tmp_path / "run" / "imported.json").read_text())
    assert imported["tensors"] == sum(not k.endswith("num_batches_tracked") for k in state_dict)
    before = sorted(os.listdir(out))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and err.count("\n") == 1
    assert sorted(os.listdir(out)) == before


def test_cli_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    weights = tmp_path / "mnv2.pth"
    torch.save(torch_model("torchvision:mobilenet_v2").state_dict(), weights)
    out = tmp_path / "run"
    for argv, message in (
            (["--from", "torchvision:shufflenet_v2_x1_0", "--state-dict", str(weights)],
             "missing tensor conv1.0.weight"),
            (["--from", "torchvision:resnet50", "--state-dict", str(weights)],
             "unknown weight source"),
            (["--from", "torchvision:mobilenet_v2", "--state-dict", str(tmp_path / "no.pth")],
             "does not exist"),
            (["--from", "torchvision:mobilenet_v2", "--state-dict", str(weights), "--data",
              "cifar100"], "1000 ImageNet classes")):
        assert cli.main(["import-weights", *argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not out.exists()


def test_state_dict_files_read_npz_safetensors_and_refuse_other_files(tmp_path):
    from safetensors.numpy import save_file

    arrays = {"conv.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.ones(2)}
    np.savez(tmp_path / "w.npz", **arrays)
    save_file(arrays, str(tmp_path / "w.safetensors"))
    for name in ("w.npz", "w.safetensors"):
        loaded = state_dict_files.load(str(tmp_path / name))
        assert sorted(loaded) == sorted(arrays)
        np.testing.assert_array_equal(loaded["conv.weight"], arrays["conv.weight"])
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")  # a pickled module, not weights
    for name, message in (("junk.pth", "not a PyTorch state dict"),
                          ("module.pth", "not a PyTorch state dict"),
                          ("w.txt", "unknown suffix")):
        (tmp_path / name).touch()
        with pytest.raises(ValidationError, match=message) as err:
            state_dict_files.load(str(tmp_path / name))
        assert "\n" not in str(err.value)


# --- PyTorch's unbiased running-variance update (opt-in) ---------------------------------------

class _Norm(nn.Module):
    unbiased: bool
    fast: bool = True

    @nn.compact
    def __call__(self, x):
        return bn_lib.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5,
                                unbiased_variance=self.unbiased, use_fast_variance=self.fast,
                                name="bn")(x)


@pytest.mark.parametrize("fast", [True, False])
def test_unbiased_variance_update_equals_torch_batchnorm2d(fast):
    x = np.random.RandomState(2).randn(3, 5, 4, 6).astype(np.float32) * 2 + 1  # NHWC, n = 60
    ref = torch.nn.BatchNorm2d(6, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        ref.running_mean.copy_(torch.linspace(-1, 1, 6))
        ref.running_var.copy_(torch.linspace(0.5, 2, 6))
        ref.train()(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    stats = {"mean": jnp.linspace(-1, 1, 6), "var": jnp.linspace(0.5, 2, 6)}
    variables = {"params": {"bn": {"scale": jnp.ones(6), "bias": jnp.zeros(6)}},
                 "batch_stats": {"bn": stats}}
    for unbiased in (True, False):
        _, upd = _Norm(unbiased, fast).apply(variables, jnp.asarray(x), mutable=["batch_stats"])
        new = upd["batch_stats"]["bn"]
        np.testing.assert_allclose(new["mean"], ref.running_mean.numpy(), rtol=1e-5, atol=1e-6)
        var_err = rel_err(new["var"], ref.running_var.numpy())
        assert var_err <= 1e-5 if unbiased else var_err > 1e-3  # biased: off by 1/59 * 0.1


def test_config_bn_fields_reach_the_layer_factory_and_are_checked():
    stand_in = type("D", (), dict(name="x", num_classes=1000, image_shape=(32, 32, 3)))
    cfg = torch_run.run_config(torch_architectures.get("torchvision:shufflenet_v2_x0_5"))
    cfg.train.bn_unbiased_variance = True
    cfg.train.bn_momentum = 0.99
    layers = experiment.build_model(cfg, stand_in).layers
    assert (layers.bn_unbiased_variance, layers.bn_momentum, layers.bn_epsilon) == (
        True, 0.99, 1e-5)
    for field, value in (("bn_unbiased_variance", 1), ("bn_momentum", 1.5), ("bn_epsilon", 0.0)):
        bad = {**cfg.train.to_dict(), field: value}
        with pytest.raises(ValidationError, match=f"train.{field}"):
            validate.check_train(ml_collections.ConfigDict(bad))
