"""The LDL head-pose methods: one small module per method behind one registry.

    >>> import ldlpose.methods as methods
    >>> methods.available()
    ['asg', 'dadl', 'gldl', 'hopenet', 'hybrid', 'rankpose', 'sixdrepnet', 'whenet']
    >>> gldl = methods.create("gldl", sigma=3.0, alpha=0.1)

A method (:class:`Method`) offers, on top of a backbone's pooled (N, F) feature:

* ``num_outputs``, ``layout`` (name -> slice of the output vector) and ``head(F)``, the module
  producing the (N, num_outputs) outputs;
* ``loss(outputs, batch) -> (scalar, parts)`` for a batch carrying ``angles_deg`` (N, 3) and, for
  ``needs_pairs`` methods (RankPose), ``subject`` (N,) identity ids;
* ``decode(outputs)`` -> (N, 3) yaw/pitch/roll degrees; ``flip_outputs(outputs)`` -> the outputs for
  the mirrored image (flip test-time augmentation: ``ldlpose evaluate --flip-tta``);
  ``targets(angles_deg, ...)`` -> its label distributions; ``outputs_for(angles_deg)`` -> outputs
  that reproduce those targets;
* ``hparams``: a frozen pydantic model declared beside the method (:mod:`ldlpose.methods._hparams`;
  :func:`hparams_class`, :func:`hparams_names`) whose fields document their default and valid range or choices;
  ``faithful`` names the values that reproduce the paper; :func:`expectation_bias` measures how far
  a method's own targets decode from the truth (``ldlpose evaluate --bias`` reports it on a
  benchmark's angles).

Conventions shared by every method (so that a weight means the same everywhere):

* angles are yaw, pitch, roll in degrees (:mod:`ldlpose.geometry`);
* every loss term is a mean over the batch, summed over yaw, pitch and roll; cross-entropies and
  KL divergences are in nats; **regression terms on decoded angles are squared errors in
  degrees^2** (as HopeNet's code, so the papers' alpha grids keep their meaning: alpha = 0.01 makes
  a 10 degree error cost 1 nat). ASG-LDL's vector MSE (unit vectors) and 6DRepNet's geodesic loss
  (radians) keep their references' units;
* Gaussian widths (sigma) are in bins of 3 degrees, as in the papers;
* bin methods decode the softmax expectation over bin centres by default; the papers' left-edge
  ``3 * E[i] - 99`` is ``decode="edge"``; out-of-range labels are clamped to the end bins;
* loss ``parts`` are unweighted and detached.

To add a method, write ``methods/<name>.py`` with its hyperparameter model (a :class:`Hparams`
subclass decorated by ``@method_hparams``: the run config's ``method`` section then accepts its name)
and a class decorated by ``@register("<name>")``, and add its import line below; the conformance
tests in ``tests/methods`` iterate the registry and so cover it. The module imports torch lazily
(:mod:`ldlpose._lazy`): loading a config imports every method module.
"""

# ruff: noqa: I001 (the methods are imported after the registry, one line each)
from ldlpose.methods._hparams import Hparams, method_hparams
from ldlpose.methods._base import Method
from ldlpose.methods._registry import (
    available,
    create,
    expectation_bias,
    hparams_class,
    hparams_names,
    method_class,
    register,
)

# One line per method; importing a module registers its method.
from ldlpose.methods import asg  # noqa: F401
from ldlpose.methods import dadl  # noqa: F401
from ldlpose.methods import gldl  # noqa: F401
from ldlpose.methods import hopenet  # noqa: F401
from ldlpose.methods import hybrid  # noqa: F401
from ldlpose.methods import rankpose  # noqa: F401
from ldlpose.methods import sixdrepnet  # noqa: F401
from ldlpose.methods import whenet  # noqa: F401

__all__ = [
    "Hparams",
    "Method",
    "available",
    "create",
    "expectation_bias",
    "hparams_class",
    "hparams_names",
    "method_class",
    "method_hparams",
    "register",
]
