"""Side-by-side benchmarks of :mod:`reliability` against its peers (not part of the test run).

``python -m benchmarks`` times, on the same inputs and in one run, Erlang B / C against
pyworkforce, the plain recursion and the scipy incomplete-gamma closed form; inverse sizing
against pyworkforce's search; Erlang A; the M/M/c simulator against ciw and simpy; and (with
``--report``) the whole notebook report. Every method's answers are checked against an
independent reference *before* it is timed: mpmath at 50 digits for the formulas, the other
simulators' confidence intervals for the simulator. The result is a markdown table written to
``benchmarks/results.md``. ``--quick`` runs a tiny configuration in seconds (used by the tests).

Modules: :mod:`benchmarks.common` (timing, tables, machine description),
:mod:`benchmarks.peers` (the peers and the mpmath references), :mod:`benchmarks.erlang_bench`,
:mod:`benchmarks.sim_bench`, :mod:`benchmarks.report_bench` and :mod:`benchmarks.run` (the
command line and the results page).
"""
