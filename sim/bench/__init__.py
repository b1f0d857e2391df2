"""The bench suite (``make bench``): speed and memory goals as ratios against baselines.

Every figure is measured against a baseline run side by side on the same host
(a bare encoder, a plain write+fsync, a plain memory copy), so it means the
same on any machine; goals are reported as PASS or MISS in
``bench/results.md``, never asserted in tests. ``sim.bench.suite`` runs the
benchmarks, ``sim.bench.figure`` is one reported number, ``sim.bench.long``
the runs too long for the suite (SIGKILL trials, the trigger sweep, the soak).
"""
