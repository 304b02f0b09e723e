"""The benchmark harness behind `streamscore bench`.

Each module measures one thing and returns :class:`~streams.bench.report.Table` rows;
:mod:`streams.bench.run` runs them in order, prints the tables, appends them with the
conditions of the run to ``docs/benchmarks.md`` and ends with the summary line.

- :mod:`~streams.bench.throughput`: the pipeline, a raw aiokafka forwarder and a
  Faust forward-only agent over the same messages on the same broker; scaling.
- :mod:`~streams.bench.latency`: event-to-prediction latency at fixed offered rates.
- :mod:`~streams.bench.replay`: the handbook replayed through every stage.
- :mod:`~streams.bench.engines`: scoring engines per batch size.
- :mod:`~streams.bench.profile`: time per event of each pure stage.
"""
