"""The bundled EfficientNet-Lite0 carries the real ImageNet-1k weights (not a random init)."""
import pytest
import torch
from PIL import Image

from apbench.models.factory import build_model
from apbench.models.weights import WeightsError, load_into, read_state_dict

LITE0 = {"name": "tf_efficientnet_lite0", "weights": "bundled", "bundled": "efficientnet_lite0_in1k"}


def test_bundled_lite0_recognises_a_real_photo():
    skimage = pytest.importorskip("skimage.data")
    built = build_model(LITE0)
    assert built.preprocessing["input_size"] == (3, 224, 224)
    assert built.preprocessing["mean"] == (0.5, 0.5, 0.5)       # the TF-ported Lite0's own normalization
    # The model's own ImageNet evaluation transform (resize, centre crop 0.875, normalize), as timm builds it.
    from timm.data import create_transform
    x = create_transform(**built.preprocessing)(Image.fromarray(skimage.chelsea())).unsqueeze(0)
    with torch.no_grad():
        top5 = built.model.eval()(x).topk(5).indices[0].tolist()
    assert top5[0] == 282                                         # ImageNet class 282: "tiger cat"
    assert set(top5[:3]) <= {281, 282, 285}                       # tabby, tiger cat, Egyptian cat


def test_checkpoint_file_of_another_architecture_is_refused(tmp_path):
    import timm
    path = tmp_path / "resnet.pth"
    torch.save(timm.create_model("resnet18", num_classes=10).state_dict(), path)
    with pytest.raises(WeightsError, match="do not fit EfficientNet .*check that model.name is the architecture"):
        build_model({"name": "tf_efficientnet_lite0", "weights": "file", "checkpoint": str(path)})


def test_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="is not a loadable PyTorch checkpoint"):
        read_state_dict(path)


def test_checkpoint_round_trip_through_model_weights_file(tmp_path):
    import timm
    src = timm.create_model("resnet18", num_classes=10, layers=[1, 1, 1, 1])
    torch.save({"state_dict": src.state_dict()}, tmp_path / "ok.pth")     # a training-checkpoint wrapper
    built = build_model({"name": "resnet18", "weights": "file", "checkpoint": str(tmp_path / "ok.pth"),
                         "kwargs": {"num_classes": 10, "layers": [1, 1, 1, 1]}})
    for (n, a), (_, b) in zip(src.state_dict().items(), built.model.state_dict().items()):
        assert torch.equal(a, b), n
