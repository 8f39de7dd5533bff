"""``robustwatch demo``: the whole product on one machine, on embedded defaults.

The demo starts a local Kafka-protocol broker, trains a small classifier on scikit-learn's
bundled digits, streams clean then drifted traffic, and runs the agent against it. Nothing in
the agent's runtime imports this package.
"""
