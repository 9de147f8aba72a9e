"""The adapter contract suite: every case in ``test_contract.py`` runs against every harness in ``harness.py``."""
