"""The fault harness: seeded workloads, faults while they run, and a verifier.

After the Kafka/Flink/Jepsen pattern: a seeded generator whose events carry a unique
id and a per-customer sequence number (:mod:`streams.chaos.workload`,
:mod:`streams.chaos.poison`), a ground truth of what the broker acknowledged
(:mod:`streams.chaos.truth`), faults injected while it runs
(:mod:`streams.chaos.faults`), and a verifier that reads the outputs back and counts
``missing``, ``duplicates``, ``state_violations``, ``relearned`` and more
(:mod:`streams.chaos.verify`). :mod:`streams.chaos.runner` runs one scenario;
:mod:`streams.chaos.suite` runs many and reports (`streamscore chaos`).
"""
