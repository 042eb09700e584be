"""rnnbench: a reproducible harness for comparing recurrent networks on MNIST read row by row.

rnnbench run experiments/seed_lstm.yaml model.hidden_units=128
"""

__version__ = "0.1.0"
