"""Topology of a surface: the basins of a plane or a volume, as numbers.

A picture shows one bowl or a chaotic field of craters; persistent homology
says how many basins there are and how deep each is. For a metric sampled on
a grid (a plane or a volume :class:`~jaxsurf.Surface`), the 0-dimensional
persistence of its sublevel sets ``{x : loss(x) <= t}`` follows the
connected components as ``t`` rises: every local minimum starts a component
(a *basin*, born at the minimum's value), and when two components meet at a
saddle the younger one (the one with the higher minimum) dies there
(the *elder rule*). A basin's *persistence* ``death - birth`` is the height
it must be filled to before it spills into a deeper one. The deepest basin
never dies (death ``inf``).

Neighbours are the grid's axis neighbours (4 in a plane, 6 in a volume),
the 1-skeleton of a cubical complex with the values on its vertices.

How it is computed: the persistence pairs by `gudhi
<https://gudhi.inria.fr>`_'s cubical complexes (``gudhi.CubicalComplex(
vertices=...)``), made for values on grids: no triangulation to choose,
planes and volumes alike, a maintained C++ core. Point-cloud tools (ripser)
answer another question (distances), not sublevel sets of a function on a
grid. The merge tree (which basin spills into which, and where) comes from a
union-find sweep over the same grid graph; the tests check that both give
the same bars. gudhi is an optional extra: ``pip install 'jaxsurf[topology]'``.

Non-finite values (diverged points) are left out of the grid: a basin cut
off from the rest by them never merges and counts as a component of its own
(death ``inf``). A line (1-D surface) is refused.

Example:
    >>> import numpy as np, jaxsurf as js
    >>> a, b = np.linspace(-1.2, 1.2, 41), np.linspace(-0.8, 0.8, 23)
    >>> A, B = np.meshgrid(a, b, indexing="ij")
    >>> s = js.Surface(a, b, {"loss": (A**2 - 0.5)**2 + B**2})   # a double well
    >>> js.topology.persistence(s).round(4)
    array([[0.0003, 0.25  ],
           [0.0003,    inf]])
    >>> js.topology.summary(s)["num_persistent_minima"]
    2
"""

from jaxsurf._topology import Basin, DEFAULT_RELATIVE_THRESHOLD, merge_tree, persistence, summary

__all__ = ["Basin", "DEFAULT_RELATIVE_THRESHOLD", "merge_tree", "persistence", "summary"]
