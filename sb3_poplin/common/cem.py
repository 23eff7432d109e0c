"""Cross-entropy method over a flat noise tensor, batched over environments and candidates."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch as th

from sb3_poplin.common.optimizers import (
    Evaluate,
    Optimizer,
    OptimizerResult,
    candidate_bounds,
    register_optimizer,
    select_candidates,
)
from sb3_poplin.common.options import Option, boolean, choice, integer, real

#: Fixed number of sub-streams of a split draw (see :func:`standard_normal_`), so the numbers never depend on the threads.
SAMPLING_STREAMS = 8
_sampling_pools: dict[int, ThreadPoolExecutor] = {}
#: how CEM's samples are kept within two standard deviations (``cem_truncation``): clamped there (PETS-style speed), or
#: drawn from the normal truncated there, as redrawing every sample beyond it does (the authors' ``tf.truncated_normal``)
TRUNCATIONS = ("clamp", "redraw")
#: the truncation, in standard deviations
TRUNCATION_BOUND = 2.0
#: erf(2 / sqrt(2)): the standard normal's CDF at +-2 std is (1 +- this) / 2
_ERF_AT_BOUND = math.erf(TRUNCATION_BOUND / math.sqrt(2.0))


def standard_normal_(out: th.Tensor, generator: th.Generator | None = None, parallel_min: int = 1 << 20) -> th.Tensor:
    """Fill ``out`` with standard normal numbers drawn from ``generator``.

    One generator's stream is sequential: on CPU, a draw of POPLIN-P sep's size (population x horizon x |theta| numbers
    per CEM iteration, millions at the paper config) would run on one core while the others wait. A CPU draw
    of at least ``parallel_min`` numbers is therefore split into :data:`SAMPLING_STREAMS` consecutive chunks, each filled
    from its own generator seeded by ``generator``, on up to ``th.get_num_threads()`` threads. The numbers are
    reproducible from the seed and the same whatever the number of threads, but not those of one ``th.randn`` call.

    :param out: tensor to fill (any device)
    :param generator: random generator (None: torch's default one)
    :param parallel_min: smallest CPU draw that is split
    :return: ``out``
    """
    # normal_ draws what th.randn(..., out=out) does from the same generator
    return _fill_(out, generator, parallel_min, lambda chunk, gen: chunk.normal_(generator=gen))


def truncated_normal_(out: th.Tensor, generator: th.Generator | None = None, parallel_min: int = 1 << 20) -> th.Tensor:
    """Fill ``out`` with standard normal numbers truncated at +-:data:`TRUNCATION_BOUND`: the distribution that redrawing
    every number beyond the bound gives (variance 0.774), drawn in one pass by inverting the normal's CDF on uniform
    numbers between the bound's CDF values (no data-dependent loop, so a CUDA graph can capture it). Split over threads
    as :func:`standard_normal_`.

    :param out: tensor to fill (any device)
    :param generator: random generator (None: torch's default one)
    :param parallel_min: smallest CPU draw that is split
    :return: ``out``
    """

    def fill(chunk: th.Tensor, gen: th.Generator | None) -> None:
        # Phi^-1(u) = sqrt(2) erfinv(2u - 1), with 2u - 1 uniform in [-erf(bound / sqrt 2), erf(bound / sqrt 2)]
        chunk.uniform_(-_ERF_AT_BOUND, _ERF_AT_BOUND, generator=gen).erfinv_().mul_(math.sqrt(2.0))

    _fill_(out, generator, parallel_min, fill)
    return out.clamp_(-TRUNCATION_BOUND, TRUNCATION_BOUND)  # rounding of erfinv near the bound


def _fill_(
    out: th.Tensor,
    generator: th.Generator | None,
    parallel_min: int,
    fill_chunk: Callable[[th.Tensor, th.Generator | None], object],
) -> th.Tensor:
    """Fill ``out`` with ``fill_chunk(chunk, generator)``, split into seeded streams over threads for a large CPU draw."""
    if out.device.type != "cpu" or out.numel() < parallel_min or not out.is_contiguous():
        fill_chunk(out, generator)
        return out
    seeds = th.randint(0, 2**62, (SAMPLING_STREAMS,), generator=generator).tolist()
    chunks = out.view(-1).tensor_split(SAMPLING_STREAMS)
    inference = out.is_inference()

    def fill(i: int) -> None:
        # normal_ and uniform_ run single-threaded and release the GIL: chunks fill in parallel without
        # oversubscribing cores. Inference mode is per thread: a worker must enter it to write into an inference tensor.
        with th.inference_mode(inference):
            fill_chunk(chunks[i], th.Generator().manual_seed(seeds[i]))

    workers = min(th.get_num_threads(), SAMPLING_STREAMS)
    if workers < 2:
        for i in range(SAMPLING_STREAMS):
            fill(i)
    else:
        pool = _sampling_pools.get(workers)
        if pool is None:
            pool = _sampling_pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="cem-sampling")
        list(pool.map(fill, range(SAMPLING_STREAMS)))
    return out


@register_optimizer
class CEMOptimizer(Optimizer):
    """Cross-entropy method with PETS' smoothing and truncated sampling.

    At every iteration ``population_size`` samples are drawn from a diagonal Gaussian truncated at two standard
    deviations, the ``n_elites`` best by predicted return are kept and the distribution moves towards their
    mean and variance: ``mean <- alpha * mean + (1 - alpha) * elite_mean`` (same for the variance).

    Note on ``alpha``: the POPLIN paper writes the update as ``(1 - alpha) * mu + alpha * mu_elite`` with
    alpha = 0.1, but the code its results come from (PETS) weights the OLD distribution by alpha; with the
    paper's reading five iterations would barely move the distribution. We follow the code.

    :param population_size: candidates per environment and iteration
    :param n_elites: candidates kept to refit the distribution
    :param n_iterations: refits per planning step
    :param alpha: weight of the previous distribution in the smoothed update
    :param min_var: floor on the variance, so the search never collapses to a point
    :param early_stop_tol: stop iterating once an iteration moved the mean by at most this many initial standard
        deviations (root mean square over the noise dimensions, for every env); 0 disables it (all ``n_iterations``
        run). Warm-started plans often converge in two or three iterations, and each skipped one saves a whole
        horizon of model calls. Reading the shift costs a host synchronisation per iteration, so a CUDA-graph plan
        cannot stop early (see :class:`~sb3_poplin.common.planners.Planner`).
    :param mirrored: mirrored (antithetic) sampling: draw the first ``ceil(population / 2)`` candidates and use their
        reflections through the mean as the others, so every iteration draws half the random numbers (Brockhoff et al.,
        2010). The population's sample mean is then exactly the distribution's mean. Worth it where drawing is a
        visible share of the step: POPLIN-P sep draws population x horizon x |theta| numbers per iteration.
    :param noise_table_size: 0 draws every sample's standard normals afresh (the default). A positive size keeps a
        table of that many standard normals (clamped at +-2), drawn once from ``noise_table_seed``, and reads each
        candidate's normals as a window of consecutive table entries at an offset drawn from the planning generator,
        one random integer per candidate instead of ``dim`` normals (the shared noise table of Salimans et al., 2017,
        "Evolution Strategies as a Scalable Alternative to Reinforcement Learning"). Each candidate's normals are still
        independent standard normals; two candidates whose windows overlap share numbers at shifted coordinates, never
        at the same one unless their offsets are equal. A window copy is cheaper than drawing the numbers, which is what
        POPLIN-P sep's sampling (population x horizon x |theta| numbers per iteration) spends most of its non-model time
        on (docs/performance.md). The size must be at least ``dim``; ``1 << 24`` (64 MB in float32) holds about 700 of
        POPLIN-P sep's candidates at the paper config.
    :param noise_table_seed: seed of the noise table (the algorithms derive it from their own seed, so a saved and
        loaded model rebuilds the same table)
    :param truncation: ``clamp`` (default): standard normals clamped at +-2, so the samples' variance is 0.92 of the
        distribution's; ``redraw``: drawn from the normal truncated at +-2 (:func:`truncated_normal_`), variance 0.77 of
        it, as the authors' ``tf.truncated_normal``, which redraws every number beyond the bound
    """

    name = "cem"
    options = (
        Option("cem_early_stop_tol", 0.0, "float", "stop CEM once an iteration moved its mean by at most this many "
               "initial standard deviations (RMS over the noise); 0 always runs ``cem_iterations``", real(0.0)),
        Option("cem_mirrored", False, "bool", "mirrored sampling: half of each CEM population is drawn, the other half is "
               "its reflection through the mean, so half the random numbers are drawn (see "
               ":class:`~sb3_poplin.common.cem.CEMOptimizer`)", boolean),
        Option("cem_noise_table", 0, "int", "0 (default) draws CEM's standard normals afresh; a positive size keeps a "
               "table of that many, drawn once from the model's seed, and reads each candidate's normals from it at a "
               "random offset (one random integer per candidate instead of horizon x noise-per-step normals; ``1 << 24``, "
               "64 MB, suits POPLIN-P sep at the paper configuration). See :class:`~sb3_poplin.common.cem.CEMOptimizer`",
               integer(0)),
        Option("cem_truncation", "clamp", "str", "how CEM keeps its samples within 2 standard deviations: ``clamp`` "
               "(standard normals clamped at +-2, the samples' variance 0.92 of the distribution's) or ``redraw`` (the "
               "normal truncated at +-2, variance 0.77 of it: the authors' and PETS' ``tf.truncated_normal``)",
               choice(TRUNCATIONS)),
    )  # fmt: skip
    #: CPU draws of at least this many numbers per iteration are split over threads (see :func:`standard_normal_`)
    parallel_sampling_min: int = 1 << 20

    def __init__(
        self,
        population_size: int = 500,
        n_elites: int = 50,
        n_iterations: int = 5,
        alpha: float = 0.1,
        min_var: float = 1e-8,
        early_stop_tol: float = 0.0,
        mirrored: bool = False,
        noise_table_size: int = 0,
        noise_table_seed: int = 0,
        truncation: str = "clamp",
    ) -> None:
        super().__init__(population_size, n_elites, n_iterations)
        if truncation not in TRUNCATIONS:
            raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {truncation!r}")
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        if not early_stop_tol >= 0.0:
            raise ValueError(f"early_stop_tol must be >= 0 (0 disables early stopping), got {early_stop_tol}")
        self.alpha = alpha
        self.min_var = min_var
        if noise_table_size < 0:
            raise ValueError(f"noise_table_size must be >= 0 (0 draws fresh normals), got {noise_table_size}")
        self.early_stop_tol = early_stop_tol
        self.mirrored = mirrored
        self.noise_table_size = noise_table_size
        self.noise_table_seed = noise_table_seed
        self.truncation = truncation
        # [noise_table_size] truncated standard normals, built at the first optimisation (on its device and dtype)
        self._noise_table: th.Tensor | None = None

    @classmethod
    def from_options(cls, values: Mapping[str, Any], seed: int | None) -> CEMOptimizer:
        return cls(
            values["population_size"],
            values["n_elites"],
            values["cem_iterations"],
            values["cem_alpha"],
            early_stop_tol=values["cem_early_stop_tol"],
            mirrored=values["cem_mirrored"],
            noise_table_size=values["cem_noise_table"],
            # from the (saved) seed alone: a loaded model reads the same table as the one saved
            noise_table_seed=((seed or 0) * 0x9E3779B1 + 0x7AB1E) % (2**63),
            truncation=values["cem_truncation"],
        )

    @property
    def capturable(self) -> bool:
        return self.early_stop_tol == 0  # stopping early reads the mean's shift on the host

    def check_noise_dim(self, dim: int) -> None:
        self.check_noise_table(dim, "cem_noise_table")

    def check_noise_table(self, dim: int, name: str = "noise_table_size") -> None:
        """Refuse a noise table too small for one candidate's noise (the algorithms check at construction, not at the
        first plan).

        :param dim: length of one candidate's noise
        :param name: the argument that set the size, for the message
        """
        if 0 < self.noise_table_size < dim:
            raise ValueError(
                f"{name}={self.noise_table_size} is smaller than one candidate's noise ({dim} numbers): pass at least "
                f"{dim} (1 << 24 suits the paper configuration), or 0 to draw fresh normals"
            )

    def noise_table_windows(self, dim: int, device: th.device, dtype: th.dtype) -> th.Tensor:
        """Every window of ``dim`` consecutive entries of the noise table, as a view ``[noise_table_size - dim + 1, dim]``.

        The table is drawn on the first call (and again if the device or dtype changes), from ``noise_table_seed`` alone,
        so it is the same in every process and after save/load.

        :param dim: length of one candidate's noise
        :param device: device of the samples
        :param dtype: dtype of the samples
        """
        self.check_noise_table(dim)
        table = self._noise_table
        if table is None or table.device != th.device(device) or table.dtype != dtype:
            self._noise_table = None  # free the old table before drawing the new one
            generator = th.Generator(device=device).manual_seed(self.noise_table_seed)
            table = th.empty(self.noise_table_size, device=device, dtype=dtype)
            self.truncated_standard_normal_(table, generator)
            self._noise_table = table
        return table.unfold(0, dim, 1)

    def truncated_standard_normal_(self, out: th.Tensor, generator: th.Generator | None) -> th.Tensor:
        """Fill ``out`` with standard normals kept within +-2 by :attr:`truncation`."""
        if self.truncation == "redraw":
            return truncated_normal_(out, generator, self.parallel_sampling_min)
        return standard_normal_(out, generator, self.parallel_sampling_min).clamp_(-TRUNCATION_BOUND, TRUNCATION_BOUND)

    @staticmethod
    def constrain_var(mean: th.Tensor, var: th.Tensor, lower: th.Tensor | None, upper: th.Tensor | None) -> th.Tensor:
        """Shrink the variance so that two standard deviations stay inside ``[lower, upper]``."""
        if lower is None or upper is None:
            return var
        to_lower = (mean - lower).clamp(min=0.0)
        to_upper = (upper - mean).clamp(min=0.0)
        room = th.minimum(to_lower, to_upper)
        return th.minimum(var, (room / 2.0) ** 2)

    def optimize(
        self,
        evaluate: Evaluate,
        mean: th.Tensor,
        var: th.Tensor,
        lower: th.Tensor | None = None,
        upper: th.Tensor | None = None,
        generator: th.Generator | None = None,
        steps: int = 1,
        carried: th.Tensor | None = None,
    ) -> OptimizerResult:
        """Run the CEM iterations (see :meth:`Optimizer.optimize`; CEM's samples are independent along ``steps`` and it
        carries nothing between plans)."""
        n_envs, dim = mean.shape
        samples = mean.new_empty(n_envs, self.population_size, dim)
        # Mirrored sampling: the standard normals of the first ``drawn`` candidates, reflected for the other ``mirrors``.
        drawn = (self.population_size + 1) // 2 if self.mirrored else self.population_size
        mirrors = self.population_size - drawn
        normals = mean.new_empty(n_envs, drawn, dim) if self.mirrored else samples
        # [table size - dim + 1, dim]: the windows of the noise table (already clamped), or None to draw fresh normals
        windows = self.noise_table_windows(dim, mean.device, mean.dtype) if self.noise_table_size > 0 else None
        bounds = candidate_bounds(lower, upper, samples)  # the samples' dtype: they are clamped in place
        elites = best = elite_returns = None
        # The shift threshold of early stopping, per env, in the units of the initial distribution: an RMS move of the
        # mean of at most tol initial standard deviations. Compared as squared sums to avoid a sqrt per iteration.
        stop_sq = (self.early_stop_tol**2) * var.sum(dim=1) if self.early_stop_tol > 0 else None
        iterations = 0
        for _ in range(self.n_iterations):
            iterations += 1
            constrained = self.constrain_var(mean, var, lower, upper).clamp(min=self.min_var)
            # Standard normals within +-2 (clamped or truncated): keeps the samples inside the bounds above.
            # Every pass below is in place on one buffer: for POPLIN-P sep it holds population x H x |theta| floats.
            if windows is not None:
                # One offset per candidate; index_select copies whole windows (rows of the overlapping view).
                offsets = th.randint(0, windows.shape[0], (n_envs * drawn,), generator=generator, device=mean.device)
                th.index_select(windows, 0, offsets, out=normals.view(-1, dim))
            else:
                self.truncated_standard_normal_(normals, generator)
            std = constrained.sqrt().unsqueeze(1)
            if self.mirrored:
                th.addcmul(mean.unsqueeze(1), normals, std, out=samples[:, :drawn])  # mean + std * z
                th.addcmul(mean.unsqueeze(1), normals[:, :mirrors], std.neg(), out=samples[:, drawn:])  # mean - std * z
            else:
                th.addcmul(mean.unsqueeze(1), normals, std, out=samples)  # normals is samples here: in place
            if bounds is not None:
                samples.clamp_(*bounds)
            returns = evaluate(samples)
            # A diverging model can produce NaN returns: rank them last instead of poisoning the elites.
            returns = th.nan_to_num(returns, nan=-th.inf)
            elite_returns, elite_idx = th.topk(returns, self.n_elites, dim=1)  # [n_envs, n_elites], best first
            elites = select_candidates(samples, elite_idx)
            best = elites[:, 0]
            elite_mean = elites.mean(dim=1)
            # Two-pass biased variance: equal to var(unbiased=False) up to rounding, without its slow strided reduction.
            elite_var = (elites - elite_mean.unsqueeze(1)).square_().mean(dim=1)
            new_mean = self.alpha * mean + (1.0 - self.alpha) * elite_mean
            var = self.alpha * var + (1.0 - self.alpha) * elite_var
            shift_sq = (new_mean - mean).square_().sum(dim=1) if stop_sq is not None else None
            mean = new_mean
            if (
                shift_sq is not None
                and stop_sq is not None
                and iterations < self.n_iterations
                and bool((shift_sq <= stop_sq).all())
            ):
                break
        assert elites is not None and best is not None and elite_returns is not None
        return OptimizerResult(
            mean=mean,
            var=var,
            best=best,
            elites=elites,
            elite_returns=elite_returns,
            iterations=iterations,
            evaluations=iterations * self.population_size,
        )
