#!/usr/bin/env python3
"""Does a marginal-likelihood kernel step keep the true kernel where the MAP alternation leaves it?

    python -m studies.marginal_likelihood --sets capture uniform
    python -m studies.blind_benchmark --sets capture uniform --estimators shipped \\
        ml=studies.marginal_likelihood:estimate_kernel_ml

``studies/kernel_drift.py`` shows that the estimator's alternation (an L0 latent image, then the
kernel by least squares on its gradients: a joint MAP estimate) drifts away from the true kernel
even when started on it. Levin, Weiss, Durand & Freeman (CVPR 2011, "Efficient marginal likelihood
optimization in blind deconvolution") estimate the kernel by its marginal likelihood instead,
integrating over the latent image: an EM / variational free-energy scheme in which the kernel
step sees the latent image's uncertainty as well as its mean. Their best variant, written here
from the paper's equations:

* the unknowns are the latent image's two derivative images (``[-1, 1]`` across and down), each
  solved independently, observed through a *valid* convolution (the latent domain is the observed
  one grown by the kernel size minus one, so the borders need no assumption);
* prior: a zero-mean mixture of Gaussians on each derivative (:class:`MogPrior`, fitted by EM to
  the derivatives of sharp photos' normalised linear luminance, :func:`fit_mog_prior`);
* latent step (:func:`latent_moments`): three reweighted solves of
  ``(K^T K / s^2 + diag(w)) x = K^T y / s^2`` by conjugate gradients, the weights ``w`` the expected
  inverse variance of each pixel's mixture component given ``E[x^2] = mean^2 + var``; the variance
  is the diagonal approximation ``1 / (diag(K^T K) / s^2 + w)``;
* kernel step (:func:`kernel_from_moments`): minimise ``E||y - k * x||^2`` over the latent
  distribution, which adds the latent variances summed over each kernel tap's window to the normal
  matrix's diagonal (a penalty on ``||k||^2`` that a MAP step lacks and that keeps it from
  collapsing to a delta), with ``k >= 0`` and the paper's sparse kernel prior (two reweightings of
  ``0.01 |k|^0.5``);
* noise ``s``: 0.01, with the paper's schedule ``0.01 * 1.15^j`` from ``j = 10`` down to 0 at the
  coarsest scale (coarse-to-fine, ratio ``1/sqrt(2)`` down to a 5-px kernel); at the finer scales a
  shorter schedule from ``j = 4`` (restarting the full schedule at every scale widened the kernels
  on the validation pairs: the first high-noise steps spread them over the whole window).

The raw estimates keep a diffuse halo that costs the deconvolution several dB, so
:func:`estimate_kernel_ml` applies the shipped estimator's final cut (15 % of the maximum,
:func:`deblurkit.kernel_aware.estimation.clean_kernel`) and centres the result.

Reported per pair of a set with true kernels (input: the normalised linear luminance, as the blind
pipeline prepares it):

* **from the truth**: the variational step run ``--steps`` times at full resolution from the true
  kernel on a window ``--margin`` px wider (as ``studies/kernel_drift.py`` runs the MAP step):
  similarity to the truth and effective-support ratio after the first and the last step;
* **from the sharp gradients**: one kernel step with the sharp photo's own gradients as the latent
  mean and zero variance (checks the kernel step and its data term apart from the latent step);
* **from scratch**: :func:`estimate_kernel_ml` with a 31-px window, as ``estimate_kernel`` runs.

Writes ``--out`` ``.json`` (per pair) and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studies.blind_benchmark import working_luminance
from studies.heldout import add_testset_arguments, kernel_pairs, load_pair, write_results
from studies.kernel_drift import windowed_kernel


@dataclass(frozen=True)
class MogPrior:
    """Zero-mean mixture of Gaussians on image derivatives (normalised linear luminance)."""

    weights: tuple[float, ...]
    inverse_variances: tuple[float, ...]


DEFAULT_PRIOR = MogPrior(weights=(0.277, 0.3641, 0.2656, 0.0934),
                         inverse_variances=(30589.1, 2220.8, 202.7, 18.6))
"""Fitted by :func:`fit_mog_prior` (4 components, variance floor 1e-5) to 20 Sun–Hays and 20 BSDS500
sharp photos of ``../shared/data/sharp``, at full size and halved (``--fit-prior``)."""

NOISE = 0.01
"""Final noise level ``s`` of the derivative images (Levin et al. 2011's default)."""


def fit_mog_prior(photos: list[Path], *, components: int = 4, variance_floor: float = 1e-5,
                  samples: int = 20000, seed: int = 0) -> MogPrior:
    """EM fit of a zero-mean Gaussian mixture to horizontal and vertical derivatives.

    Args:
        photos: sharp sRGB photos; each is decoded to linear luminance divided by its working
            scale (as the blind pipeline prepares an input), at full size and halved.
        components: mixture components.
        variance_floor: smallest component variance (8-bit quantisation leaves exact zeros).
        samples: derivatives drawn per photo and scale.
        seed: random generator seed of the draws.
    """
    import cv2

    from deblurkit.io import load_image_rgb

    rng = np.random.default_rng(seed)
    draws = []
    for path in photos:
        gray = working_luminance(load_image_rgb(path))
        for scale in (1.0, 0.5):
            g = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            d = np.concatenate([np.diff(g, axis=1).ravel(), np.diff(g, axis=0).ravel()])
            draws.append(rng.choice(d, samples))
    x = np.concatenate(draws).astype(np.float64)[:, None]
    weights = np.full(components, 1.0 / components)
    variances = np.logspace(-5, -2, components)
    for _ in range(300):
        logp = -0.5 * x ** 2 / variances + np.log(weights) - 0.5 * np.log(variances)
        resp = np.exp(logp - logp.max(1, keepdims=True))
        resp /= resp.sum(1, keepdims=True)
        weights = resp.mean(0)
        variances = np.maximum((resp * x ** 2).sum(0) / resp.sum(0), variance_floor)
    return MogPrior(tuple(np.round(weights, 4).tolist()), tuple(np.round(1.0 / variances, 1).tolist()))


class _ValidConvolution:
    """``x (M) -> (k * x)`` cropped to the pixels that see no border (N = M - k + 1), and its adjoint."""

    def __init__(self, kernel: np.ndarray, latent_shape: tuple[int, int]):
        import scipy.fft

        self._fft = scipy.fft
        self.m = latent_shape
        self.k = kernel.shape
        self.n = (latent_shape[0] - kernel.shape[0] + 1, latent_shape[1] - kernel.shape[1] + 1)
        self.p = tuple(scipy.fft.next_fast_len(m + k - 1, real=True) for m, k in zip(self.m, self.k))
        self.kf = scipy.fft.rfft2(kernel, self.p)

    def forward(self, x: np.ndarray) -> np.ndarray:
        full = self._fft.irfft2(self._fft.rfft2(x, self.p) * self.kf, self.p)
        return full[self.k[0] - 1:self.k[0] - 1 + self.n[0], self.k[1] - 1:self.k[1] - 1 + self.n[1]]

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        placed = np.zeros(self.p)
        placed[self.k[0] - 1:self.k[0] - 1 + self.n[0], self.k[1] - 1:self.k[1] - 1 + self.n[1]] = y
        return self._fft.irfft2(self._fft.rfft2(placed) * np.conj(self.kf), self.p)[:self.m[0], :self.m[1]]


def _conjugate_gradients(apply, b: np.ndarray, x: np.ndarray, iterations: int) -> np.ndarray:
    r = b - apply(x)
    p = r.copy()
    rr = float((r * r).sum())
    stop = 1e-12 * float((b * b).sum())
    for _ in range(iterations):
        ap = apply(p)
        alpha = rr / max(float((p * ap).sum()), 1e-300)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = float((r * r).sum())
        if rr_new < stop:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def _data_diagonal(y: np.ndarray, kernel: np.ndarray, noise: float) -> np.ndarray:
    """``diag(K^T K) / s^2``: each latent pixel's squared kernel taps that land on observed pixels."""
    from scipy.signal import fftconvolve

    return np.maximum(fftconvolve(np.ones_like(y), (kernel ** 2)[::-1, ::-1], mode="full"), 0.0) / noise ** 2


def _responsibilities(second: np.ndarray, prior: MogPrior) -> np.ndarray:
    """``q(component | pixel)`` of the mixture given each pixel's ``E[x^2]``; shape ``second.shape + (C,)``."""
    ivars = np.asarray(prior.inverse_variances)
    logp = -0.5 * second[..., None] * ivars + np.log(prior.weights) + 0.5 * np.log(ivars)
    resp = np.exp(logp - logp.max(-1, keepdims=True))
    return resp / resp.sum(-1, keepdims=True)


def latent_moments(y: np.ndarray, kernel: np.ndarray, noise: float, prior: MogPrior = DEFAULT_PRIOR, *,
                   cg_iterations: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Mean and diagonal variance of one derivative image's latent distribution.

    Args:
        y: observed (blurry) derivative image ``(N1, N2)``.
        kernel: current kernel ``(k1, k2)``.
        noise: noise standard deviation ``s`` of ``y``.
        prior: the derivatives' mixture prior.
        cg_iterations: conjugate-gradient iterations per reweighted solve.

    Returns:
        (mean, variance), each ``(N1 + k1 - 1, N2 + k2 - 1)``.
    """
    pis = np.asarray(prior.weights)
    ivars = np.asarray(prior.inverse_variances)
    shape = (y.shape[0] + kernel.shape[0] - 1, y.shape[1] + kernel.shape[1] - 1)
    op = _ValidConvolution(kernel, shape)
    data_diag = _data_diagonal(y, kernel, noise)
    rhs = op.adjoint(y) / noise ** 2
    mean = np.zeros(shape)
    weights = np.full(shape, float((pis * ivars).sum()))
    variance = 1.0 / (data_diag + weights)
    for solve in range(3):
        if solve:
            weights = _responsibilities(mean ** 2 + variance, prior) @ ivars
        mean = _conjugate_gradients(lambda v, w=weights: op.adjoint(op.forward(v)) / noise ** 2 + w * v,
                                    rhs, mean, cg_iterations)
        variance = 1.0 / (data_diag + weights)
    return mean, variance


def _nonnegative_quadratic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Approximately ``argmin 0.5 k^T a k - b^T k`` over ``k >= 0``: taps driven negative are fixed
    at zero and the rest re-solved, until none is negative."""
    free = np.ones(b.size, bool)
    k = np.zeros(b.size)
    for _ in range(30):
        k[:] = 0.0
        k[free] = np.linalg.solve(a[np.ix_(free, free)], b[free])
        negative = k < 0
        if not negative.any():
            break
        free &= ~negative
    return np.maximum(k, 0.0)


def kernel_from_moments(means: list[np.ndarray], variances: list[np.ndarray], ys: list[np.ndarray],
                        size: tuple[int, int], *, sparsity: float = 0.01) -> np.ndarray:
    """The kernel minimising the expected data error over the latent distributions, ``k >= 0``.

    Args:
        means, variances: latent moments of each derivative image (:func:`latent_moments`).
        ys: the observed derivative images.
        size: kernel size ``(k1, k2)``.
        sparsity: weight of the sparse kernel prior ``|k|^0.5`` (two reweighted solves).

    Returns:
        kernel ``size`` summing to 1.
    """
    kh, kw = size
    taps = kh * kw
    ii, jj = (v.ravel() for v in np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij"))
    a = np.zeros((taps, taps))
    b = np.zeros(taps)
    for x, var, y in zip(means, variances, ys):
        n = y.shape
        # tap (i, j) multiplies the latent window starting at (kh-1-i, kw-1-j); the normal matrix
        # is built exactly from those windows, in bands of rows to bound the memory
        r0, c0 = kh - 1 - ii, kw - 1 - jj
        rows = max(1, 4096 // n[1])
        for top in range(0, n[0], rows):
            h = min(rows, n[0] - top)
            windows = np.lib.stride_tricks.sliding_window_view(x, (h, n[1]))[r0 + top, c0].reshape(taps, -1)
            a += windows @ windows.T
            b += windows @ y[top:top + h].ravel()
        csum = np.pad(var.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        a[np.arange(taps), np.arange(taps)] += (csum[r0 + n[0], c0 + n[1]] - csum[r0, c0 + n[1]]
                                                - csum[r0 + n[0], c0] + csum[r0, c0])
    a = 0.5 * (a + a.T)
    k = _nonnegative_quadratic(a, b)
    for _ in range(2):
        k = _nonnegative_quadratic(a + sparsity * np.diag(np.maximum(k, 1e-4) ** -1.5), b)
    k = k.reshape(kh, kw)
    total = k.sum()
    if total <= 0:
        k = np.zeros((kh, kw))
        k[kh // 2, kw // 2] = 1.0
        return k
    return k / total


def _derivatives(gray: np.ndarray) -> list[np.ndarray]:
    g = np.asarray(gray, np.float64)
    h, w = g.shape[0] - 1, g.shape[1] - 1
    return [(g[:, 1:] - g[:, :-1])[:h, :w], (g[1:, :] - g[:-1, :])[:h, :w]]


def variational_step(ys: list[np.ndarray], kernel: np.ndarray, noise: float) -> np.ndarray:
    """One latent step and one kernel step at the kernel's size."""
    means, variances = zip(*(latent_moments(y, kernel, noise) for y in ys))
    return kernel_from_moments(list(means), list(variances), ys, kernel.shape)


def estimate_kernel_ml(gray: np.ndarray, kernel_size: int = 31, *, raw: bool = False) -> np.ndarray:
    """Coarse-to-fine marginal-likelihood kernel estimate (Levin et al. 2011, diagonal free energy).

    Args:
        gray: blurry normalised linear luminance ``(H, W)``.
        kernel_size: odd window size.
        raw: return the estimate before the 15 % cut and centring.

    Returns:
        kernel ``(kernel_size, kernel_size)`` float32 summing to 1.
    """
    import cv2

    from deblurkit.kernel_aware.estimation import center_kernel, clean_kernel, kernel_pyramid_sizes
    from deblurkit.kernel_aware.kernels import resize_kernel

    g = np.asarray(gray, np.float32)
    sizes = kernel_pyramid_sizes(kernel_size | 1)
    k = np.zeros((3, 3))
    k[1, 1:] = 0.5
    for level, ks in enumerate(sizes):
        scale = ks / sizes[-1]
        shape = (max(round(g.shape[0] * scale), 3 * ks), max(round(g.shape[1] * scale), 3 * ks))
        y = g if level == len(sizes) - 1 else cv2.resize(g, shape[::-1], interpolation=cv2.INTER_AREA)
        k = resize_kernel(k, ks)
        schedule = NOISE * 1.15 ** np.arange(10 if level == 0 else 4, -1, -1)
        ys = _derivatives(y)
        for noise in schedule:
            k = variational_step(ys, k, noise)
    if raw:
        return k.astype(np.float32)
    return center_kernel(clean_kernel(k, rel_threshold=0.15)).astype(np.float32)


def free_energy(gray: np.ndarray, kernel: np.ndarray, *, size: int, noise: float = NOISE,
                prior: MogPrior = DEFAULT_PRIOR, cg_iterations: int = 30) -> float:
    """The variational free energy of a kernel: an upper bound on ``-log p(blurry | kernel)``.

    The latent step of :func:`latent_moments` for ``kernel``, then the free energy of its
    Gaussian (mean, diagonal variance) and of the mixture responsibilities: the expected data
    error ``(||y - k * mean||^2 + sum(diag(K^T K) var)) / (2 s^2)``, the expected prior energy, and
    the entropies of both. Lower is a better explanation of the blurry derivatives, integrating over
    the latent image (Levin et al. 2011's criterion for the kernel), so it can compare candidate
    kernels of one photo without a reference.

    Args:
        gray: blurry normalised linear luminance ``(H, W)``.
        kernel: candidate kernel, zero-padded (centred) to ``size`` so that every candidate of a
            photo has the same latent domain.
        size: odd common window, at least the largest candidate.
        noise: noise level ``s`` of the derivatives.
        prior: the derivatives' mixture prior.
        cg_iterations: conjugate-gradient iterations per reweighted solve.

    Returns:
        free energy per pixel of ``gray`` (up to a constant shared by every kernel).
    """
    k = np.asarray(kernel, np.float64)
    if k.shape[0] > size or k.shape[1] > size:
        raise ValueError(f"kernel {k.shape} is larger than the common window {size}")
    k = k / k.sum()
    top, left = (size - k.shape[0]) // 2, (size - k.shape[1]) // 2
    k = np.pad(k, ((top, size - k.shape[0] - top), (left, size - k.shape[1] - left)))
    pis = np.asarray(prior.weights)
    ivars = np.asarray(prior.inverse_variances)
    total = 0.0
    for y in _derivatives(gray):
        mean, var = latent_moments(y, k, noise, prior, cg_iterations=cg_iterations)
        residual = y - _ValidConvolution(k, mean.shape).forward(mean)
        second = mean ** 2 + var
        resp = _responsibilities(second, prior)
        total += 0.5 * (residual ** 2).sum() / noise ** 2 + 0.5 * (_data_diagonal(y, k, noise) * var).sum()
        total += (resp * (0.5 * second[..., None] * ivars - 0.5 * np.log(ivars) - np.log(pis))).sum()
        total += (resp * np.log(np.maximum(resp, 1e-300))).sum() - 0.5 * np.log(var).sum()
    return float(total / gray.size)


def pair_row(blur: np.ndarray, sharp: np.ndarray, k_true: np.ndarray, *, steps: int, margin: int,
             kernel_size: int) -> dict:
    """The three measurements of one pair (see the module docstring)."""
    from deblurkit.color import luminance, srgb_to_linear, working_scale
    from deblurkit.kernel_aware.blind import kernel_effective_support
    from deblurkit.kernel_aware.kernels import kernel_similarity

    gray = working_luminance(blur)
    true_support = kernel_effective_support(k_true)

    def measured(k: np.ndarray) -> list[float]:
        return [kernel_similarity(k, k_true), kernel_effective_support(k) / true_support]

    ys = _derivatives(gray)
    start = windowed_kernel(k_true, margin)
    window = start.shape[0]
    k, track = start, []
    for _ in range(steps):
        k = variational_step(ys, k, NOISE)
        track.append(measured(k))
    # the sharp photo's luminance on the blurry one's working scale
    sharp_gray = luminance(srgb_to_linear(sharp)) / working_scale(luminance(srgb_to_linear(blur)))
    p = window // 2
    xs = _derivatives(sharp_gray)
    cropped = [y[p:-p, p:-p] for y in ys]
    from_sharp = kernel_from_moments(xs, [np.zeros_like(x) for x in xs], cropped, (window, window))
    scratch = estimate_kernel_ml(gray, kernel_size)
    return {"true_support": true_support, "window": window, "from_truth": track,
            "from_sharp": measured(from_sharp), "from_scratch": measured(scratch)}


def summary_lines(name: str, rows: list[dict], steps: int, kernel_size: int) -> list[str]:
    t = np.array([r["from_truth"] for r in rows])  # (pairs, steps, 2)
    s = np.array([r["from_sharp"] for r in rows])
    c = np.array([r["from_scratch"] for r in rows])
    return [f"### {name} ({len(rows)} pairs)", "",
            "| start | similarity, step 1 | similarity, last step | support ratio, step 1 | support ratio, last step |",
            "|---|---|---|---|---|",
            (f"| true kernel ({steps} steps) | {t[:, 0, 0].mean():.3f} | {t[:, -1, 0].mean():.3f} | "
             f"{np.median(t[:, 0, 1]):.2f} | {np.median(t[:, -1, 1]):.2f} |"),
            f"| sharp photo's gradients (kernel step only) | – | {s[:, 0].mean():.3f} | – | {np.median(s[:, 1]):.2f} |",
            f"| coarse-to-fine, {kernel_size}-px window | – | {c[:, 0].mean():.3f} | – | {np.median(c[:, 1]):.2f} |", ""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_testset_arguments(ap)
    ap.set_defaults(sets=["capture"])
    ap.add_argument("--steps", type=int, default=8, help="variational steps started from the true kernel")
    ap.add_argument("--margin", type=int, default=2, help="window margin around the true kernel, px per side")
    ap.add_argument("--kernel-size", type=int, default=31, help="window of the estimate from scratch")
    ap.add_argument("--fit-prior", nargs="*", metavar="PHOTO",
                    help="only fit the mixture prior to these sharp photos and print it")
    ap.add_argument("--out", default="studies/results/marginal_likelihood")
    args = ap.parse_args(argv)
    if args.fit_prior is not None:
        print(fit_mog_prior([Path(p) for p in args.fit_prior]))
        return 0
    t0 = time.perf_counter()
    results: dict = {"settings": {"steps": args.steps, "margin": args.margin, "kernel_size": args.kernel_size,
                                  "noise": NOISE, "prior": DEFAULT_PRIOR.__dict__}, "sets": {}}
    intro = ("Marginal-likelihood kernel step (Levin et al. 2011, diagonal free energy; "
             "studies/marginal_likelihood.py). Similarity: kernel_similarity to the truth; support ratio: "
             "effective support of the estimate over the truth's (median).")
    lines = [intro, ""]
    for name, root, pairs in kernel_pairs(args):
        rows = []
        for it, k_true in pairs:
            blur, sharp = load_pair(root, it["index"])
            row = {"index": it["index"], "photo": it.get("photo"),
                   **pair_row(blur, sharp, k_true, steps=args.steps, margin=args.margin,
                              kernel_size=args.kernel_size)}
            rows.append(row)
            print(f"{name}/{it['index']:03d}: from the truth {row['from_truth'][-1][0]:.2f}, from the sharp "
                  f"gradients {row['from_sharp'][0]:.2f}, from scratch {row['from_scratch'][0]:.2f}",
                  file=sys.stderr, flush=True)
        results["sets"][name] = rows
        lines += summary_lines(name, rows, args.steps, args.kernel_size)
    seconds = time.perf_counter() - t0
    cmd = "python -m studies.marginal_likelihood " + " ".join(argv if argv is not None else sys.argv[1:])
    lines.append(f"Whole run {seconds:.0f} s: `{cmd.strip()}`")
    results["seconds"] = seconds
    write_results(args.out, results, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
