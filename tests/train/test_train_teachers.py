"""Teachers: spandrel releases (Restormer, official NAFNet), student checkpoints, cached outputs, tiling."""

from __future__ import annotations

import pickle

import pytest
import torch
from train_helpers import make_image

from edgesharp.edge.imaging.io import read_image, write_image
from edgesharp.train import checkpoint, models, teachers
from edgesharp.train.config import TeacherConfig
from edgesharp.train.teachers import TeacherError


def tiny_restormer():
    from spandrel_extra_arches.architectures.Restormer import Restormer

    torch.manual_seed(0)
    return Restormer(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1]).eval()


@pytest.fixture
def restormer_file(tmp_path):
    path = tmp_path / "restormer_tiny.pth"
    model = tiny_restormer()
    torch.save({"params": model.state_dict()}, path)  # the official release format
    return path, model


def test_spandrel_restormer_release_loads_and_matches_the_model(restormer_file):
    path, model = restormer_file
    teacher = teachers.build_teacher(TeacherConfig(kind="spandrel", path=str(path), tile=0))
    assert "Restormer" in teacher.name and teacher.multiple == 8
    x = torch.rand(2, 3, 24, 40)
    with torch.no_grad():
        expected = model(x).clamp(0, 1)
    torch.testing.assert_close(teacher(x), expected, rtol=1e-5, atol=1e-5)
    assert not teacher(x).requires_grad


def test_spandrel_loads_an_official_format_nafnet(tmp_path):
    path = tmp_path / "NAFNet-test.pth"
    student = models.create("nafnet-test")
    with torch.no_grad():
        for p in student.parameters():
            p.normal_(0, 0.1)
    torch.save({"params": student.state_dict()}, path)
    teacher = teachers.SpandrelTeacher(path, tile=0)
    assert "NAFNet" in teacher.name
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(teacher(x), student(x).clamp(0, 1), rtol=1e-5, atol=1e-5)


def test_spandrel_teacher_refuses_pickled_code_and_unknown_files(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(b"")
    torch.save({"params": Payload()}, evil, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(TeacherError, match="evil.pth: cannot be loaded safely"):
        teachers.SpandrelTeacher(evil)
    odd = tmp_path / "odd.pth"
    torch.save({"params": {"foo.weight": torch.zeros(3)}}, odd)
    with pytest.raises(TeacherError, match="odd.pth: spandrel does not recognise"):
        teachers.SpandrelTeacher(odd)
    with pytest.raises(TeacherError, match="nothing.pth: teacher checkpoint not found"):
        teachers.SpandrelTeacher(tmp_path / "nothing.pth")


def test_tiled_inference_matches_whole_image_inference(restormer_file):
    path, _ = restormer_file
    x = torch.rand(1, 3, 70, 90)
    whole = teachers.SpandrelTeacher(path, tile=0)(x)
    tiled_teacher = teachers.SpandrelTeacher(path, tile=48, overlap=16)
    tiled = tiled_teacher(x)
    assert tiled.shape == x.shape
    # attention over whole tiles makes tiling inexact; the blend keeps it close and seam-free
    assert (tiled - whole).abs().mean() < 0.02
    # for a local operator (3x3 convolutions, receptive field < overlap) tiling is exact
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.Conv2d(3, 3, 3, padding=1))
    with torch.no_grad():
        torch.testing.assert_close(teachers.tiled_apply(conv, x, tile=32, overlap=12),
                                   conv(x), rtol=1e-4, atol=1e-5)


def test_student_checkpoint_as_teacher(tmp_path):
    big = models.create("nafnet-test", width=12)
    with torch.no_grad():
        for p in big.parameters():
            p.normal_(0, 0.05)
    path = checkpoint.save_checkpoint(tmp_path / "big.pt", big, step=5)
    teacher = teachers.build_teacher(TeacherConfig(kind="student", path=str(path), tile=16, overlap=4))
    assert "nafnet-test" in teacher.name and "step 5" in teacher.name
    x = torch.rand(1, 3, 15, 21)  # odd size: padded to the size multiple inside, cropped back
    y = teacher(x)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1


def test_cache_teacher_writes_once_and_serves_by_key(restormer_file, gopro_root, tmp_path):
    path, model = restormer_file
    teacher = teachers.SpandrelTeacher(path, tile=0)
    out = tmp_path / "cache"
    stats = teachers.cache_teacher_outputs(teacher, gopro_root, out, progress=False)
    assert stats == {"inputs": 6, "written": 6, "skipped": 0}
    assert sorted(p.stem for p in out.glob("*.png"))[0] == "scene0__000000"
    again = teachers.cache_teacher_outputs(teacher, gopro_root, out, progress=False)
    assert again == {"inputs": 6, "written": 0, "skipped": 6}

    cached = teachers.build_teacher(TeacherConfig(kind="cache", path=str(out)))
    blur = read_image(gopro_root / "scene1" / "blur" / "000002.png")
    x = torch.from_numpy(blur).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        live = model(x).clamp(0, 1)
    got = cached(x, ["scene1__000002"])
    assert (got - live).abs().max() <= 1 / 255 + 1e-6  # 8-bit rounding only
    with pytest.raises(TeacherError, match="no cached teacher output for 'nope'"):
        cached(x, ["nope"])
    with pytest.raises(TeacherError, match="teacher cache folder not found"):
        teachers.CachedTeacher(tmp_path / "missing")


def test_cache_teacher_on_a_plain_folder_uses_stems(tmp_path, restormer_file):
    path, _ = restormer_file
    for i in range(2):
        write_image(tmp_path / "lq" / f"frame{i}.png", make_image(24, 32, i))
    stats = teachers.cache_teacher_outputs(teachers.SpandrelTeacher(path), tmp_path / "lq", tmp_path / "t", progress=False)
    assert stats["written"] == 2 and (tmp_path / "t" / "frame1.png").is_file()
