"""`fit_towers` of N default MLPs for E epochs, with the code of a given source tree.

Run by path, not as a module, so that `--src` (a worktree of an older commit, whose
`pipeline` has another layout) comes first on sys.path:
`python benchmarks/first_epoch.py --src <tree> --prepared <dir> --towers 10 --epochs 1`.
Prints one JSON line.
"""

import argparse
import json
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--src", required=True)
parser.add_argument("--prepared", required=True)
parser.add_argument("--towers", type=int, required=True)
parser.add_argument("--epochs", type=int, required=True)
args = parser.parse_args()
sys.path.insert(0, args.src)

try:  # the layout since the one training path (train: settings as one TrainConfig)
    from pipeline.config import BuilderRef, ModelConfig
    from pipeline.config.schema import TrainConfig
    from pipeline.core.runtime import init_tensorflow
    from pipeline.datasets.prepared import read_split
    from pipeline.modeling.builders import build_tower
    from pipeline.modeling.towers import Tower as TowerInput
    from pipeline.modeling.towers import fit_towers

    CURRENT = True
    try:  # a tree since the regression work: the task is a required argument
        from pipeline.core.task import CLASSIFICATION_TASK
        from pipeline.modeling.objective import CLASSIFIER

        TASK, OBJECTIVE = {"task": CLASSIFICATION_TASK}, {"objective": CLASSIFIER}
    except ImportError:
        TASK, OBJECTIVE = {}, {}
except ImportError:
    CURRENT = False
    try:  # the layout from fc358e1
        from pipeline.modeling.mlp import build_mlp

        from pipeline.core.runtime import init_tensorflow
        from pipeline.datasets.prepared import read_split
        from pipeline.modeling.towers import TowerInput, fit_towers
    except ImportError:  # 5b79e93 and before
        from pipeline.data import read_split
        from pipeline.model import build_mlp
        from pipeline.runtime import init_tensorflow
        from pipeline.towers import TowerInput, fit_towers

import pipeline  # noqa: E402

init_tensorflow(42)
import keras  # noqa: E402

train, val = (read_split(__import__("pathlib").Path(args.prepared), s) for s in ("train", "val"))
n_features = train.features.shape[1]
LAYERS = ("hidden_1", "hidden_2", "output")


def model(i: int):
    """The default MLP 64-256-256-10 with rate 1e-4 * i on every layer, seed 42."""
    rates = [1e-4 * i] * 3
    if CURRENT:
        builder = BuilderRef(ModelConfig(hidden_units=[256, 256], activation="tanh"))
        by_layer = dict(zip(LAYERS, rates, strict=True))
        return build_tower(builder, (n_features,), 10, by_layer, seed=42, name=f"t{i}", **TASK)
    keras.utils.set_random_seed(42)
    return build_mlp(n_features, 10, hidden_units=[256, 256], activation="tanh",
                     layer_rates=rates, name=f"t{i}")  # fmt: skip


inputs = [TowerInput(model(i), 42, 0.0) for i in range(args.towers)]
started = time.perf_counter()
if CURRENT:
    settings = TrainConfig(learning_rate=0.001, batch_size=32, epochs=args.epochs)
    outcome = fit_towers(inputs, train, val, settings, sinks=[], **OBJECTIVE)
else:
    outcome = fit_towers(
        inputs, train, val, learning_rate=0.001, batch_size=32, epochs=args.epochs, sinks=[]
    )
print(json.dumps({"fit_s": time.perf_counter() - started, "code": pipeline.__file__}))
