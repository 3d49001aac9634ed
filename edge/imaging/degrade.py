"""The degradation protocol: evaluation blur levels, the seed's training subsets 1, 3, 5 and 7, 9 (nearly
sharp) and 11 (a webcam: dim or gamma-shifted scene, mild optical and motion blur, sensor noise, 4:2:0
chroma, MJPEG).

"Bicubic f" resizes down by factor f and back up, both bicubic; a Gaussian blur of sigma s follows.
Evaluation levels draw their per-image parameters from an RNG seeded by (seed, level, image name), so
every run scores the same blurred inputs. Training subsets draw from a caller-supplied Generator.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from edgesharp.edge.imaging.io import check_frame


@dataclass(frozen=True)
class BlurLevel:
    factor: tuple[float, float]
    sigma: tuple[float, float]


LEVELS: dict[str, BlurLevel] = {
    "heavy": BlurLevel(factor=(1.7, 2.2), sigma=(1.2, 1.5)),
    "medium": BlurLevel(factor=(1.5, 1.5), sigma=(0.8, 0.8)),
    "low": BlurLevel(factor=(1.2, 1.2), sigma=(0.4, 0.4)),
}


def bicubic_blur(img: np.ndarray, factor: float, sigma: float) -> np.ndarray:
    """Bicubic down by `factor` and back up to the original size, then Gaussian blur of `sigma`."""
    h, w = img.shape[:2]
    out = img
    if factor > 1.0:
        small = (max(1, round(w / factor)), max(1, round(h / factor)))
        out = cv2.resize(img, small, interpolation=cv2.INTER_CUBIC)
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
    if sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    return out


def level_rng(name: str, level: str, seed: int = 0) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{level}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def level_params(name: str, level: str, seed: int = 0) -> dict[str, float]:
    """The blur parameters image `name` gets at `level`: the same on every run for the same seed."""
    if level not in LEVELS:
        raise ValueError(f"unknown blur level {level!r}; choose one of {', '.join(LEVELS)}")
    spec = LEVELS[level]
    rng = level_rng(name, level, seed)
    return {"factor": float(rng.uniform(*spec.factor)), "sigma": float(rng.uniform(*spec.sigma))}


def degrade_level(img: np.ndarray, level: str, name: str, seed: int = 0) -> tuple[np.ndarray, dict[str, float]]:
    """Blur a sharp uint8 HxWx3 image at an evaluation level; returns the image and its parameters."""
    check_frame(img, name)
    params = level_params(name, level, seed)
    return bicubic_blur(img, params["factor"], params["sigma"]), params


def jpeg(img: np.ndarray, quality: int, color: str = "rgb") -> np.ndarray:
    """JPEG round trip at `quality` (colour order matters for chroma subsampling)."""
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if color == "rgb" else img
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV failed to JPEG-encode a frame")
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB) if color == "rgb" else out


def add_noise(img: np.ndarray, rng: np.random.Generator, kind: str, strength: float) -> np.ndarray:
    """Gaussian noise of std `strength` (8-bit units), or Poisson noise with `strength` photons per unit."""
    x = img.astype(np.float32)
    if kind == "gaussian":
        x = x + rng.normal(0.0, strength, x.shape).astype(np.float32)
    elif kind == "poisson":
        x = rng.poisson(np.maximum(x, 0) * strength / 255.0).astype(np.float32) * 255.0 / strength
    else:
        raise ValueError(f"unknown noise kind {kind!r}")
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def gamma(img: np.ndarray, g: float) -> np.ndarray:
    """Tone curve 255 * (x / 255) ** g (g > 1: darker mid-tones, as an auto-exposure that underexposes)."""
    if not g > 0:
        raise ValueError(f"gamma must be > 0, got {g}")
    lut = np.clip(np.round(255.0 * (np.arange(256) / 255.0) ** g), 0, 255).astype(np.uint8)
    return lut[img]


def sensor_noise(img: np.ndarray, rng: np.random.Generator, shot: float, read: float) -> np.ndarray:
    """Signal-dependent noise of a camera sensor: variance shot * x + read ** 2 (x and read in 8-bit units),
    drawn per pixel and channel. shot 0.1 with read 1 gives std 3.7 at mid-grey, a webcam in a lit room."""
    if shot < 0 or read < 0:
        raise ValueError(f"sensor noise needs shot >= 0 and read >= 0, got {shot}, {read}")
    x = img.astype(np.float32)
    std = np.sqrt(shot * x + read * read)
    x += rng.standard_normal(x.shape, dtype=np.float32) * std
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def chroma_420(img: np.ndarray) -> np.ndarray:
    """4:2:0 chroma: Cb and Cr kept at half resolution in each direction (area) and brought back (bilinear),
    as a camera's YUV 4:2:0 stream (NV12, I420) delivers them. The image's colour order does not matter."""
    h, w = img.shape[:2]
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    small = cv2.resize(ycc[..., 1:], (max(1, (w + 1) // 2), max(1, (h + 1) // 2)), interpolation=cv2.INTER_AREA)
    ycc[..., 1:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised, antialiased line kernel `length` pixels long at `angle` degrees: points along the line
    splatted bilinearly, so its end pixels weigh less than a box of `length` would give them."""
    if length < 1:
        raise ValueError(f"motion blur length must be >= 1 pixel, got {length}")
    half = int(np.ceil((length - 1) / 2))
    size = 2 * half + 1
    k = np.zeros((size, size), np.float32)
    steps = max(2, int(np.ceil(length * 4)))
    t = np.linspace(-(length - 1) / 2, (length - 1) / 2, steps)
    rad = np.deg2rad(angle)
    for x, y in zip(half + t * np.cos(rad), half - t * np.sin(rad), strict=True):
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                if 0 <= y0 + dy < size and 0 <= x0 + dx < size:
                    k[y0 + dy, x0 + dx] += wx * wy
    return k / k.sum()


def motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    """Linear motion blur: a hand or head moving `length` pixels at `angle` degrees during the exposure."""
    if length <= 1:
        return img.copy()
    return cv2.filter2D(img, -1, motion_kernel(length, angle), borderType=cv2.BORDER_REFLECT_101)


@dataclass(frozen=True)
class Subset:
    """A training degradation recipe; ranges are sampled uniformly per image."""

    name: str
    factor: tuple[float, float]
    sigma: tuple[float, float]
    jpeg_quality: tuple[int, int] | None = None
    jpeg_prob: float = 1.0
    gaussian_noise: tuple[float, float] | None = None
    poisson_scale: tuple[float, float] | None = None
    noise_prob: float = 1.0
    extra_downscale: tuple[float, float] | None = None
    extra_downscale_prob: float = 0.0
    shuffle_order: bool = False
    # one severity t ~ U(0, 1) places both factor and sigma at t along their ranges (each jittered by up to
    # +-jitter), so nearly sharp and heavily blurred inputs are equally common, as in the evaluation levels;
    # independent draws make a low-level-like pair (both mild) a few percent of the samples
    coupled: bool = False
    jitter: float = 0.12
    # webcam steps (subset 11): a scene change applied to the ground truth too (exposure gain or gamma, even
    # odds), linear motion blur, signal-dependent sensor noise (instead of the Gaussian/Poisson noise above),
    # 4:2:0 chroma; each with its probability
    scene_prob: float = 0.0
    scene_exposure: tuple[float, float] = (0.35, 1.0)
    scene_gamma: tuple[float, float] = (0.8, 1.6)
    motion_length: tuple[float, float] | None = None
    motion_prob: float = 0.0
    sensor_shot: tuple[float, float] | None = None
    sensor_read: tuple[float, float] = (0.5, 2.5)
    sensor_prob: float = 0.0
    chroma_prob: float = 0.0


SUBSETS: dict[int, Subset] = {
    # 1: heavy blur + JPEG, the seed's first phase.
    1: Subset("heavy blur + JPEG", factor=(1.7, 2.2), sigma=(1.2, 1.5), jpeg_quality=(40, 90)),
    # 3: the whole blur range from low to heavy, clean.
    3: Subset("mixed blur", factor=(1.1, 2.2), sigma=(0.3, 1.5), coupled=True),
    # 5: mixed blur, then noise and JPEG as a camera pipeline adds them.
    5: Subset(
        "mixed blur + JPEG + noise",
        factor=(1.1, 2.2),
        sigma=(0.3, 1.5),
        jpeg_quality=(50, 95),
        gaussian_noise=(1.0, 6.0),
        poisson_scale=(60.0, 255.0),
        coupled=True,
    ),
    # 7: complex: mixed blur, an optional extra downscale, noise and JPEG in a random order, each optional.
    7: Subset(
        "complex",
        factor=(1.0, 2.4),
        sigma=(0.2, 1.6),
        jpeg_quality=(35, 95),
        jpeg_prob=0.7,
        gaussian_noise=(0.5, 8.0),
        poisson_scale=(40.0, 255.0),
        noise_prob=0.7,
        extra_downscale=(1.1, 1.6),
        extra_downscale_prob=0.3,
        shuffle_order=True,
    ),
    # 9: nearly sharp, clean: from untouched frames up to just past the low evaluation level (f 1.2, s 0.4),
    # to teach a student to leave sharp frames alone (not one of the seed's subsets).
    9: Subset("nearly sharp", factor=(1.0, 1.25), sigma=(0.0, 0.45)),
    # 11: a webcam frame: a dim or gamma-shifted scene (the target changes with it: brightening is not asked
    # for), mild focus blur from nearly sharp to medium, a little motion blur, sensor noise at webcam levels
    # (std about 0.5-7.6 at mid-grey), YUV 4:2:0 chroma, and MJPEG compression as USB webcams deliver 720p.
    11: Subset(
        "webcam",
        factor=(1.0, 1.8),
        sigma=(0.0, 1.0),
        coupled=True,
        jpeg_quality=(55, 95),
        jpeg_prob=0.6,
        scene_prob=0.4,
        motion_length=(1.0, 4.0),
        motion_prob=0.3,
        sensor_shot=(0.0, 0.4),
        sensor_prob=0.8,
        chroma_prob=0.5,
    ),
}


def degrade_subset(
    img: np.ndarray, subset: int, rng: np.random.Generator, color: str = "rgb"
) -> tuple[np.ndarray, dict]:
    """Degrade a sharp uint8 HxWx3 image with training subset 1, 3, 5 or 7; returns image and parameters."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown training subset {subset!r}; choose one of {sorted(SUBSETS)}")
    check_frame(img, f"subset {subset} input")
    spec = SUBSETS[subset]
    params: dict = {"subset": subset, "steps": []}

    def blur(x: np.ndarray) -> np.ndarray:
        if spec.coupled:
            t = rng.uniform()
            at = [min(max(t + rng.uniform(-spec.jitter, spec.jitter), 0.0), 1.0) for _ in range(2)]
            f = spec.factor[0] + at[0] * (spec.factor[1] - spec.factor[0])
            s = spec.sigma[0] + at[1] * (spec.sigma[1] - spec.sigma[0])
        else:
            f, s = float(rng.uniform(*spec.factor)), float(rng.uniform(*spec.sigma))
        params.update(factor=f, sigma=s)
        return bicubic_blur(x, f, s)

    def extra(x: np.ndarray) -> np.ndarray:
        f = float(rng.uniform(*spec.extra_downscale))
        params["extra_downscale"] = f
        return bicubic_blur(x, f, 0.0)

    def noise(x: np.ndarray) -> np.ndarray:
        if spec.poisson_scale and (not spec.gaussian_noise or rng.random() < 0.5):
            scale = float(rng.uniform(*spec.poisson_scale))
            params["noise"] = {"kind": "poisson", "scale": scale}
            return add_noise(x, rng, "poisson", scale)
        std = float(rng.uniform(*spec.gaussian_noise))
        params["noise"] = {"kind": "gaussian", "std": std}
        return add_noise(x, rng, "gaussian", std)

    def compress(x: np.ndarray) -> np.ndarray:
        q = int(rng.integers(spec.jpeg_quality[0], spec.jpeg_quality[1] + 1))
        params["jpeg_quality"] = q
        return jpeg(x, q, color)

    def motion(x: np.ndarray) -> np.ndarray:
        length, angle = float(rng.uniform(*spec.motion_length)), float(rng.uniform(0.0, 180.0))
        params["motion"] = {"length": length, "angle": angle}
        return motion_blur(x, length, angle)

    def sensor(x: np.ndarray) -> np.ndarray:
        shot, read = float(rng.uniform(*spec.sensor_shot)), float(rng.uniform(*spec.sensor_read))
        params["sensor_noise"] = {"shot": shot, "read": read}
        return sensor_noise(x, rng, shot, read)

    def chroma(x: np.ndarray) -> np.ndarray:
        return chroma_420(x) if color == "rgb" else chroma_420(x[..., ::-1])[..., ::-1].copy()

    steps = [("blur", blur)]
    if spec.motion_length and rng.random() < spec.motion_prob:
        steps.append(("motion", motion))
    if spec.extra_downscale and rng.random() < spec.extra_downscale_prob:
        steps.append(("extra_downscale", extra))
    if (spec.gaussian_noise or spec.poisson_scale) and rng.random() < spec.noise_prob:
        steps.append(("noise", noise))
    if spec.sensor_shot and rng.random() < spec.sensor_prob:
        steps.append(("sensor_noise", sensor))
    if spec.chroma_prob and rng.random() < spec.chroma_prob:
        steps.append(("chroma_420", chroma))
    if spec.jpeg_quality and rng.random() < spec.jpeg_prob:
        steps.append(("jpeg", compress))
    if spec.shuffle_order:
        order = rng.permutation(len(steps))
        steps = [steps[i] for i in order]
    out = img
    for name, fn in steps:
        out = fn(out)
        params["steps"].append(name)
    return out, params


def degrade_pair(
    img: np.ndarray, subset: int, rng: np.random.Generator, color: str = "rgb"
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(target, degraded input, parameters) of a training pair from a sharp uint8 image. A subset with a
    scene change (11) first makes the scene dimmer or changes its tone curve, in the target as in the input;
    other subsets return `img` itself as the target and draw exactly what `degrade_subset` draws."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown training subset {subset!r}; choose one of {sorted(SUBSETS)}")
    spec = SUBSETS[subset]
    scene = None
    if spec.scene_prob > 0 and rng.random() < spec.scene_prob:
        if rng.random() < 0.5:
            scene = {"exposure": float(rng.uniform(*spec.scene_exposure))}
            img = exposure(img, scene["exposure"])
        else:
            scene = {"gamma": float(rng.uniform(*spec.scene_gamma))}
            img = gamma(img, scene["gamma"])
    lq, params = degrade_subset(img, subset, rng, color)
    if scene is not None:
        params["scene"] = scene
    return img, lq, params


def describe_subsets() -> dict[int, dict]:
    """The recipes as plain dicts, for configs, manifests and --help text."""
    return {k: asdict(v) for k, v in SUBSETS.items()}


def exposure(img: np.ndarray, gain: float) -> np.ndarray:
    """Scale the 8-bit values by `gain` (0.5: a dim room), rounded and clipped."""
    if not gain > 0:
        raise ValueError(f"exposure gain must be > 0, got {gain}")
    return np.clip(np.round(img.astype(np.float32) * gain), 0, 255).astype(np.uint8)


def contrast(img: np.ndarray, factor: float) -> np.ndarray:
    """Scale the differences from the image's mean by `factor` (0.5: haze, a washed-out webcam)."""
    if not factor > 0:
        raise ValueError(f"contrast factor must be > 0, got {factor}")
    x = img.astype(np.float32)
    mean = x.mean()
    return np.clip(np.round((x - mean) * factor + mean), 0, 255).astype(np.uint8)


# the photometric range quantization-aware fine-tuning sees (calibrate.qat): webcams in dim or hazy rooms
DIM_EXPOSURE = (0.3, 1.0)
LOW_CONTRAST = (0.35, 1.0)


def photometric(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A dimmer or flatter copy: exposure or contrast (one of them, even odds) drawn from the ranges above."""
    if rng.random() < 0.5:
        gain = float(rng.uniform(*DIM_EXPOSURE))
        return exposure(img, gain), {"exposure": gain}
    factor = float(rng.uniform(*LOW_CONTRAST))
    return contrast(img, factor), {"contrast": factor}
