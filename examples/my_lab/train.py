"""A training loop of the lab's own, which uses nothing of chaosgrid's recipe: scikit-learn's MLP.

chaosgrid calls `run(params, data)` once per run (`trainer: my_lab.train:run`); `params` holds the run's
seeds and the study's own keys (here `hidden` and `alpha`), `data` the arrays (chaosgrid.trainers.TrainerData).
"""

import sys
from types import SimpleNamespace

import numpy as np
from sklearn.neural_network import MLPClassifier


def run(params: dict, data) -> dict:
    """Fit an MLP with the run's init seed; class probabilities for every evaluation set, and the loss curve."""
    flat = lambda x: x.reshape(len(x), -1)
    model = MLPClassifier(hidden_layer_sizes=(int(params["hidden"]),), alpha=float(params["alpha"]),
                          max_iter=int(params["epochs"]), random_state=params["init_seed"])  # fmt: skip
    model.fit(flat(data.x_train), data.y_train)
    probabilities = {}
    for name, (x, _) in data.sets.items():
        p = np.zeros((len(x), data.num_classes))  # columns for every class, though training may lack some
        p[:, model.classes_] = model.predict_proba(flat(x))
        probabilities[name] = p
    return {"probabilities": probabilities, "history": [{"train_loss": loss} for loss in model.loss_curve_]}


if __name__ == "__main__":  # the command form: python train.py DATA OUT HIDDEN ALPHA EPOCHS SEED
    data_path, out, hidden, alpha, epochs, seed = sys.argv[1:]
    with np.load(data_path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    names = sorted({k.partition(".")[2] for k in arrays if k.startswith("x.")})
    data = SimpleNamespace(x_train=arrays["x_train"], y_train=arrays["y_train"],
                           sets={n: (arrays[f"x.{n}"], arrays[f"y.{n}"]) for n in names},
                           num_classes=int(max(arrays["y_train"].max(), *(arrays[f"y.{n}"].max() for n in names))) + 1)  # fmt: skip
    result = run({"hidden": hidden, "alpha": alpha, "epochs": epochs, "init_seed": int(seed)}, data)
    np.savez(out, **{f"probabilities.{n}": p for n, p in result["probabilities"].items()},
             **{"history.train_loss": np.array([h["train_loss"] for h in result["history"]])})  # fmt: skip
