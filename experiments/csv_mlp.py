"""The tutorial's 12-8-1 network on a CSV file of numbers, like its `pima-indians-diabetes.csv`.

Each row is one example: feature columns and a 0/1 label column (the last,
unless `data.label_column` names another; a header row is detected). A test
split is held out (stratified, `data.test_fraction`), and the features are
standardised on the training rows.

Run:
    jaxdl train --config experiments/csv_mlp.py --config.data.csv_path=pima-indians-diabetes.csv

With no CSV at hand, write scikit-learn's breast-cancer data as one (30
features, then the label) and train on it:
    python -c "import numpy as n, sklearn.datasets as d; b = d.load_breast_cancer(); n.savetxt('cancer.csv', n.c_[b.data, b.target], delimiter=',', fmt='%.10g')"
    jaxdl train --config experiments/csv_mlp.py --config.data.csv_path=cancer.csv
Result (seed 0, 2-core CPU): test accuracy 0.9912 on 113 test rows, as
`jaxdl train` on the embedded dataset (the same rows and split).
"""

import os

from jaxdl import config


def get_config():
    # The tutorial's network exactly as experiments/seed_mlp.py sets it up, on CSV rows.
    cfg = config.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed_mlp.py"))
    cfg.data.name = "csv"  # the rows of data.csv_path, given on the command line
    cfg.data.label_column = "last"
    return cfg
