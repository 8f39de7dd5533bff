"""Pure robustness scoring: adversarial attacks, certification, reports and score history.

No Kafka, no Prometheus, no threads; usable alone from a notebook.
"""
