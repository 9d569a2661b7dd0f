"""Hutchinson vs Hutch++: error of the Hessian trace at equal cost, on ResNet-20.

A ResNet-20 (``jaxsurf.models.resnet20``, BatchNorm in evaluation mode through
``js.flax.adapt``) is trained for ``--train-steps`` full-batch Adam steps on
``--examples`` Fashion-MNIST images (random stand-ins when the files are
absent), so that its Hessian has the outlier eigenvalues of a trained net.
The reference trace is a Hutch++ estimate with ``--reference-products``
products (its standard error is saved with it). Then each method estimates
the trace ``--repeats`` times (different keys) with the same budget of
``--products`` Hessian-vector products over the same data, and the errors
against the reference are reported: median and mean absolute relative error
per method and their ratio, with the standard errors each run reported.
The number of products, not the seconds, is the cost being equalised (both
methods spend one pass over the data per product; Hutch++ adds a QR of a
``num_params x products/3`` matrix, timed too).

    python -m benchmarks.trace_estimators [--examples 64] [--products 30] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import optax

import jaxsurf as js
from benchmarks.common import fashion_mnist_subset, save_results
from jaxsurf.models import resnet20


def trained_resnet20(data: dict, steps: int, seed: int) -> tuple:
    """``(fn, params)`` of a ResNet-20 after ``steps`` full-batch Adam steps on ``data``."""
    model = resnet20()
    variables = model.init(jax.random.key(seed), data["x"][:2])
    fn, params = js.flax.adapt(model, variables, loss="cross_entropy")
    optimizer = optax.adam(1e-3)

    @jax.jit
    def step(params, state):
        loss, grads = jax.value_and_grad(lambda p: fn(p, data)["loss"])(params)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    state = optimizer.init(params)
    loss = None
    for _ in range(steps):
        params, state, loss = step(params, state)
    # the trained weights with the model's own (initial) BatchNorm statistics
    fn, params = js.flax.adapt(model, {**variables, "params": params}, loss="cross_entropy")
    return fn, params, None if loss is None else float(loss)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=60)
    parser.add_argument("--products", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-products", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    data, source = fashion_mnist_subset(args.examples)
    start = time.perf_counter()
    fn, params, train_loss = trained_resnet20(data, args.train_steps, seed=0)
    train_s = time.perf_counter() - start
    num_params = int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))
    lam, _ = js.hessian.top_eigenpairs(fn, params, data, k=1, key=jax.random.key(5),
                                       num_iterations=20, tol=None,
                                       batch_size=args.batch_size)
    start = time.perf_counter()
    reference, reference_se = js.hessian.trace(
        fn, params, data, key=jax.random.key(10_000), num_samples=args.reference_products,
        method="hutch++", batch_size=args.batch_size)
    reference_s = time.perf_counter() - start
    runs: dict[str, list[dict]] = {"hutchinson": [], "hutch++": []}
    for r in range(args.repeats):
        for method in runs:
            start = time.perf_counter()
            estimate, se = js.hessian.trace(fn, params, data, key=jax.random.key(r),
                                            num_samples=args.products, method=method,
                                            batch_size=args.batch_size)
            runs[method].append({"estimate": estimate, "standard_error": se,
                                 "relative_error": abs(estimate - reference) / abs(reference),
                                 "seconds": time.perf_counter() - start})
    summary = {}
    for method, rows in runs.items():
        errors = np.array([row["relative_error"] for row in rows])
        summary[method] = {"median_relative_error": float(np.median(errors)),
                           "mean_relative_error": float(errors.mean()),
                           "median_reported_relative_se": float(np.median(
                               [row["standard_error"] / abs(reference) for row in rows])),
                           "median_seconds": float(np.median([row["seconds"] for row in rows]))}
    ratio = (summary["hutch++"]["median_relative_error"]
             / summary["hutchinson"]["median_relative_error"])
    results = {"model": "resnet20", "num_params": num_params, "data": source,
               "examples": args.examples, "train_steps": args.train_steps,
               "train_loss": train_loss, "train_seconds": train_s,
               "lambda_max_20_lanczos": float(lam[0]), "products": args.products,
               "repeats": args.repeats, "reference": {
                   "method": "hutch++", "products": args.reference_products,
                   "trace": reference, "standard_error": reference_se,
                   "relative_se": reference_se / abs(reference), "seconds": reference_s},
               "summary": summary, "hutchpp_over_hutchinson_median_error": ratio,
               "runs": runs}
    header = ["method", "products", "median |rel err|", "mean |rel err|", "median rel SE",
              "median s"]
    table = [[m, args.products, f"{s['median_relative_error']:.4f}",
              f"{s['mean_relative_error']:.4f}", f"{s['median_reported_relative_se']:.4f}",
              f"{s['median_seconds']:.1f}"] for m, s in summary.items()]
    print(f"ResNet-20 ({num_params:,} params), {args.examples} {source} images; reference "
          f"trace {reference:.5g} ± {reference_se:.2g} (Hutch++, {args.reference_products} "
          f"products); lambda_max ~ {lam[0]:.4g}; Hutch++ / Hutchinson median error "
          f"{ratio:.3f}")
    save_results("trace_estimators", results, table, header)


if __name__ == "__main__":
    main()
