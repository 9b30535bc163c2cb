"""Dissimilarities between a fixed and a warped moving tensor ``[B, C, *S]``.

Every class returns one value per pair, shape ``[B]``, lower is better, so the solver's energy
of a batch is their sum and each pair is optimized independently of the others. ``weights``
``[B, 1, *S]`` (in [0, 1]; cost-function masking) restrict the value to the voxels they weigh:
a weighted mean over voxels, weighted moments (ncc) or a weighted histogram (mi).
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref

import torch

from ..geometry.filters import box_mean
from ..registry import build_named

#: the default lncc window, voxels (as ANTs' and FireANTs' cc radius 3)
LNCC_WINDOW = 7


class Similarity:
    """Interface: ``dissimilarity(fixed, warped, weights=None) -> [B]``."""

    name = "base"
    multichannel = True

    def __call__(self, fixed: torch.Tensor, warped: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


def voxel_mean(values: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean ``[B]`` of per-voxel ``values`` ``[B, C, *S]`` (or ``[B, *S]``) over everything but the
    batch, weighted per voxel by ``weights`` ``[B, 1, *S]`` when given."""
    if weights is None:
        return values.flatten(1).mean(1)
    weights = weights if values.dim() == weights.dim() else weights[:, 0]
    weights = weights.expand_as(values)
    return (values * weights).flatten(1).sum(1) / weights.flatten(1).sum(1).clamp_min(1e-8)


class MSE(Similarity):
    """Mean squared difference over channels and voxels."""

    name = "mse"

    def __call__(self, fixed: torch.Tensor, warped: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return voxel_mean((fixed - warped).pow(2), weights)


class LNCC(Similarity):
    """One minus the local squared normalized cross-correlation in a ``window``-voxel box.

    The box mean is taken per channel; the value is averaged over channels and voxels. ``eps`` is
    added to numerator and denominator, so flat regions count as matched rather than as mismatched;
    keep it well below the local variances of the inputs. Inside :func:`first_order` (the solver's
    iterations) an odd window takes the analytic gradient of :class:`_FirstOrderLNCC`.
    """

    name = "lncc"

    def __init__(self, window: int = LNCC_WINDOW, eps: float = 1e-9) -> None:
        if window < 1:
            raise ValueError(f"lncc window must be >= 1 voxel, got {window}")
        self.window = int(window)
        self.eps = eps
        self._fixed_cache: tuple | None = None

    def __call__(self, fixed: torch.Tensor, warped: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        if weights is None and _FIRST_ORDER.get() and self.window % 2 == 1 and torch.is_grad_enabled():
            return _FirstOrderLNCC.apply(fixed, warped, self.window, self.eps, *self._fixed_moments(fixed))
        return _lncc(fixed, warped, self.window, self.eps, weights)

    def _fixed_moments(self, fixed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Box mean of ``fixed`` and its local variance before the clamp, detached; kept while the
        same, unmodified ``fixed`` comes back (the solver's iterations at one scale), so each
        iteration box-filters three stacked channels instead of five."""
        cached = self._fixed_cache
        if cached is not None and cached[0]() is fixed and cached[1] == fixed._version:
            return cached[2]
        with torch.no_grad():
            mean_f, mean_ff = box_mean(torch.cat([fixed, fixed * fixed], dim=1), self.window).split(fixed.shape[1], 1)
            moments = (mean_f, mean_ff - mean_f * mean_f)
        self._fixed_cache = (weakref.ref(fixed), fixed._version, moments)
        return moments

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fixed_cache": None}  # a weak reference does not pickle


def _local_moments(
    fixed: torch.Tensor, warped: torch.Tensor, window: int, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, ...]:
    """Box means of ``fixed`` and ``warped``, their local covariance and variances (before the
    clamp at 0 that rounding needs); with ``weights``, over each window's weighted voxels only, so
    voxels outside a mask (a lesion) enter no window's statistics."""
    channels = fixed.shape[1]
    stacked = torch.cat([fixed, warped, fixed * fixed, warped * warped, fixed * warped], dim=1)
    if weights is None:
        means = box_mean(stacked, window)
    else:
        means = box_mean(stacked * weights, window) / box_mean(weights, window).clamp_min(1e-6)
    mean_f, mean_w, mean_ff, mean_ww, mean_fw = means.split(channels, dim=1)
    cross = mean_fw - mean_f * mean_w
    return mean_f, mean_w, cross, mean_ff - mean_f * mean_f, mean_ww - mean_w * mean_w


def _lncc(
    fixed: torch.Tensor, warped: torch.Tensor, window: int, eps: float, weights: torch.Tensor | None = None
) -> torch.Tensor:
    _, _, cross, var_f, var_w = _local_moments(fixed, warped, window, weights)
    var_f, var_w = var_f.clamp_min(0), var_w.clamp_min(0)
    correlation = (cross * cross + eps) / (var_f * var_w + eps)
    return 1.0 - voxel_mean(correlation, weights)


#: set by :func:`first_order`: no graph of the similarity's gradient will be asked for
_FIRST_ORDER: contextvars.ContextVar[bool] = contextvars.ContextVar("first_order", default=False)


@contextlib.contextmanager
def first_order():
    """Within this block similarities may use hand-written first-order gradients (no double backward)."""
    token = _FIRST_ORDER.set(True)
    try:
        yield
    finally:
        _FIRST_ORDER.reset(token)


class _FirstOrderLNCC(torch.autograd.Function):
    """LNCC with its gradient written out, for the solver's iterations, where it was the largest cost:
    autograd's backward runs through the cumulative sums, pads and slices of five stacked box means;
    by the chain rule (box mean ``M``, symmetric for an odd window, so its adjoint is itself) it is

    ``dL/dW = F M(a) + M(-a mean_F - 2 b mean_W) + 2 W M(b)``, with ``a = dL/dcross``,
    ``b = dL/dvar_W`` per voxel (and the same with the roles of F and W swapped for ``dL/dF``).

    ``mean_f`` and ``raw_f`` (the fixed side's box mean and variance, :meth:`LNCC._fixed_moments`) are
    constants here: the gradient with respect to ``fixed`` is written out in full above.
    First order only: its backward refuses to build a graph (``ift`` and ``unroll`` need one and use
    autograd on :func:`_lncc`)."""

    @staticmethod
    def forward(ctx, fixed, warped, window, eps, mean_f, raw_f):
        channels = fixed.shape[1]
        mean_w, mean_ww, mean_fw = box_mean(torch.cat([warped, warped * warped, fixed * warped], dim=1), window).split(
            channels, dim=1
        )
        cross, raw_w = mean_fw - mean_f * mean_w, mean_ww - mean_w * mean_w
        var_f, var_w = raw_f.clamp_min(0), raw_w.clamp_min(0)
        denominator = var_f * var_w + eps
        numerator = cross * cross + eps
        ctx.save_for_backward(
            fixed, warped, mean_f, mean_w, cross, var_f, var_w, raw_f >= 0, raw_w >= 0, denominator, numerator
        )
        ctx.window = window
        return 1.0 - (numerator / denominator).flatten(1).mean(1)

    @staticmethod
    def backward(ctx, upstream):
        if torch.is_grad_enabled():
            raise RuntimeError(
                "the first-order LNCC gradient cannot be differentiated again; "
                "evaluate the energy outside similarity.first_order()"
            )
        fixed, warped, mean_f, mean_w, cross, var_f, var_w, kept_f, kept_w, denominator, numerator = ctx.saved_tensors
        count = fixed[0].numel()
        scale = upstream.view(-1, *([1] * (fixed.dim() - 1))) / count
        d_cross = -2.0 * scale * cross / denominator
        d_var = scale * numerator / (denominator * denominator)
        grads = []
        for needed, (this, other, mean_this, mean_other, var_other, kept) in zip(
            ctx.needs_input_grad[:2],
            ((fixed, warped, mean_f, mean_w, var_w, kept_f), (warped, fixed, mean_w, mean_f, var_f, kept_w)),
        ):
            if not needed:
                grads.append(None)
                continue
            d_this_var = torch.where(kept, d_var * var_other, 0.0)  # clamp_min(0): no gradient below 0
            terms = torch.cat([d_cross, -d_cross * mean_other - 2.0 * d_this_var * mean_this, d_this_var], dim=1)
            m_cross, m_mean, m_var = box_mean(terms, ctx.window).split(this.shape[1], dim=1)
            grads.append(other * m_cross + m_mean + 2.0 * this * m_var)
        return grads[0], grads[1], None, None, None, None


class NCC(Similarity):
    """One minus the global normalized cross-correlation, averaged over channels."""

    name = "ncc"

    def __init__(self, eps: float = 1e-8) -> None:
        self.eps = eps

    def __call__(self, fixed: torch.Tensor, warped: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        fixed = fixed.flatten(2)
        warped = warped.flatten(2)
        share = torch.ones_like(fixed[:, :1]) if weights is None else weights.flatten(2)
        share = share / share.sum(-1, keepdim=True).clamp_min(1e-8)
        mean = lambda values: (values * share).sum(-1, keepdim=True)  # noqa: E731
        fixed = fixed - mean(fixed)
        warped = warped - mean(warped)
        cross = mean(fixed * warped)[..., 0]
        norm = (mean(fixed.pow(2)) * mean(warped.pow(2)) + self.eps).sqrt()[..., 0]
        return 1.0 - (cross / norm).mean(1)


class Cosine(Similarity):
    """One minus the cosine between the channel vectors of each voxel, averaged over voxels."""

    name = "cosine"

    def __init__(self, eps: float = 1e-8) -> None:
        self.eps = eps

    def __call__(self, fixed: torch.Tensor, warped: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        cosine = torch.nn.functional.cosine_similarity(fixed, warped, dim=1, eps=self.eps)
        return 1.0 - voxel_mean(cosine, weights)


def _strided(tensor: torch.Tensor, stride: int) -> torch.Tensor:
    """``[B, N / stride]``: every ``stride``-th voxel of ``[B, C, *S]`` (no slice, so no slice's
    zero-filled gradient, when ``stride`` is 1)."""
    flat = tensor.flatten(1)
    return flat if stride == 1 else flat[:, ::stride]


class MutualInformation(Similarity):
    """Negative mutual information (nats) of single-channel intensities in ``[0, 1]``.

    Parzen-window joint histogram with Gaussian kernels on ``bins`` centres, so it is
    differentiable; at most ``max_voxels`` evenly strided voxels are used.
    """

    name = "mi"
    multichannel = False

    def __init__(self, bins: int = 32, max_voxels: int = 2**18, eps: float = 1e-10) -> None:
        if bins < 4:
            raise ValueError(f"mi needs at least 4 bins, got {bins}")
        self.bins = int(bins)
        self.max_voxels = int(max_voxels)
        self.eps = eps
        self._fixed_cache: tuple | None = None

    def _weights(self, values: torch.Tensor) -> torch.Tensor:
        centres = torch.linspace(0.0, 1.0, self.bins, device=values.device, dtype=values.dtype)
        sigma = 1.0 / (self.bins - 1)
        weights = torch.exp(-0.5 * ((values.clamp(0, 1).unsqueeze(-1) - centres) / sigma) ** 2)
        return weights / (weights.sum(-1, keepdim=True) + self.eps)

    def _fixed_weights(self, fixed: torch.Tensor, stride: int) -> torch.Tensor:
        """The fixed side's Parzen weights ``[B, N, bins]``; kept while the same, unmodified ``fixed``
        without a gradient comes back (the solver's iterations at one scale), as LNCC keeps its moments."""
        if fixed.requires_grad:
            return self._weights(_strided(fixed, stride))
        cached = self._fixed_cache
        if cached is not None and cached[0]() is fixed and cached[1] == (fixed._version, stride):
            return cached[2]
        found = self._weights(_strided(fixed, stride))
        self._fixed_cache = (weakref.ref(fixed), (fixed._version, stride), found)
        return found

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fixed_cache": None}  # a weak reference does not pickle

    def __call__(self, fixed: torch.Tensor, warped: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        if fixed.shape[1] != 1:
            raise ValueError(
                f"mi is for single-channel intensities, got {fixed.shape[1]} channels; "
                "use mse, lncc, ncc or cosine for features"
            )
        stride = max(fixed[0].numel() // self.max_voxels, 1)
        warped = _strided(warped, stride)
        share = torch.ones_like(warped) if weights is None else _strided(weights, stride)
        share = share / share.sum(1, keepdim=True).clamp_min(1e-8)
        joint = torch.bmm(
            (self._fixed_weights(fixed, stride) * share.unsqueeze(-1)).transpose(1, 2), self._weights(warped)
        )
        marginal_fixed = joint.sum(2, keepdim=True)
        marginal_warped = joint.sum(1, keepdim=True)
        ratio = joint / (marginal_fixed * marginal_warped + self.eps)
        return -(joint * torch.log(ratio + self.eps)).flatten(1).sum(1)


class AddedChannels(Similarity):
    """The image's channels by a classical similarity and learned channels beside them by another,
    the learned group weighed by a gate the features carry (``nn.AddedFeatures``):

    ``E = image_weight * image(F[:C], W[:C]) + features_weight * max(gate, 0) * features(F[C:-1], W[C:-1])``

    for features ``[B, C + K + 1, *S]``: the image's ``C = image_channels`` channels, ``K`` learned
    channels and a last channel constant at the gate (read per pair from the fixed side). The gate
    sits in the features so that training reaches it as it reaches every feature: with the gate at 0
    (an untrained model) the energy is the image similarity's alone, so the warp is the classical
    solver's, while the energy stays linear in the gate, whose gradient therefore is not zero there.
    Features of the image's channels only (no learned group) give the image term alone.

    Args:
        image: the image group's similarity (``mi``, right across contrasts; ``lncc`` for one contrast).
        features: the learned group's similarity (``mse``).
        image_channels: how many leading channels are the image's.
        image_weight: weight of the image term (0: the learned channels alone, e.g. where the image's
            contrast misleads; chosen on validation).
        features_weight: weight of the learned term, times the gate.
        image_options: options of the image similarity's constructor.
        features_options: options of the learned channels' similarity's constructor.
    """

    name = "added"

    def __init__(
        self,
        image: str = "mi",
        features: str = "mse",
        image_channels: int = 1,
        image_weight: float = 1.0,
        features_weight: float = 1.0,
        image_options: dict | None = None,
        features_options: dict | None = None,
    ) -> None:
        if image == self.name or features == self.name:
            raise ValueError("the groups of the added similarity take a plain similarity (lncc, mi, mse, ...)")
        if image_channels < 1:
            raise ValueError(f"image_channels must be >= 1, got {image_channels}")
        for label, weight in (("image_weight", image_weight), ("features_weight", features_weight)):
            if not weight >= 0:
                raise ValueError(f"{label} must be >= 0, got {weight}")
        self.image, self.features = image, features
        self.image_channels, self.image_weight, self.features_weight = (
            int(image_channels),
            image_weight,
            features_weight,
        )
        self.image_options, self.features_options = dict(image_options or {}), dict(features_options or {})
        self.image_similarity = make_similarity(image, **self.image_options)
        self.features_similarity = make_similarity(features, **self.features_options)
        self._split_cache: tuple | None = None

    def _fixed_groups(self, fixed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The fixed side's image channels, learned channels and gate ``[B]``; the same tensors while
        the same ``fixed`` comes back, so the image similarity's own cache (LNCC's moments) holds."""
        cached = self._split_cache
        if cached is not None and cached[0]() is fixed and cached[1] == fixed._version:
            return cached[2]
        groups = self._split(fixed)
        image, learned, gate = groups
        if learned is not None and gate is not None:
            groups = (image, learned, gate[:, 0].flatten(1).mean(1))
        self._split_cache = (weakref.ref(fixed), fixed._version, groups)
        return groups

    def _split(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        channels = features.shape[1]
        if channels == self.image_channels:
            return features, None, None
        if channels < self.image_channels + 2:
            raise ValueError(
                f"the added similarity takes the image's {self.image_channels} channel(s), learned channels and "
                f"a gate channel (nn.AddedFeatures); got {channels} channels"
            )
        # one split, not three slices: its backward writes one gradient instead of three zero-filled ones
        image, learned, gate = features.split([self.image_channels, channels - self.image_channels - 1, 1], 1)
        return image.contiguous(), learned, gate

    def __call__(self, fixed: torch.Tensor, warped: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        fixed_image, fixed_learned, gate = self._fixed_groups(fixed)
        warped_image, warped_learned, _ = self._split(warped)
        value = self.image_similarity(fixed_image, warped_image, weights)
        if self.image_weight != 1:
            value = self.image_weight * value
        if fixed_learned is None or self.features_weight == 0:
            return value
        assert gate is not None and warped_learned is not None
        # the gate's gradient passes below 0 too (straight through), so a gate that stepped below 0 can return
        weight = gate + (gate.clamp_min(0) - gate).detach()
        return value + self.features_weight * weight * self.features_similarity(fixed_learned, warped_learned, weights)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_split_cache": None}


SIMILARITIES: dict[str, type[Similarity]] = {
    cls.name: cls for cls in (MSE, LNCC, NCC, Cosine, MutualInformation, AddedChannels)
}


def make_similarity(name: str | Similarity, **options) -> Similarity:
    """Build a similarity by name (``mse``, ``lncc``, ``ncc``, ``cosine``, ``mi``) with its options."""
    if isinstance(name, Similarity):
        return name
    return build_named(SIMILARITIES, "similarity", name, options)
