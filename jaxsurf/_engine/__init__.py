"""The evaluation engine behind :mod:`jaxsurf.evaluate` (private; see README.md).

Pure programs (:mod:`.programs`), chunk planning (:mod:`.plan`), execution
(:mod:`.job`, :mod:`.loop`, :mod:`.execute`, :mod:`.pointwise`), metadata
(:mod:`.metadata`) and the means layer (:mod:`.means`).
"""
