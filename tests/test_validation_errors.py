"""Invalid configs exit non-zero before any work, naming the valid choices or range, and write nothing."""
import subprocess
import sys

import pytest

from apbench.validate import ConfigError, validate
from conftest import compose


@pytest.mark.parametrize("override,expected", [
    ("method.layers=[40]", "layer 40 is out of range for ResNet with 4 blocks: valid points are 'input', 0..4"),
    ("method.layers=[-5]", "valid points are 'input', 0..4"),
    ("method.layers=[layer9.0]", "no module 'layer9.0'"),
    ("method.shape=cube", "ap shape 'cube' unknown; choose one of ('full', 'channel')"),
    ("trainer.optimizer=lbfgs", "trainer.optimizer='lbfgs' is not valid; choose one of: sgd, adam, adamw"),
    ("trainer.lr=-1", "trainer.lr=-1 must be a positive number"),
    ("trainer.epochs=2.5", "trainer.epochs=2.5 must be a positive integer"),
    ("trainer.amp=fp8", "trainer.amp='fp8' is not valid; choose one of: none, bf16, fp16"),
    ("device=tpu", "device='tpu' is not valid; choose one of: auto, cuda, cpu"),
    ("seed=abc", "seed='abc' must be an integer"),
    ("model.name=resnet5O", "model.name='resnet5O' is not a timm model; did you mean"),
    ("+method.layer=3", "unknown key(s) in method (ap): 'layer' (did you mean 'layers'?)"),
    ("+trainer.lr_sched=cos", "unknown key(s) in trainer: 'lr_sched'"),
    ("dataset.augment=mixup", "dataset.augment='mixup' is not valid; choose one of: none, crop_flip"),
])
def test_validation_names_the_problem(override, expected, tiny_overrides):
    with pytest.raises(ConfigError) as e:
        validate(compose(*tiny_overrides, override))
    assert expected in str(e.value)


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "apbench", "run", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("override,expected", [
    ("method.layers=[40]", "valid points are 'input', 0..4"),
    ("method=prompt_tuning", "Could not find 'method/prompt_tuning'"),
    ("method.layer=3", "Key 'layer' is not in struct"),
])
def test_cli_exits_nonzero_and_writes_no_record(override, expected, tiny_overrides, tmp_path):
    out = _cli(*tiny_overrides, override, cwd=tmp_path)
    assert out.returncode != 0
    assert expected in out.stderr + out.stdout
    assert not list(tmp_path.rglob("record.json"))


def test_unknown_method_lists_the_available_ones(tiny_overrides, tmp_path):
    out = _cli(*tiny_overrides, "method=prompt_tuning", cwd=tmp_path)
    assert "Available options in 'method'" in out.stderr and "linear_probe" in out.stderr
