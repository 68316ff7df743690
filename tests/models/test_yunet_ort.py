"""YuNet on onnxruntime (weights folded in memory): OpenCV's detections, on real photos, at any size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from faceledger import Recognizer  # noqa: E402
from faceledger._cv import cv2  # noqa: E402
from faceledger.errors import ConfigError  # noqa: E402
from faceledger.models import sface_ort, yunet_sface  # noqa: E402
from faceledger.models.base import DetectOptions  # noqa: E402
from faceledger.models.yunet_ort import OrtYuNet  # noqa: E402
from faceledger.models.yunet_sface import YUNET, YuNetDetector  # noqa: E402


@pytest.fixture(scope="module")
def yunet_bytes() -> bytes:
    return YUNET.verified_bytes()[1]


@pytest.fixture(scope="module")
def ort_yunet(yunet_bytes: bytes) -> OrtYuNet:
    return OrtYuNet(yunet_bytes, threads=1)


def _opencv_rows(yunet_bytes: bytes, bgr: np.ndarray) -> np.ndarray:
    h, w = bgr.shape[:2]
    net = cv2.FaceDetectorYN.create("onnx", np.frombuffer(yunet_bytes, np.uint8), np.empty(0, np.uint8),
                                    (w, h), 0.3, 0.3, 5000)
    _, rows = net.detect(bgr)
    return np.zeros((0, 15), np.float32) if rows is None else rows


def _by_score(rows: np.ndarray) -> np.ndarray:
    return rows[np.lexsort((rows[:, 0], -rows[:, 14]))]


@pytest.mark.parametrize("name", ["ultralight_11.jpg", "retinaface_img3.jpg", "deface_city.jpg",
                                  "facenetpytorch_multiface.jpg"])
@pytest.mark.parametrize("size", [None, (333, 251), (640, 480), (97, 61)])
def test_rows_equal_opencv_on_group_photos(yunet_bytes, ort_yunet, groups: Path, name: str, size):
    bgr = cv2.imread(str(groups / name))
    if size is not None:  # sizes that are not multiples of 32, so the padding is exercised
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    ours, theirs = ort_yunet.detect(bgr), _opencv_rows(yunet_bytes, bgr)
    assert ours.dtype == np.float32 and ours.shape[1] == 15
    assert len(ours) == len(theirs), f"{name} {bgr.shape}: {len(ours)} rows against OpenCV's {len(theirs)}"
    if len(ours):
        diff = np.abs(_by_score(ours) - _by_score(theirs))
        assert diff[:, :14].max() < 0.02, "boxes and landmarks within 0.02 px"
        assert diff[:, 14].max() < 1e-4, "scores"
    if size is None:
        assert len(ours) >= 5  # every photo here holds several faces the detector finds


def test_rows_equal_opencv_on_lfw_portraits(yunet_bytes, ort_yunet, lfw: Path):
    photos = sorted(lfw.glob("A*/*_0001.jpg"))[:12]
    assert len(photos) == 12
    for photo in photos:
        bgr = cv2.imread(str(photo))
        ours, theirs = _by_score(ort_yunet.detect(bgr)), _by_score(_opencv_rows(yunet_bytes, bgr))
        assert len(ours) == len(theirs) >= 1, photo.name
        assert np.abs(ours - theirs).max() < 0.02, photo.name


def test_degenerate_inputs(ort_yunet):
    for shape in [(1, 1, 3), (31, 33, 3), (32, 32, 3), (2000, 7, 3)]:
        rows = ort_yunet.detect(np.zeros(shape, np.uint8))
        assert rows.shape == (0, 15)
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert ort_yunet.detect(noise).shape[1] == 15


def test_default_detector_runs_on_onnxruntime_and_opencv_on_request(groups: Path, yunet_bytes):
    rgb = cv2.cvtColor(cv2.imread(str(groups / "ultralight_10.jpg")), cv2.COLOR_BGR2RGB)
    opts = DetectOptions()
    default, opencv = yunet_sface.load_detector(), YuNetDetector(yunet_bytes, runtime="opencv")
    assert default.runtime == "onnxruntime" and opencv.runtime == "opencv"
    a, b = default.detect(rgb, opts), opencv.detect(rgb, opts)
    assert len(a) == len(b) >= 15
    assert np.abs(a.boxes - b.boxes).max() < 0.02 and np.abs(a.scores - b.scores).max() < 1e-4
    with pytest.raises(ConfigError, match="unknown YuNet runtime"):
        YuNetDetector(yunet_bytes, runtime="tensorflow")


def test_templates_equal_with_either_runtime(monkeypatch, lfw: Path):
    photos = [lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg", lfw / "Abdullah_Gul" / "Abdullah_Gul_0001.jpg"]
    ort_backend = yunet_sface.load()
    ocv_backend = yunet_sface.load(yunet_runtime="opencv")
    assert ort_backend.info.runtime.endswith("YuNet and SFace")
    assert ocv_backend.info.runtime.startswith("OpenCV") and ocv_backend.info.runtime.endswith("(SFace)")
    for photo in photos:
        a, b = Recognizer(ort_backend).template(photo), Recognizer(ocv_backend).template(photo)
        assert float(a.vector @ b.vector) >= 0.99999, photo.name
    monkeypatch.setattr(sface_ort, "available", lambda: False)
    assert yunet_sface.load_detector().runtime == "opencv"


def test_a_large_input_gives_its_buffers_back(ort_yunet):
    import resource

    big = np.zeros((2400, 3200, 3), np.uint8)  # over the detector's cached-size bound
    for _ in range(5):  # the session settles its memory plan for the small size
        ort_yunet.detect(big[:480, :640])
    before = _rss_mb()
    ort_yunet.detect(big, release=True)
    after = _rss_mb()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Without release the arena keeps ~250 MB of this input's buffers.
    assert after - before < 50, f"kept {after - before:.0f} MB after a released run (peak {peak:.0f} MB)"


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_kept_input_buffers_never_carry_one_image_into_the_next(yunet_bytes, groups: Path):
    """The float input is kept per thread and size: a second image of the same size, or one of a size
    with the same padding but fewer rows (the rows between must be zero again), gives OpenCV's rows."""
    det = OrtYuNet(yunet_bytes, threads=1)
    a = cv2.resize(cv2.imread(str(groups / "ultralight_11.jpg")), (640, 352))
    b = cv2.resize(cv2.imread(str(groups / "retinaface_img3.jpg")), (640, 352))
    for img in (a, b, a[:337], b[:350], np.ascontiguousarray(b[:, ::-1]), b[5:300:1, 10:600]):
        ours, theirs = _by_score(det.detect(img)), _by_score(_opencv_rows(yunet_bytes, np.ascontiguousarray(img)))
        assert len(ours) == len(theirs) and (len(ours) == 0 or np.abs(ours - theirs).max() < 0.02)
        rgb = np.ascontiguousarray(img[:, :, ::-1])
        assert np.array_equal(_by_score(det.detect(rgb, rgb=True)), ours)  # RGB input, same rows
    for side in range(100, 1000, 50):  # many sizes: a bounded number of buffers is kept
        det.detect(np.zeros((side, side + 7, 3), np.uint8))
    assert len(det._local.buffers) <= 4
    det.detect(np.zeros((1100, 2000, 3), np.uint8))  # over 1920x1088: used once, not kept
    assert (1100, 2000) not in det._local.buffers


def test_threads_sharing_one_detector_each_get_their_own_rows(yunet_bytes, groups: Path):
    from concurrent.futures import ThreadPoolExecutor

    det = OrtYuNet(yunet_bytes, threads=1)
    images = [cv2.resize(cv2.imread(str(groups / n)), (640, 480)) for n in
              ("ultralight_10.jpg", "ultralight_11.jpg", "retinaface_img3.jpg", "facenetpytorch_multiface.jpg")]
    expected = [_by_score(det.detect(img)) for img in images]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda img: _by_score(det.detect(img)), images * 3))
            for i, rows in enumerate(got):
                assert np.array_equal(rows, expected[i % 4])
