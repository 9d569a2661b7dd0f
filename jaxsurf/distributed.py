"""Where a surface is evaluated: a ``("points", "data")`` device mesh over one or many hosts.

The evaluation functions spread work over a 2-D mesh:

* ``"points"``: grid points are split over this axis (each device evaluates
  its share of every chunk of points, over the whole data set);
* ``"data"``: the batches of the data set are split over this axis and the
  per-device sums are added (``psum``), for lines or a handful of points
  that would leave devices idle.

:func:`plan_mesh` picks the split that lets every device finish soonest:
all devices on the points axis for a grid of many points, the data axis for a
line of a few points or a single point over many batches. The default
devices are ``jax.devices()``: the local devices of this process, or, after
``jax.distributed.initialize``, the devices of every process, so that each
process evaluates its share and every process receives the full result.

Example (4 devices):
    >>> dict(plan_mesh(num_points=441, full_batches=20).shape)
    {'points': 4, 'data': 1}
    >>> dict(plan_mesh(num_points=1, full_batches=20).shape)
    {'points': 1, 'data': 4}

Several hosts (one process per host, or several processes on one host with
CPU collectives)::

    jax.config.update("jax_cpu_collectives_implementation", "gloo")   # CPU only
    jax.distributed.initialize("host0:1234", num_processes=2, process_id=i)
    surface = js.evaluate_plane(fn, params, d1, d2, data, grid, grid)  # same call on every host
"""

from jaxsurf._deprecation import moved_names
from jaxsurf._distributed import plan_mesh

__all__ = ["plan_mesh"]

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._distributed", ("AXES", "as_mesh", "mesh_shape",
    "spans_processes", "put", "to_host", "broadcast_from_first",))
