"""Bad input through the real CLI: exit non-zero, name the problem and the fix, write no record.

Every case calls the entry point ``apbench.cli.main(argv)``, whose return value is the process's exit
status (``__main__`` exits with it), in-process: each costs a validation, not a Python start, and
training is patched to fail the test if it starts. A few cases are also (or only) run as their own
``python -m apbench ...`` process, two at a time in one module fixture: Hydra composition, a data
error and a plain command as a user's shell sees them, and the full disk, which needs a file-size
limit that only a child process can be given.
"""
from __future__ import annotations

import gzip
import json
import resource
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

from .conftest import apbench, records_under, tiny


def _idx(path: Path, a: np.ndarray) -> None:
    """Write ``a`` (uint8) as a gzipped IDX file, the original Fashion-MNIST format."""
    head = struct.pack(">HBB", 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    path.write_bytes(gzip.compress(head + a.astype(np.uint8).tobytes()))


def _fmnist(root: Path, n=100, labels=None, images=None) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 10 if labels is None else labels
    images = rng.integers(0, 256, (n, 28, 28)) if images is None else images
    for split, m in (("train", n), ("t10k", 20)):
        _idx(root / f"{split}-images-idx3-ubyte.gz", images[:m] if split == "train" else images[:20])
        _idx(root / f"{split}-labels-idx1-ubyte.gz", labels[:m] if split == "train" else labels[:20])
    return root


def _small_fsize():
    # A real "disk full" for files: writes past 2 kB fail with EFBIG (Python ignores SIGXFSZ).
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))


def _cases(w: Path) -> dict:
    """id -> (argv, the messages that must appear: the problem and its fix, extra subprocess kwargs)."""
    data = w / "data"
    _fmnist(data / "corrupt")
    (data / "corrupt" / "train-images-idx3-ubyte.gz").write_bytes(
        (data / "corrupt" / "train-images-idx3-ubyte.gz").read_bytes()[:200])
    _fmnist(data / "swapped", images=np.arange(100) % 10)
    _fmnist(data / "mismatch")
    _idx(data / "mismatch" / "train-labels-idx1-ubyte.gz", np.arange(90) % 10)
    _fmnist(data / "labels", labels=(np.arange(100) % 10) + 3)
    (data / "empty").mkdir()
    torch.manual_seed(0)
    resnet = w / "tiny_resnet.pth"
    torch.save(timm.create_model("resnet18", layers=[1, 1, 1, 1]).state_dict(), resnet)
    (w / "notes.pth").write_text("these are my notes, not weights\n")
    (w / "a-file.txt").write_text("a file where a folder should be\n")
    (w / "empty-results").mkdir()
    lite0 = ["model=efficientnet_lite0", "model.weights=file"]
    return {
        # Hydra composition: caught before torch loads
        "unknown_dataset": (tiny(w, "dataset=cifar11"), ["Could not find 'dataset/cifar11'",
                                                          "Available options in 'dataset'"]),
        "unknown_model": (tiny(w, "model=resnet51"), ["Could not find 'model/resnet51'", "resnet50"]),
        "unknown_method": (tiny(w, "method=lora2"), ["Could not find 'method/lora2'", "lora"]),
        "unknown_launcher": (tiny(w, "hydra/launcher=nope"), ["Could not find 'hydra/launcher/nope'",
                                                               "Available options in 'hydra/launcher'"]),
        "misspelt_key": (tiny(w, "trainer.lrr=0.1"), ["Key 'lrr' is not in struct", "did you mean trainer.lr?"]),
        # Validation: types, ranges, names, families
        "misspelt_new_key": (tiny(w, "+dataset.trian_size=40"), ["'trian_size' (did you mean 'train_size'?)"]),
        "wrong_type": (tiny(w, "trainer.epochs=ten"), ["trainer.epochs='ten' must be a positive integer"]),
        "layer_out_of_range": (tiny(w, "method.layers=[40]"), ["layer 40 is out of range",
                                                               "valid points are 'input', 0..4"]),
        "method_on_wrong_family": (tiny(w, "method=vpt"), ["method 'vpt' does not apply to ResNet",
                                                            "it supports: vit"]),
        # Data: found while loading, before training
        "missing_data_root": (tiny(w, f"+dataset.root={data / 'nowhere'}"),
                              [f"dataset.root={data / 'nowhere'} is not a directory", "point it at the folder"]),
        "empty_data_root": (tiny(w, f"+dataset.root={data / 'empty'}"),
                            ["Fashion-MNIST train files not found", "apt-get install dataset-fashion-mnist"]),
        "unreadable_idx": (tiny(w, f"+dataset.root={data / 'corrupt'}"),
                           ["train-images-idx3-ubyte.gz: unreadable IDX file", "re-download it"]),
        "wrong_layout": (tiny(w, f"+dataset.root={data / 'swapped'}"),
                         ["not N x H x W images", "images and labels files are not swapped"]),
        "image_label_mismatch": (tiny(w, f"+dataset.root={data / 'mismatch'}"),
                                 ["has 100 images but", "(90,) labels", "matching pair of one split"]),
        "label_out_of_range": (tiny(w, f"+dataset.root={data / 'labels'}"),
                               ["has label 12", "labels are 0..9"]),
        "class_count_mismatch": (tiny(w, "dataset.num_classes=7"),
                                 ["dataset.num_classes is 7 but the data found has 10 classes",
                                  "fix the data root or dataset.num_classes"]),
        "empty_split": (tiny(w, "dataset.train_size=0"), ["dataset.train_size=0", "must be positive multiples of 10"]),
        # Weights
        "checkpoint_wrong_architecture": (tiny(w, *lite0, f"model.checkpoint={resnet}"),
                                          ["do not fit EfficientNet", "missing", "check that model.name is the "
                                           "architecture the checkpoint was trained with"]),
        "checkpoint_not_a_checkpoint": (tiny(w, *lite0, f"model.checkpoint={w / 'notes.pth'}"),
                                        ["notes.pth is not a loadable PyTorch checkpoint",
                                         "give a file saved with torch.save(model.state_dict(), path)"]),
        # Output
        "results_dir_not_writable": (tiny(w, f"paths.results_dir={w / 'a-file.txt' / 'runs'}"),
                                     ["a-file.txt/runs is not a writable folder",
                                      "set paths.results_dir (or paths.root_dir) to a folder you can write"]),
        # The disk fills during the run (Hydra's own log files are left out so that only the record hits it)
        "disk_full": (tiny(w, "hydra.output_subdir=null", "trainer.measure_efficiency=false"),
                      ["could not write the record", "File too large", "free space",
                       "re-run the same command"], {"preexec_fn": _small_fsize}),
        # The other commands
        "results_no_dir": (["results", str(w / "no-such-runs")], ["no-such-runs is not a directory",
                                                                   "give the folder the runs wrote to"]),
        "results_no_records": (["results", str(w / "empty-results")], ["no run records",
                                                                        "run `apbench run` first"]),
        "layers_bad_image_size": (["layers", "tiny_resnet", "--image-size", "-3"],
                                  ["--image-size -3 must be a positive number of pixels", "--image-size 224"]),
        "unknown_command": (["trian"], ["unknown command 'trian'", "commands: run, plan, measure, layers"]),
    }


CASE_IDS = ["unknown_dataset", "unknown_model", "unknown_method", "unknown_launcher", "misspelt_key",
            "misspelt_new_key", "wrong_type", "layer_out_of_range",
            "method_on_wrong_family", "missing_data_root", "empty_data_root", "unreadable_idx",
            "wrong_layout", "image_label_mismatch", "label_out_of_range", "class_count_mismatch", "empty_split",
            "checkpoint_wrong_architecture", "checkpoint_not_a_checkpoint",
            "results_dir_not_writable", "disk_full", "results_no_dir", "results_no_records",
            "layers_bad_image_size", "unknown_command"]
# Run as a real process too: composition, data and a non-run command as the shell sees them.
SUBPROCESS_IDS = ["unknown_dataset", "unreadable_idx", "unknown_command", "disk_full"]
SUBPROCESS_ONLY = {"disk_full"}  # RLIMIT_FSIZE would cap pytest's own files too


@pytest.fixture(scope="module")
def bad_input_dir(tmp_path_factory):
    """The cases' files (corrupt data, a wrong checkpoint, ...), written once for the module."""
    w = tmp_path_factory.mktemp("bad_input")
    cases = _cases(w)
    assert sorted(cases) == sorted(CASE_IDS)
    return w, cases


def _case(w: Path, cases: dict, cid: str, how: str):
    """A case's argv with its own root (so "no record" is checked per case), its messages, kwargs."""
    argv, expected, *extra = cases[cid]
    root = w / how / cid
    root.mkdir(parents=True)
    argv = [a.replace(f"paths.root_dir={w}", f"paths.root_dir={root}") for a in argv]
    return argv, expected, root, (extra[0] if extra else {})


def _leftovers(root: Path) -> list[Path]:
    return records_under(root) + list(root.rglob("*.tmp")) + list(root.rglob("checkpoint.pt"))


@pytest.fixture(scope="module")
def outcomes(bad_input_dir):
    w, cases = bad_input_dir

    def one(cid):
        argv, expected, root, popen = _case(w, cases, cid, "subprocess")
        return cid, (apbench(*argv, cwd=root, **popen), expected, root)

    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(one, SUBPROCESS_IDS))


@pytest.mark.parametrize("cid", SUBPROCESS_IDS)
def test_bad_input_is_refused_clearly_and_leaves_nothing(cid, outcomes, tally):
    out, expected, root = outcomes[cid]
    text = out.stdout + out.stderr
    tally.bad_inputs += 1
    missing = [e for e in expected if e not in text]
    assert out.returncode != 0, f"exit 0 on bad input:\n{text[-2000:]}"
    assert out.returncode == (1 if cid == "disk_full" else 2), text[-2000:]  # 1: the record could not be written
    assert not missing, f"message lacks {missing}:\n{text[-2000:]}"
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    assert (left := _leftovers(root)) == [], left
    tally.clear_errors += 1


@pytest.mark.parametrize("cid", [c for c in CASE_IDS if c not in SUBPROCESS_ONLY])
def test_bad_input_through_main_is_refused_before_training(cid, bad_input_dir, capsys, monkeypatch, tally):
    from apbench import cell
    w, cases = bad_input_dir
    argv, expected, root, _ = _case(w, cases, cid, "in_process")
    monkeypatch.setattr(cell, "fit", lambda *a, **k: pytest.fail("training started on bad input"))
    tally.bad_inputs += 1
    code, text = run_main(capsys, argv)
    missing = [e for e in expected if e not in text]
    assert code == 2, text[-2000:]
    assert not missing, f"message lacks {missing}:\n{text[-2000:]}"
    assert "Traceback" not in text, text[-2000:]
    assert (left := _leftovers(root)) == [], left
    tally.clear_errors += 1


@pytest.mark.parametrize("override,expected", [
    ("trainer.lr=nan", "trainer.lr=nan must be a positive number"),
    ("trainer.lr=inf", "trainer.lr=inf must be a positive number"),
    ("trainer.grad_clip=yes", "trainer.grad_clip='yes' must be a positive number"),
    ("trainer.eval_batch_size=0", "trainer.eval_batch_size=0 must be a positive integer"),
    ("trainer.num_workers=-1", "trainer.num_workers=-1 must be an integer >= 0"),
    ("dataset.format=lmdb", "dataset.format='lmdb' is not valid; choose one of: coop_split, fashion_mnist"),
])
def test_values_that_used_to_fail_only_mid_run_are_refused_up_front(override, expected, tiny_overrides):
    """In-process (cheap): these passed validation before and broke training or evaluation later."""
    from apbench.validate import ConfigError, validate
    from conftest import compose
    with pytest.raises(ConfigError, match=None) as e:
        validate(compose(*tiny_overrides, override))
    assert expected in str(e.value)


def test_missing_checkpoint_file_names_the_key_to_fix(tmp_path):
    from apbench.models.weights import WeightsError, read_state_dict
    with pytest.raises(WeightsError, match="does not exist; set model.checkpoint to an existing"):
        read_state_dict(tmp_path / "gone.pth")


# --- In-process cases (issue 16): refused before any work, exit 2, nothing written -------------------

class _Payload:
    """Unpickling this calls os.system: proof that a file's code ran (it creates ``marker``)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def _image_folder(base: Path, broken: dict[str, bytes] | None = None, classes=("cat", "dog")) -> Path:
    from data_writers import image
    for split in ("train", "test"):
        for c, cls in enumerate(classes):
            for i in range(3):
                image(base / split / cls / f"{i}.png", c, i)
    for rel, content in (broken or {}).items():
        (base / rel).write_bytes(content)
    return base


def _listed_folder(base: Path, train_lines: list[str], classes=("cat", "dog")) -> Path:
    """Layout B: ``<base>/<class>/<image>`` and list files; train.txt holds ``train_lines``."""
    from data_writers import image
    for c, cls in enumerate(classes):
        for i in range(3):
            image(base / cls / f"{i}.png", c, i)
    (base.parent / "secret.png").write_bytes((base / "cat" / "0.png").read_bytes())  # outside the dataset
    (base / "train.txt").write_text("\n".join(train_lines) + "\n")
    (base / "test.txt").write_text("cat/2.png\ndog/2.png\n")
    return base


LISTED = ["cat/0.png", "dog/0.png", "cat/1.png", "dog/1.png"]


def _crafted_cifar(w: Path) -> Path:
    """A torchvision CIFAR-10 folder whose data_batch_1 runs ``touch MARKER`` when unpickled."""
    import pickle
    from data_writers import cifar_arrays, write_cifar
    folder = write_cifar(w / "data")
    data, labels = cifar_arrays(10, 10, 0)
    (folder / "data_batch_1").write_bytes(pickle.dumps({"data": data, "labels": labels,
                                                        "batch_label": _Payload(w / "PWNED")}))
    return folder


def _in_process_cases(w: Path) -> dict:
    """id -> (argv, the messages that must appear); every ``run`` writes under its own root."""
    folders = w / "folders"
    one_class = _image_folder(folders / "one_class", classes=("cat",))
    empty_img = _image_folder(folders / "empty_image", {"train/dog/1.png": b""})
    junk_img = _image_folder(folders / "junk_image", {"train/cat/2.png": b"GIF89a? no, my notes\n"})
    lite0 = ["model=efficientnet_lite0"]
    _crafted_cifar(w)
    listed = ["dataset=image_folder", "dataset.lists={train: train.txt, test: test.txt}"]
    # With a label, no class folder is looked up: the path alone decides where the image comes from.
    dotdot = _listed_folder(folders / "dotdot" / "data", [*LISTED, "../secret.png 0"])
    absolute = _listed_folder(folders / "absolute" / "data", [*LISTED[:1], f"{folders / 'dotdot' / 'secret.png'} 1"])
    bad_label = _listed_folder(folders / "bad_label" / "data", [*LISTED[:2], "cat/1.png 7"])
    negative = _listed_folder(folders / "negative" / "data", [*LISTED[:3], "dog/1.png -1"])
    return {
        # Split lists: no file outside the dataset folder, no label outside its classes (issue 26)
        "list_path_outside": (tiny(w, *listed, f"dataset.path={dotdot}"),
                              [f"{dotdot / 'train.txt'}:5: '../secret.png' is outside the dataset folder {dotdot}",
                               "without '..' or an absolute path"]),
        "list_path_absolute": (tiny(w, *listed, f"dataset.path={absolute}"),
                               [f"{absolute / 'train.txt'}:2: '{folders / 'dotdot' / 'secret.png'}' is outside",
                                "without '..' or an absolute path"]),
        "list_label_out_of_range": (tiny(w, *listed, f"dataset.path={bad_label}"),
                                    [f"{bad_label / 'train.txt'}:3: label 7 is out of range",
                                     "2 class folders, so labels are 0..1 (cat, dog, in sorted order)"]),
        "list_label_negative": (tiny(w, *listed, f"dataset.path={negative}"),
                                [f"{negative / 'train.txt'}:4: label -1 is out of range"]),
        # Hydra's log folder under paths.root_dir (issue 26): a name too long, a parent that is no folder
        "root_dir_name_too_long": (tiny(w / ("x" * 300)), ["cannot create Hydra's log folder", "File name too long",
                                                          "set paths.log_dir (or paths.root_dir) to a folder you "
                                                          "can write"]),
        "root_dir_not_a_folder": (tiny(Path("/dev/null/apbench")),
                                  ["cannot create Hydra's log folder /dev/null/apbench/outputs/", "Not a directory",
                                   "set paths.log_dir (or paths.root_dir) to a folder you can write"]),
        "results_dir_name_too_long": (tiny(w, f"paths.results_dir={w / ('x' * 300)}"),
                                      ["is 300 bytes, over this file system's limit of 255",
                                       "give paths.results_dir shorter folder names"]),
        "image_size_zero": (tiny(w, "model.preprocessing.image_size=0"),
                            ["model.preprocessing.image_size=0 must be a positive integer"]),
        "image_size_too_small": (tiny(w, "model=tiny_convnext", "model.preprocessing.image_size=8"),
                                 ["model.preprocessing.image_size=8 does not fit convnext_atto",
                                  "Kernel size can't be greater than actual input size", "sizes it takes: 32"]),
        "seed_beyond_64_bits": (tiny(w, f"seed={2**64 + 1}"),
                                [f"seed={2**64 + 1} is out of range", "an integer from 0 to 4294967295"]),
        "momentum_not_a_number": (tiny(w, "trainer.optimizer=sgd", "trainer.momentum=abc"),
                                  ["trainer.momentum='abc' must be a number >= 0"]),
        "weights_file_without_checkpoint": (tiny(w, *lite0, "model.weights=file"),
                                            ["model.weights=file needs model.checkpoint=PATH",
                                             "or choose model.weights=hub, bundled or random"]),
        "misspelt_key_without_plus": (tiny(w, "trainer.epoch=3"),
                                      ["no key 'epoch' in trainer", "did you mean trainer.epochs?",
                                       "trainer.epochs=3"]),
        "image_folder_not_found": (tiny(w, "dataset=image_folder", f"paths.data_root={w / 'folders'}"),
                                   ["my_dataset does not exist", "set dataset.path to your image folder"]),
        "image_folder_one_class": (tiny(w, "dataset=image_folder", f"dataset.path={one_class}"),
                                   ["1 class found (cat)", "needs two classes or more"]),
        "zero_byte_image": (tiny(w, "dataset=image_folder", f"dataset.path={empty_img}"),
                            ["of the train split", "dog/1.png (an empty file, 0 bytes)",
                             "re-extract or re-download those files"]),
        "unreadable_image": (tiny(w, "dataset=image_folder", f"dataset.path={junk_img}"),
                             ["cat/2.png (UnidentifiedImageError", "re-extract or re-download those files",
                              "apbench data verify"]),
        "crafted_cifar_pickle": (tiny(w, "dataset=cifar10", f"paths.data_root={w / 'data'}",
                                      "dataset.val_fraction=0.5"),
                                 ["data_batch_1: refused, not loaded", "posix.system",
                                  "it would run code if loaded", "apbench data prepare cifar10"]),
    }


IN_PROCESS_IDS = ["results_dir_name_too_long", "image_size_zero", "image_size_too_small", "seed_beyond_64_bits",
                  "momentum_not_a_number", "weights_file_without_checkpoint", "misspelt_key_without_plus",
                  "image_folder_not_found", "image_folder_one_class", "zero_byte_image", "unreadable_image",
                  "crafted_cifar_pickle", "list_path_outside", "list_path_absolute", "list_label_out_of_range",
                  "list_label_negative", "root_dir_name_too_long", "root_dir_not_a_folder"]
QUIET = ["hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]  # no log handlers left on pytest's streams


def run_main(capsys, argv: list[str]) -> tuple[int, str]:
    from apbench.cli import main
    capsys.readouterr()
    try:
        code = main([*argv, *QUIET] if argv[0] == "run" else argv)
    except SystemExit as e:  # argparse's own refusals exit from inside main, as in the process
        code = e.code
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("cid", IN_PROCESS_IDS)
def test_bad_input_in_process_is_refused_before_any_work(cid, tmp_path, capsys, monkeypatch, tally):
    from apbench import cell
    cases = _in_process_cases(tmp_path)
    assert sorted(cases) == sorted(IN_PROCESS_IDS)
    argv, expected = cases[cid]
    root = tmp_path / "root"
    argv = [a.replace(f"paths.root_dir={tmp_path}", f"paths.root_dir={root}") for a in argv]
    monkeypatch.setattr(cell, "fit", lambda *a, **k: pytest.fail("training started on bad input"))
    tally.bad_inputs += 1
    code, text = run_main(capsys, argv)
    missing = [e for e in expected if e not in text]
    leftovers = _leftovers(tmp_path)
    assert code == 2, text[-2000:]
    assert not missing, f"message lacks {missing}:\n{text[-2000:]}"
    assert "Traceback" not in text and "+trainer.epoch" not in text, text[-2000:]
    assert leftovers == [], leftovers
    assert not (tmp_path / "PWNED").exists(), "the crafted pickle's code ran"
    tally.clear_errors += 1


def test_the_crafted_cifar_batch_is_live(tmp_path):
    """The payload above really runs when unpickled by pickle itself (so the case above tests something)."""
    import pickle
    folder = _crafted_cifar(tmp_path)
    pickle.loads((folder / "data_batch_1").read_bytes())
    assert (tmp_path / "PWNED").exists()


def test_a_sweep_cell_that_does_not_compose_is_refused_and_the_others_run(tmp_path, capsys, tally):
    """README: refused cells are reported, the others run, the sweep exits 2 listing them. Linear probing
    has no ``layers``: Hydra's sweeper refused the whole sweep for that one cell."""
    tally.bad_inputs += 1
    code, text = run_main(capsys, tiny(tmp_path, "method=ap,linear_probe", "method.layers=[2]",
                                       "trainer.measure_efficiency=false", multirun=True))
    assert code == 2, text[-2000:]
    refused = text.split("1 cell(s) of the sweep were refused")[1]
    assert "method=linear_probe method.layers=[2]" in refused and "there is no key 'layers' in method" in refused
    assert "the keys of method are: head, lr_scale, name" in refused
    [rec] = [json.loads(p.read_text()) for p in records_under(tmp_path)]
    assert (rec["method"], rec["status"], rec["layers"]) == ("ap", "ok", ["2"])
    tally.clear_errors += 1
