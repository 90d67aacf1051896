"""`ldlpose predict` on whole photos: two real AFLW2000 faces side by side give two results where
their landmarks are, a flat picture says it has none, an unreadable file is reported and the rest
go on; faces are cropped with the model's own training crop; --no-detect keeps the crop behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from realfaces import AFLW, SKIP_REASON, iou, landmark_box, pt3d_68

from ldlpose.cli import main
from ldlpose.data import crops

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not AFLW.is_dir(), reason=SKIP_REASON)]
SIZE = 64
PAIR = ("image00050.jpg", "image00475.jpg")  # yaw 1 and 66 degrees (the second also pitched up 40)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A random-init checkpoint whose training data is not on this machine: no crop recorded."""
    from ldlpose import methods
    from ldlpose.config import run_config_from_dict
    from ldlpose.models import build_model

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("ckpt")
    run = run_config_from_dict({"name": "tiny", "method": {"name": "gldl"},
                                "model": {"backbone": "resnet18", "weights": "none"},
                                "data": {"root": str(directory / "absent"), "image_size": SIZE}})
    net = build_model(methods.create("gldl"), "resnet18", "none")
    torch.save({"model": net.state_dict(), "run": run.to_dict(), "metrics": {}, "epoch": 0},
               directory / "checkpoint.pt")
    return directory


@pytest.fixture(scope="module")
def pair_photo(tmp_path_factory) -> Path:
    """The two pictures side by side on one canvas (each 450 x 450)."""
    left, right = (Image.open(AFLW / name).convert("RGB") for name in PAIR)
    canvas = Image.new("RGB", (left.width + right.width, max(left.height, right.height)))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    path = tmp_path_factory.mktemp("photos") / "pair.png"
    canvas.save(path)
    return path


def predict_json(capsys, *argv) -> tuple[int, dict, str]:
    capsys.readouterr()
    status = main(["predict", *map(str, argv), "--json"])
    captured = capsys.readouterr()
    return status, json.loads(captured.out), captured.err


def test_two_faces_side_by_side_give_two_results_where_their_landmarks_are(checkpoint, pair_photo, capsys,
                                                                           tmp_path):
    status, out, _ = predict_json(capsys, pair_photo, "--model", checkpoint, "--draw", tmp_path)
    assert status == 0 and out["detector"] == "mtcnn"
    (photo,) = out["predictions"]
    faces = photo["faces"]
    assert len(faces) == 2
    width = Image.open(AFLW / PAIR[0]).width
    truth = [landmark_box(AFLW / PAIR[0]), tuple(np.add(landmark_box(AFLW / PAIR[1]), [width, 0, width, 0]))]
    overlaps = [max(iou(face["box"], box) for face in faces) for box in truth]
    assert min(overlaps) >= 0.5, overlaps
    for face in faces:
        assert face["score"] > 0.9
        assert all(np.isfinite(face[k]) and abs(face[k]) <= 180 for k in ("yaw_deg", "pitch_deg", "roll_deg"))
    drawn = np.asarray(Image.open(tmp_path / "pair.pose.png"))
    assert drawn.shape == np.asarray(Image.open(pair_photo)).shape
    from ldlpose.report.drawing import BOX_COLOUR

    boxed = (drawn == np.array(BOX_COLOUR, dtype=np.uint8)).all(axis=-1)
    assert boxed[:, :width].any() and boxed[:, width:].any()  # one box drawn on each half


def test_each_face_is_predicted_on_the_crop_of_the_models_recipe(checkpoint, pair_photo, capsys):
    """The angles printed for a face are the model's angles on that face cut with the fallback recipe."""
    from ldlpose.deploy.photos import face_input
    from ldlpose.evaluation.harness import load_model

    _, out, _ = predict_json(capsys, pair_photo, "--model", checkpoint)
    assert out["crop"]["recipe"] == crops.hopenet_300wlp().name and "records no training crop" in out["crop"]["why"]
    model = load_model(str(checkpoint))
    picture = Image.open(pair_photo).convert("RGB")
    for face in out["predictions"][0]["faces"]:
        expected = model.predict(face_input(picture, face["box"], crops.hopenet_300wlp(), SIZE)[None])[0]
        got = [face["yaw_deg"], face["pitch_deg"], face["roll_deg"]]
        np.testing.assert_allclose(got, expected, atol=2e-3)  # printed to 3 decimals, boxes to 1


def test_a_picture_without_a_face_says_so_and_an_unreadable_one_is_reported(checkpoint, pair_photo, tmp_path,
                                                                            capsys):
    flat = tmp_path / "flat.png"
    Image.new("RGB", (320, 240), (90, 140, 200)).save(flat)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
    missing = tmp_path / "missing.png"
    status, out, err = predict_json(capsys, broken, flat, missing, pair_photo, "--model", checkpoint)
    assert status == 1
    results = {Path(r["image"]).name: r for r in out["predictions"]}
    assert list(results) == ["broken.jpg", "flat.png", "missing.png", "pair.png"]  # in the order given
    assert results["flat.png"]["faces"] == []
    assert len(results["pair.png"]["faces"]) == 2  # the others went on
    for name in ("broken.jpg", "missing.png"):
        assert f"cannot read image {tmp_path / name}" in results[name]["error"]
        assert f"ldlpose predict: error: cannot read image {tmp_path / name}" in err
    assert main(["predict", str(flat), str(pair_photo), "--model", str(checkpoint)]) == 0
    text = capsys.readouterr().out
    assert f"{flat}: no face found" in text
    assert len([line for line in text.splitlines() if line.startswith(str(pair_photo))]) == 2


def test_no_detect_treats_each_picture_as_a_face_crop_as_before(checkpoint, capsys):
    """--no-detect gives what the crop path always gave: the model on the centred square."""
    from ldlpose.inference.predictor import load_image, predictor_from_checkpoint, preprocess

    paths = [AFLW / name for name in PAIR]
    status, out, _ = predict_json(capsys, *paths, "--model", checkpoint, "--no-detect")
    assert status == 0 and out["detector"] is None and out["crop"] is None
    predictor, _ = predictor_from_checkpoint(checkpoint)
    with torch.no_grad():
        expected = predictor(preprocess([load_image(p) for p in paths], SIZE)).numpy()
    for record, angles in zip(out["predictions"], expected):
        (face,) = record["faces"]
        assert face["box"] == [0.0, 0.0, 450.0, 450.0] and face["score"] is None
        np.testing.assert_allclose([face["yaw_deg"], face["pitch_deg"], face["roll_deg"]], angles, atol=1e-3)


def test_a_models_recorded_crop_recipe_is_the_one_used():
    """Manifest crops map to their recipes; ones not defined on a face box fall back and say why."""
    from ldlpose.deploy.photos import crop_recipe

    for recipe in (crops.hopenet_300wlp(), crops.hopenet_aflw2000(), crops.fsanet_type1(), crops.rankpose_aflw2000()):
        assert crop_recipe({"crop": recipe.as_dict()}) == (recipe, f"the training crop {recipe.name}")
        assert crop_recipe({"preprocessing": {"crop": recipe.as_dict()}})[0] == recipe  # an ONNX description
    fallback, why = crop_recipe({"crop": {"name": "synthhead-full-image", "box": "the whole rendered image"}})
    assert fallback == crops.hopenet_300wlp() and "'synthhead-full-image' is not defined on a face box" in why
    assert crop_recipe({"crop": None})[0] == crops.hopenet_300wlp()


def test_a_detected_face_cut_with_rankposes_recipe_matches_rankposes_own_crop():
    """On a real picture, the recipe applied to the detector's box lands where the recipe applied to
    the landmarks does: the crop the model saw in training."""
    from ldlpose.deploy.detect import FaceDetector
    from ldlpose.deploy.photos import face_crop

    recipe = crops.rankpose_aflw2000()
    overlaps = []
    for name in PAIR:
        picture = Image.open(AFLW / name).convert("RGB")
        (face,) = FaceDetector().detect(np.asarray(picture))
        _, box = face_crop(picture, face.box, recipe)
        overlaps.append(iou(box, recipe.box(pt3d_68(AFLW / name))))
    assert min(overlaps) >= 0.5, overlaps


def test_a_model_trained_on_rankpose_crops_is_fed_rankpose_crops_through_checkpoint_and_onnx(tmp_path, capsys):
    """The recipe travels from the training data's manifest into the checkpoint's info and the ONNX
    description, and predict crops with it."""
    from ldlpose import methods
    from ldlpose.config import run_config_from_dict
    from ldlpose.models import build_model

    root = tmp_path / "data"
    assert main(["prepare", "aflw2000", "--crop", "rankpose", "--source", str(AFLW), "--data-root", str(root),
                 "--workers", "1"]) == 0
    (train,) = [p.parent.relative_to(root) for p in root.rglob("_manifest.json")]
    run = run_config_from_dict({"name": "tiny", "method": {"name": "gldl"},
                                "model": {"backbone": "resnet18", "weights": "none"},
                                "data": {"root": str(root), "train": str(train), "val": None, "image_size": SIZE}})
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    torch.save({"model": build_model(methods.create("gldl"), "resnet18", "none").state_dict(),
                "run": run.to_dict(), "metrics": {}, "epoch": 0}, checkpoint / "checkpoint.pt")
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "m.onnx")]) == 0
    photo = AFLW / PAIR[0]
    answers = []
    for model in (checkpoint, tmp_path / "m.onnx"):
        status, out, _ = predict_json(capsys, photo, "--model", model)
        assert status == 0
        assert out["crop"] == {"recipe": "rankpose-aflw2000-test", "why": "the training crop rankpose-aflw2000-test"}
        (face,) = out["predictions"][0]["faces"]
        answers.append([face["yaw_deg"], face["pitch_deg"], face["roll_deg"]])
    np.testing.assert_allclose(answers[0], answers[1], atol=1e-3)
