"""Pure detection algorithms on arrays: ``drift``, ``adversarial``, ``outlier``.

No Kafka, no Prometheus, no threads, no global state: every detector is configured in
``__init__``, learns from reference data in ``fit`` and answers batches.
"""
