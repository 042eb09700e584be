"""The two-stage sweep on Optuna: its definition and search space, the work queue, workers, coordinator, cost.

rnnbench sweep experiments/sweep.yaml --dry-run
"""
